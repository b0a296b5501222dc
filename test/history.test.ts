/**
 * `fleet history` through the built binary, on rollouts recorded in a fresh database on the real
 * Postgres (fast), and the same rollouts in a real PGlite store, which must answer the same.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import type { HostStatus, RolloutState } from '../src/types.js'
import { openDatabase } from '../src/store/database.js'
import { Store, type RolloutHostRecord } from '../src/store/store.js'
import { cliStore, runFleet, type CliStore } from './support/cli.js'
import { seedRollout } from './support/harness.js'

const V1 = 'a1'.repeat(20)
const V2 = 'b2'.repeat(20)
const T0 = Date.parse('2025-03-01T09:00:00.000Z')
const MINUTE = 60_000

let cwd: string
let embeddedCwd: string
const stores: CliStore[] = []

/** A rollout as the engine records it: created running with pending hosts, then finished. */
async function seed(
  store: Store,
  id: string,
  o: { startMin: number; tookMs: number | null; state: RolloutState; exitCode?: number; ref?: string; statuses: HostStatus[] },
): Promise<void> {
  const startedAt = new Date(T0 + o.startMin * MINUTE)
  const hosts: RolloutHostRecord[] = o.statuses.map((_, i) => ({
    name: `${id}-h${i}`,
    address: `10.0.${o.startMin}.${i + 1}`,
    port: 22,
    user: 'rachel',
    appDir: '/home/rachel/rachel',
    position: i,
    stage: Math.min(2, i),
    status: 'pending',
    step: null,
    previousVersion: null,
    newVersion: null,
    error: null,
    startedAt: null,
    finishedAt: null,
  }))
  const fence = await seedRollout(
    store,
    {
      id,
      state: 'running',
      ref: o.ref ?? 'main',
      sha: V2,
      stages: [10, 50, 100],
      seed: id,
      currentStage: 0,
      settings: { concurrency: 5 },
      owner: 'ops@bastion pid 42',
      startedAt,
      finishedAt: null,
      heartbeatAt: startedAt,
      exitCode: null,
      error: null,
    },
    hosts,
  )
  for (const [i, status] of o.statuses.entries())
    if (status !== 'pending')
      await store.updateRolloutHost(fence, hosts[i]!.name, {
        status,
        previousVersion: V1,
        newVersion: status === 'success' || status === 'skipped' ? V2 : V1,
        error: status === 'success' || status === 'skipped' ? null : 'systemctl is-active: inactive',
      })
  if (o.tookMs !== null)
    await store.updateRollout(fence, { state: o.state, currentStage: 2, finishedAt: new Date(startedAt.getTime() + o.tookMs), exitCode: o.exitCode ?? 0 })
}

/** The same four rollouts into a fresh store of that kind; a working directory whose config points at it. */
async function seeded(kind: 'postgres' | 'pglite'): Promise<string> {
  const test = await cliStore(kind)
  stores.push(test)
  const database = await openDatabase(test.databaseConfig)
  const store = new Store(database)
  await seed(store, 'r1-oldest', { startMin: 0, tookMs: 125_000, state: 'completed', statuses: ['success', 'success', 'skipped'] })
  await seed(store, 'r2-halted', { startMin: 10, tookMs: 42_500, state: 'halted', exitCode: 3, ref: 'v2.0.0', statuses: ['rolled_back', 'rolled_back', 'pending', 'pending'] })
  await seed(store, 'r3-mixed', { startMin: 20, tookMs: 3_600_000, state: 'completed', exitCode: 5, statuses: ['success', 'failed', 'rollback_failed', 'rolled_back', 'success'] })
  await seed(store, 'r4-running', { startMin: 30, tookMs: null, state: 'running', statuses: ['success', 'updating', 'pending'] })
  // PGlite is single-process: the CLI can open the store only once we let go of it.
  await database.close()
  const dir = await mkdtemp(path.join(os.tmpdir(), 'fleet-history-'))
  await writeFile(path.join(dir, 'rollout.config.json'), JSON.stringify({ database: test.database }))
  return dir
}

beforeAll(async () => {
  ;[cwd, embeddedCwd] = await Promise.all([seeded('postgres'), seeded('pglite')])
})

afterAll(async () => {
  for (const dir of [cwd, embeddedCwd]) if (dir) await rm(dir, { recursive: true, force: true })
  for (const store of stores.splice(0)) await store.drop()
})

const fleet = (args: string[], env: NodeJS.ProcessEnv = {}) => runFleet(args, { cwd, env })
const counts = (c: Partial<Record<HostStatus, number>>) => ({ pending: 0, updating: 0, success: 0, failed: 0, rolled_back: 0, rollback_failed: 0, skipped: 0, held: 0, ...c })

describe('fleet history', () => {
  it('--json: newest first, with target, duration, exit code and per-status counts', async () => {
    const run = await fleet(['history', '--json'])
    expect(run.stderr).toBe('')
    expect(run.code).toBe(0)
    const entries = JSON.parse(run.stdout)
    expect(entries.map((e: { id: string }) => e.id)).toEqual(['r4-running', 'r3-mixed', 'r2-halted', 'r1-oldest'])
    expect(entries[0]).toEqual({
      id: 'r4-running',
      state: 'running',
      ref: 'main',
      sha: V2,
      startedAt: '2025-03-01T09:30:00.000Z',
      finishedAt: null,
      durationMs: null,
      exitCode: null,
      counts: counts({ success: 1, updating: 1, pending: 1 }),
    })
    expect(entries[1]).toMatchObject({ state: 'completed', durationMs: 3_600_000, exitCode: 5, finishedAt: '2025-03-01T10:20:00.000Z' })
    expect(entries[1].counts).toEqual(counts({ success: 2, failed: 1, rollback_failed: 1, rolled_back: 1 }))
    expect(entries[2]).toMatchObject({ state: 'halted', ref: 'v2.0.0', durationMs: 42_500, exitCode: 3, counts: counts({ rolled_back: 2, pending: 2 }) })
    expect(entries[3]).toMatchObject({ state: 'completed', durationMs: 125_000, exitCode: 0, counts: counts({ success: 2, skipped: 1 }) })

    // The embedded store answers exactly the same.
    expect(await runFleet(['history', '--json'], { cwd: embeddedCwd, env: {} })).toEqual(run)
  })

  it('--limit N keeps the N newest; a bad --limit is bad usage (exit 2)', async () => {
    const two = await fleet(['history', '--limit', '2', '--json'])
    expect(two.code).toBe(0)
    expect(JSON.parse(two.stdout).map((e: { id: string }) => e.id)).toEqual(['r4-running', 'r3-mixed'])
    for (const bad of ['0', '-1', '1.5', 'ten', '10001']) {
      const run = await fleet(['history', '--limit', bad])
      expect(run.code, bad).toBe(2)
      expect(run.stderr).toMatch(/--limit must be an integer from 1 to 10000/)
      expect(run.stdout).toBe('')
    }
  })

  it('without a TTY: aligned plain lines, no colour; colour only when forced', async () => {
    const run = await fleet(['history'])
    expect(run.code).toBe(0)
    const lines = run.stdout.trimEnd().split('\n')
    expect(lines).toHaveLength(5)
    expect(lines[0]).toMatch(/^id +state +target +started +duration +hosts$/)
    expect(lines[1]).toMatch(/^r4-running +running +main → b2b2b2b2b2b2 +2025-03-01 09:30:00Z +- +pending 1, updating 1, success 1$/)
    expect(lines[2]).toMatch(/^r3-mixed +completed +main → b2b2b2b2b2b2 +2025-03-01 09:20:00Z +1h +success 2, failed 1, rolled_back 1, rollback_failed 1$/)
    expect(lines[3]).toMatch(/^r2-halted +halted +v2\.0\.0 → b2b2b2b2b2b2 .* 42\.5s +pending 2, rolled_back 2$/)
    expect(lines[4]).toMatch(/ 2m05s +success 2, skipped 1$/)
    // Every column starts at the same offset on every line.
    for (const column of ['state', 'target', 'started', 'duration', 'hosts']) {
      const at = lines[0]!.indexOf(column)
      for (const line of lines.slice(1)) expect(line.slice(at - 1, at + 1), `${column} in ${line}`).toMatch(/^ \S$/)
    }
    expect(run.stdout).not.toMatch(/\x1b\[/)

    const coloured = await fleet(['history'], { NO_COLOR: '', FORCE_COLOR: '1' })
    expect(coloured.stdout).toMatch(/\x1b\[\d+m(running|completed)/)
    const noColor = await fleet(['history', '--no-color'], { NO_COLOR: '', FORCE_COLOR: '1' })
    expect(noColor.stdout).not.toMatch(/\x1b\[/)
  })
})
