/**
 * Issue 16 item 9: start-up cost of each command as a user runs it on Postgres, against `node -e 0`
 * (the floor: Node itself), farm-bench style: every command spawned RUNS times, interleaved with
 * `node -e 0` so load changes hit all alike, medians compared. Targets: read-only commands ≤ 4×,
 * an idle `rollout tick` (nothing in progress, no --ref) ≤ 5×. The store holds 20 hosts and one
 * finished 20-host rollout: what is measured is loading, not reading.
 * BENCH_STARTUP_RUNS (default 15).
 */
import { spawnSync } from 'node:child_process'
import os from 'node:os'
import { afterAll, expect, it } from 'vitest'

import { openDatabase } from '../src/store/database.js'
import { Store } from '../src/store/store.js'
import { seedRollout } from '../test/support/harness.js'
import { createTestDatabase, pgAvailable, type TestDatabase } from '../test/support/postgres.js'
import { FLEET_BIN, median, ms, percentile, waitForQuiet } from './support/measure.js'
import { record } from './support/results.js'

const RUNS = Number(process.env.BENCH_STARTUP_RUNS ?? 15)
const SHA = 'a'.repeat(40)

const READ_ONLY: Record<string, string[]> = {
  'rollout status': ['rollout', 'status'],
  'rollout status --json': ['rollout', 'status', '--json'],
  history: ['history'],
  'hosts list': ['hosts', 'list'],
  'rollout events': ['rollout', 'events'],
}
const TICK: Record<string, string[]> = { 'rollout tick (idle)': ['rollout', 'tick'] }

let database: TestDatabase | null = null
afterAll(async () => {
  await database?.drop()
})

it('command start-up on Postgres vs node -e 0', async () => {
  expect(await pgAvailable()).toBe(true)
  database = (await createTestDatabase())!
  const db = await openDatabase({ url: database.url, dir: '' })
  const store = new Store(db)
  const hosts = Array.from({ length: 20 }, (_, i) => ({ name: `vps-${i + 1}`, address: '127.0.0.1', port: 22, user: 'rachel', appDir: '/home/rachel/rachel' }))
  await store.upsertHosts(hosts)
  const at = new Date(Date.now() - 3_600_000)
  await seedRollout(
    store,
    { id: '20260101-000000-beef', state: 'completed', ref: 'main', sha: SHA, stages: [10, 50, 100], seed: SHA, currentStage: 2, settings: {}, owner: 'bench@bench pid 1', startedAt: at, finishedAt: at, heartbeatAt: at, exitCode: 0, error: null },
    hosts.map((h, i) => ({ ...h, position: i, stage: i < 2 ? 0 : i < 10 ? 1 : 2, status: 'success', step: null, previousVersion: SHA, newVersion: SHA, error: null, startedAt: at, finishedAt: at })),
  )
  await db.close()

  const env = { PATH: process.env.PATH, HOME: process.env.HOME, NO_COLOR: '1', FLEET_DATABASE_URL: database.url }
  const commands: Record<string, string[]> = { 'node -e 0': ['-e', '0'], ...Object.fromEntries(Object.entries({ ...READ_ONLY, ...TICK }).map(([k, v]) => [k, [FLEET_BIN, ...v]])) }
  const times: Record<string, number[]> = Object.fromEntries(Object.keys(commands).map((k) => [k, []]))
  const run = (name: string, args: string[]) => {
    const t0 = performance.now()
    const r = spawnSync(process.execPath, args, { cwd: os.tmpdir(), env, stdio: ['ignore', 'pipe', 'pipe'] })
    const t = performance.now() - t0
    if (r.status !== 0) throw new Error(`bench: ${name} exited ${r.status}: ${r.stderr}`)
    return t
  }
  for (const [name, args] of Object.entries(commands)) for (let i = 0; i < 2; i++) run(name, args) // warm the page cache
  await waitForQuiet()
  for (let i = 0; i < RUNS; i++) for (const [name, args] of Object.entries(commands)) times[name]!.push(run(name, args))

  const base = median(times['node -e 0']!)
  const ratio = (name: string) => median(times[name]!) / base
  const rows: Record<string, string[]> = {}
  for (const [name, t] of Object.entries(times)) rows[name] = [`\`${name}\``, ms(median(t)), `${ms(Math.min(...t))}–${ms(percentile(t, 90))}`, name === 'node -e 0' ? '1.00' : `**${ratio(name).toFixed(2)}**`]
  const worstReadOnly = Object.keys(READ_ONLY).reduce((a, b) => (ratio(a) >= ratio(b) ? a : b))
  record({
    id: 'command-startup',
    title: 'Command start-up on Postgres (issue 16 item 9)',
    order: 31,
    summary: [
      { metric: `slowest read-only command (\`${worstReadOnly}\`) / \`node -e 0\``, target: '≤ 4×', value: `${ratio(worstReadOnly).toFixed(2)}× (${ms(median(times[worstReadOnly]!))} vs ${ms(base)})`, ok: ratio(worstReadOnly) <= 4 },
      { metric: '`rollout tick` (idle) / `node -e 0`', target: '≤ 5×', value: `${ratio('rollout tick (idle)').toFixed(2)}×`, ok: ratio('rollout tick (idle)') <= 5 },
    ],
    tables: { [`Wall time of ${RUNS} spawns each, interleaved`]: { header: ['command', 'median', 'min–p90', '× node -e 0'], rows } },
    notes: 'Spawned with `spawnSync(process.execPath, …)` from the bench (bench/.build: bin/fleet running the esbuild bundle of dist/, as packaged) with FLEET_DATABASE_URL set, after 2 warm-up runs each. The bundle (scripts/bundle.mjs) is what brings these down: the same commands from the unbundled tsc output load ~500 modules (kysely alone is 279 files).',
  })
}, 600_000)
