/**
 * `fleet rollout status`: the pure human view (renderStatus, colour off), then the built binary
 * on a fresh database on the real Postgres (finished rollouts), on one shared with a watcher
 * process while the rollout changes under it, and on a real PGlite store with no rollout yet.
 */
import { spawn } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { renderStatus, STATUS_TABLE_MAX_ROWS } from '../src/render/status-table.js'
import { emptyCounts } from '../src/rollout/events.js'
import { buildStatus, type RolloutStatus } from '../src/rollout/status.js'
import type { HostStatus } from '../src/types.js'
import { openDatabase } from '../src/store/database.js'
import { Store, type RolloutHostRecord, type RolloutRecord } from '../src/store/store.js'
import { cliStore, FLEET_BIN, runFleet, type CliStore } from './support/cli.js'
import { ageLease, openTestStore, seedRollout } from './support/harness.js'
import { createTestDatabase } from './support/postgres.js'

const V1 = 'a1'.repeat(20)
const V2 = 'b2'.repeat(20)
const STARTED = new Date('2025-03-01T09:00:00.000Z')

const rolloutRecord = (o: Partial<RolloutRecord> = {}): RolloutRecord => ({
  epoch: 0,
  id: '20250301-090000-beef',
  state: 'completed',
  ref: 'main',
  sha: V2,
  stages: [10, 50, 100],
  seed: 's1',
  currentStage: 2,
  settings: {},
  owner: 'ops@bastion pid 42',
  startedAt: STARTED,
  finishedAt: new Date(STARTED.getTime() + 185_000),
  heartbeatAt: STARTED,
  exitCode: 0,
  error: null,
  ...o,
})

const hostRecords = (statuses: readonly HostStatus[]): RolloutHostRecord[] =>
  statuses.map((status, i) => ({
    name: `web-${String(i + 1).padStart(5, '0')}`,
    address: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`,
    port: 22,
    user: 'rachel',
    appDir: '/home/rachel/rachel',
    position: i,
    stage: i === 0 ? 0 : i < statuses.length / 2 ? 1 : 2,
    status,
    step: status === 'updating' ? 'install' : null,
    previousVersion: status === 'pending' ? null : V1,
    newVersion: status === 'success' || status === 'skipped' ? V2 : status === 'pending' || status === 'updating' ? null : V1,
    error: ['failed', 'rolled_back', 'rollback_failed'].includes(status) ? `verify failed: rachel8.service is not active\nJournal: exit code 1` : null,
    startedAt: null,
    finishedAt: null,
  }))

describe('renderStatus (colour off)', () => {
  it('a small rollout: header, counts, every host with versions and the first line of its error', () => {
    const status = buildStatus(
      rolloutRecord({ state: 'halted', currentStage: 1, exitCode: 3, error: null }),
      hostRecords(['success', 'rolled_back', 'skipped', 'pending']),
    )
    const text = renderStatus(status, { color: false, width: 120 })
    const lines = text.split('\n')
    expect(lines[0]).toBe('rollout 20250301-090000-beef: halted · main → b2b2b2b2b2b2')
    expect(lines[1]).toBe('started 2025-03-01 09:00:00Z, finished 2025-03-01 09:03:05Z (took 3m05s) · owner ops@bastion pid 42')
    expect(lines[2]).toBe('stage 2/3 (50%) · stages 10/50/100%')
    expect(lines[3]).toBe('4 hosts: pending 1, success 1, rolled_back 1, skipped 1')
    expect(lines[4]).toMatch(/^exit 3: halted/)
    expect(text).toMatch(/web-00001 +│ 10\.0\.0\.0:22 +│ success +│ a1a1a1a1a1a1 → b2b2b2b2b2b2 │/)
    expect(text).toMatch(/web-00002 .* rolled_back .* a1a1a1a1a1a1 → a1a1a1a1a1a1 │ verify failed: rachel8\.service is not active/)
    expect(text).toMatch(/web-00004 .* pending .* - → - /)
    expect(text).not.toMatch(/Journal/)
    expect(text).not.toMatch(/\x1b\[/)
    expect(text).not.toMatch(/showing/)
  })

  it('a running rollout: elapsed time, heartbeat age, the step of an updating host, long errors clipped to the width', () => {
    const hosts = hostRecords(['success', 'updating', 'failed'])
    hosts[2] = { ...hosts[2]!, error: `connect: ${'x'.repeat(300)}` }
    const now = STARTED.getTime() + 90_000
    const record = rolloutRecord({ state: 'running', currentStage: 0, finishedAt: null, exitCode: null, heartbeatAt: new Date(now - 3000) })
    const status = buildStatus(record, hosts, null, { rolloutId: record.id, holder: record.owner, heartbeatAt: record.heartbeatAt, now: new Date(now) })
    const text = renderStatus(status, { color: false, width: 110, now })
    expect(text).toMatch(/^rollout \S+: running/)
    expect(text).toMatch(/started 2025-03-01 09:00:00Z \(running for 1m30s; last heartbeat 3s ago\)/)
    expect(text).toMatch(/stage 1\/3 \(10%\)/)
    expect(text).toMatch(/updating \(install\)/)
    expect(text).not.toMatch(/^exit/m)
    for (const line of text.split('\n')) expect(line.length, line).toBeLessThanOrEqual(110)
    expect(text).toMatch(/connect: x+…/)

    const stale = renderStatus({ ...status, heartbeatAt: new Date(now - 120_000).toISOString(), orchestrator: 'gone' }, { color: false, now })
    expect(stale).toMatch(/last heartbeat 2m ago: the orchestrator has stopped \(resume or abort it\)/)
    // Between cron ticks nobody holds the lease: that is not a stopped orchestrator.
    const between = renderStatus({ ...status, orchestrator: 'none' }, { color: false, now })
    expect(between).toMatch(/no process drives it now \(between cron ticks, or waiting for a person\)/)
  })

  it('10,000 hosts: bounded output, worst hosts first, a count of the rest; --all lists every host', () => {
    const statuses: HostStatus[] = Array.from({ length: 10_000 }, (_, i) =>
      i % 97 === 5 ? 'rolled_back' : i % 1000 === 7 ? 'rollback_failed' : i % 500 === 3 ? 'updating' : i > 9000 ? 'pending' : i % 13 === 0 ? 'skipped' : 'success',
    )
    const status = buildStatus(rolloutRecord({ state: 'running', finishedAt: null, exitCode: null }), hostRecords(statuses))
    const count = (s: HostStatus) => statuses.filter((x) => x === s).length
    const [failedRollbacks, updating] = [count('rollback_failed'), count('updating')]
    const notable = failedRollbacks + updating + count('rolled_back')
    expect(failedRollbacks).toBeGreaterThan(5)
    expect(updating).toBeGreaterThan(10)
    const text = renderStatus(status, { color: false, width: 120, now: STARTED.getTime() })
    const lines = text.split('\n')
    expect(lines.length).toBeLessThan(STATUS_TABLE_MAX_ROWS + 15)
    expect(text.length).toBeLessThan(20_000)
    expect(text).toMatch(new RegExp(`^10000 hosts: pending \\d+, updating ${updating}, success \\d+, rolled_back \\d+, rollback_failed ${failedRollbacks}, skipped \\d+$`, 'm'))
    // rollback_failed first, then the hosts in flight, then the ones rolled back.
    const rows = lines.filter((l) => /web-\d{5}/.test(l))
    expect(rows).toHaveLength(STATUS_TABLE_MAX_ROWS)
    const firstAfter = failedRollbacks + updating
    expect(rows.slice(0, failedRollbacks).every((r) => r.includes('rollback_failed'))).toBe(true)
    expect(rows.slice(failedRollbacks, firstAfter).every((r) => r.includes('updating (install)'))).toBe(true)
    expect(rows.slice(firstAfter).every((r) => r.includes('rolled_back') && !r.includes('rollback_failed'))).toBe(true)
    expect(text).not.toMatch(/│ success /)
    expect(lines.at(-1)).toBe(
      `showing 50 of 10000 hosts; +${notable - 50} more not success/skipped/pending; ${10_000 - notable} success/skipped/pending hidden (--all shows every host)`,
    )

    const all = renderStatus(status, { color: false, all: true, now: STARTED.getTime() })
    expect(all.split('\n').filter((l) => /web-\d{5}/.test(l))).toHaveLength(10_000)
    expect(all).not.toMatch(/showing/)
    expect(all).not.toMatch(/│/) // thousands of rows: aligned columns, not a (slow) boxed table
  })

  it('a big fleet where every host succeeded lists no hosts, just the count', () => {
    const status = buildStatus(rolloutRecord(), hostRecords(Array<HostStatus>(60).fill('success')))
    const text = renderStatus(status, { color: false })
    expect(text).not.toMatch(/web-/)
    expect(text).toMatch(/^60 hosts: success 60$/m)
    expect(text.split('\n').at(-1)).toBe('showing 0 of 60 hosts; 60 success/skipped/pending hidden (--all shows every host)')
  })

  it('the address column shows the port; IPv6 in brackets', () => {
    const hosts = hostRecords(['success', 'failed'])
    hosts[1] = { ...hosts[1]!, address: '2001:db8::1', port: 2222 }
    const text = renderStatus(buildStatus(rolloutRecord(), hosts), { color: false, width: 140 })
    expect(text).toMatch(/web-00001 +│ 10\.0\.0\.0:22 +│/)
    expect(text).toMatch(/web-00002 +│ \[2001:db8::1\]:2222 +│ failed/)
  })

  it('colours the state when asked', () => {
    const status = buildStatus(rolloutRecord({ state: 'halted' }), hostRecords(['rollback_failed']))
    const text = renderStatus(status, { color: true })
    expect(text).toMatch(/\x1b\[33mhalted\x1b\[39m/)
    expect(text).toMatch(/\x1b\[31m\x1b\[1mrollback_failed/)
  })
})

describe('fleet rollout status on a finished rollout', () => {
  let cwd: string
  let stored: CliStore
  const ID = '20250301-090000-beef'

  beforeAll(async () => {
    stored = await cliStore()
    const database = await openDatabase(stored.databaseConfig)
    const test = { store: new Store(database), database }
    await seedRollout(test.store, rolloutRecord({ id: 'older', startedAt: new Date(STARTED.getTime() - 3_600_000) }), hostRecords(['success']))
    await seedRollout(test.store, rolloutRecord({ state: 'completed', exitCode: 4 }), hostRecords(['success', 'rolled_back', 'success']))
    const early = new Date(STARTED.getTime() - 7_200_000)
    const stale = { id: 'stale', state: 'running', startedAt: early, heartbeatAt: early, finishedAt: null, exitCode: null } as const
    await seedRollout(test.store, rolloutRecord(stale), hostRecords(['success', 'updating']))
    // Its orchestrator (on another machine) holds the lease and stopped renewing it two hours ago.
    await test.store.acquireLease('stale', 'ops@bastion pid 42')
    await ageLease(test.store, 7_200_000)
    // Running, with a heartbeat that stays fresh for the whole file (its owner is on another machine).
    const live = { id: 'live', state: 'running', startedAt: early, heartbeatAt: new Date(Date.now() + 3_600_000), finishedAt: null, exitCode: null } as const
    await seedRollout(test.store, rolloutRecord(live), hostRecords(['success', 'updating']))
    const paused = { id: 'paused', state: 'paused', startedAt: early, heartbeatAt: early, finishedAt: null, exitCode: null } as const
    await seedRollout(test.store, rolloutRecord(paused), hostRecords(['success', 'pending']))
    await test.database.close()
    cwd = await mkdtemp(path.join(os.tmpdir(), 'fleet-status-'))
    await writeFile(path.join(cwd, 'rollout.config.json'), JSON.stringify({ database: stored.database }))
  })
  afterAll(async () => {
    await rm(cwd, { recursive: true, force: true })
    await stored?.drop()
  })
  const fleet = (...args: string[]) => runFleet(args, { cwd, env: {} })

  it('shows the latest rollout; --watch prints the final view once and exits 0 at once', async () => {
    const latest = await fleet('rollout', 'status')
    expect(latest.stderr).toBe('')
    expect(latest.code).toBe(0)
    expect(latest.stdout).toMatch(new RegExp(`^rollout ${ID}: completed · main → b2b2b2b2b2b2\n`))
    expect(latest.stdout).toMatch(/^3 hosts: success 2, rolled_back 1$/m)
    expect(latest.stdout).toMatch(/^exit 4: completed, but some hosts failed/m)
    expect(latest.stdout).toMatch(/web-00002 .* rolled_back /)

    // --watch exits with the rollout's own exit code, so CI can wait on it.
    const watch = await fleet('rollout', 'status', ID, '--watch', '--interval', '100ms')
    expect(watch.code).toBe(4)
    expect(watch.stdout).toBe(latest.stdout)

    const json = await fleet('rollout', 'status', 'older', '--watch', '--json')
    expect(json.code).toBe(0)
    const lines = json.stdout.trim().split('\n')
    expect(lines).toHaveLength(1)
    expect(JSON.parse(lines[0]!)).toMatchObject({ id: 'older', state: 'completed', counts: { ...emptyCounts(), success: 1 } })
  })

  it('--watch does not wait for a rollout whose orchestrator stopped heartbeating (exit 1: it did not end)', async () => {
    const run = await fleet('rollout', 'status', 'stale', '--watch', '--interval', '100ms')
    expect(run.code).toBe(1)
    expect(run.stdout).toMatch(/^rollout stale: running/)
    expect(run.stdout).toMatch(/last heartbeat .* ago: the orchestrator has stopped/)
    expect(run.stderr).toMatch(/rollout stale is still marked running but its orchestrator is gone/)
  })

  it('--watch ends on a paused rollout with its code (7): it waits for a person', async () => {
    const run = await fleet('rollout', 'status', 'paused', '--watch', '--interval', '100ms')
    expect(run.code).toBe(7)
    expect(run.stdout).toMatch(/^rollout paused: paused/)
  })

  it('--watch --timeout gives up on a rollout still running with exit 8', async () => {
    const started = Date.now()
    const run = await fleet('rollout', 'status', 'live', '--watch', '--interval', '100ms', '--timeout', '1s')
    expect(run.code).toBe(8)
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000)
    expect(run.stdout).toMatch(/^rollout live: running/)
    expect(run.stderr).toMatch(/rollout live is still running after --timeout 1s; stopped watching \(exit 8\)/)
    for (const bad of [['--timeout', '1s'], ['--watch', '--timeout', '0s'], ['--watch', '--timeout', 'soon']]) {
      const refused = await fleet('rollout', 'status', 'live', ...bad)
      expect(refused.code, bad.join(' ')).toBe(2)
      expect(refused.stderr).toMatch(/--timeout/)
    }
  })

  it('an unknown id or a bad --interval is bad usage (exit 2)', async () => {
    const missing = await fleet('rollout', 'status', 'no-such-rollout')
    expect(missing.code).toBe(2)
    expect(missing.stderr).toMatch(/no rollout with id no-such-rollout/)
    for (const interval of ['0', '10ms', 'soon']) {
      const bad = await fleet('rollout', 'status', '--watch', '--interval', interval)
      expect(bad.code, interval).toBe(2)
      expect(bad.stderr).toMatch(/--interval/)
    }
  })
})

/** A `fleet` process whose output can be read while it runs. */
function startFleet(args: string[], env: NodeJS.ProcessEnv) {
  const child = spawn(process.execPath, [FLEET_BIN, ...args], {
    cwd: os.tmpdir(),
    env: { PATH: process.env.PATH, HOME: process.env.HOME, NO_COLOR: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const output = { stdout: '', stderr: '' }
  child.stdout.on('data', (d: Buffer) => (output.stdout += d.toString()))
  child.stderr.on('data', (d: Buffer) => (output.stderr += d.toString()))
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)))
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000)
  void exited.then(() => clearTimeout(timer))
  return { output, exited }
}

async function until(condition: () => boolean, what: string, ms = 30_000): Promise<void> {
  for (const deadline = Date.now() + ms; !condition(); await sleep(50))
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
}

describe('fleet rollout status --watch while the rollout changes (real Postgres, two processes)', () => {
  it('prints a view per change and exits 0 once the rollout is no longer running', async (t) => {
    const database = await createTestDatabase()
    if (!database) return t.skip()
    const test = await openTestStore('postgres', database.url)
    const store = test.store
    try {
      const id = 'r-watch'
      const hosts = hostRecords(['pending', 'pending', 'pending'])
      const lease = await store.acquireLease(id, 'ops@bastion pid 42')
      if (!lease.acquired) throw new Error('lease')
      const fence = lease.fence
      await store.createRollout(fence, rolloutRecord({ id, state: 'running', currentStage: 0, finishedAt: null, exitCode: null, heartbeatAt: new Date() }), hosts)
      const env = { FLEET_DATABASE_URL: database.url }
      const json = startFleet(['rollout', 'status', id, '--watch', '--json', '--interval', '200ms'], env)
      const human = startFleet(['rollout', 'status', id, '--watch', '--interval', '200ms'], env)
      const jsonLines = () => json.output.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as RolloutStatus)
      await until(() => jsonLines().length === 1 && human.output.stdout.includes('running'), 'the first views')

      await store.heartbeat(fence)
      await sleep(600) // a heartbeat alone is not a change
      expect(jsonLines()).toHaveLength(1)

      await store.updateRolloutHost(fence, hosts[0]!.name, { status: 'updating', step: 'fetch', previousVersion: V1 })
      await until(() => jsonLines().length === 2, 'the updating view')
      await store.updateRolloutHost(fence, hosts[0]!.name, { status: 'success', newVersion: V2 })
      await store.updateRollout(fence, { currentStage: 2 })
      await until(() => jsonLines().at(-1)?.counts.success === 1 && jsonLines().at(-1)?.currentStage === 2, 'the success view')
      await store.updateRolloutHost(fence, hosts[1]!.name, { status: 'skipped', previousVersion: V2, newVersion: V2 })
      await store.updateRolloutHost(fence, hosts[2]!.name, { status: 'success', previousVersion: V1, newVersion: V2 })
      await store.updateRollout(fence, { state: 'completed', finishedAt: new Date(), exitCode: 0 })

      expect(await json.exited).toBe(0)
      expect(await human.exited).toBe(0)
      const states = jsonLines()
      expect(states[0]).toMatchObject({ state: 'running', counts: { pending: 3 } })
      expect(states[1]!.hosts[0]).toMatchObject({ status: 'updating', step: 'fetch' })
      expect(states.at(-1)).toMatchObject({ state: 'completed', exitCode: 0, counts: { success: 2, skipped: 1, pending: 0 } })
      expect(states.slice(0, -1).every((s) => s.state === 'running')).toBe(true)

      // Without a TTY: a new view only on change, nothing redrawn, the final view last.
      const views = human.output.stdout.split(/^(?=rollout r-watch: )/m)
      expect(views.length).toBeGreaterThanOrEqual(3)
      expect(views[0]).toMatch(/^rollout r-watch: running/)
      expect(views.at(-1)).toMatch(/^rollout r-watch: completed/)
      expect(views.at(-1)).toMatch(/^3 hosts: success 2, skipped 1$/m)
      expect(human.output.stdout).not.toMatch(/\x1b\[/)
      expect(human.output.stderr + json.output.stderr).toBe('')
    } finally {
      await test.close()
      await database.drop()
    }
  })
})

describe('fleet rollout status on a store with no rollout yet', () => {
  it('says "no rollouts yet" (exit 0); --json prints null', async () => {
    const test = await openTestStore('pglite')
    await test.store.upsertHosts([{ name: 'web-1', address: '10.0.0.1' }])
    await test.database.close()
    const cwd = await mkdtemp(path.join(os.tmpdir(), 'fleet-status-'))
    try {
      await writeFile(path.join(cwd, 'rollout.config.json'), JSON.stringify({ database: { dir: test.databaseConfig.dir } }))
      const human = await runFleet(['rollout', 'status'], { cwd, env: {} })
      expect(human).toMatchObject({ code: 0, stdout: 'no rollouts yet\n', stderr: '' })
      const json = await runFleet(['rollout', 'status', '--json'], { cwd, env: {} })
      expect(json).toMatchObject({ code: 0, stdout: 'null\n', stderr: '' })
      const watch = await runFleet(['rollout', 'status', '--watch'], { cwd, env: {} })
      expect(watch).toMatchObject({ code: 0, stdout: 'no rollouts yet\n' })
    } finally {
      await rm(cwd, { recursive: true, force: true })
      await rm(test.databaseConfig.dir, { recursive: true, force: true })
    }
  })
})

describe('fleet rollout status --watch on a terminal (a real pty from script(1), real Postgres)', () => {
  it('redraws in place (cursor up, erase) instead of clearing the screen, and exits with the rollout\'s code', async (t) => {
    const database = await createTestDatabase()
    if (!database) return t.skip()
    const test = await openTestStore('postgres', database.url)
    try {
      const id = 'r-tty'
      const hosts = hostRecords(['pending', 'pending'])
      const fence = await seedRollout(test.store, rolloutRecord({ id, state: 'running', currentStage: 0, finishedAt: null, exitCode: null, heartbeatAt: new Date() }), hosts)
      const command = [process.execPath, FLEET_BIN, 'rollout', 'status', id, '--watch', '--interval', '200ms'].map((a) => `'${a}'`).join(' ')
      // A 200×50 terminal: no line of these frames wraps, so a frame's rows are its lines.
      const child = spawn('script', ['-qefc', `stty cols 200 rows 50; exec ${command}`, '/dev/null'], {
        env: { PATH: process.env.PATH, HOME: process.env.HOME, TERM: 'xterm', NO_COLOR: '1', FLEET_DATABASE_URL: database.url },
        stdio: ['ignore', 'pipe', 'pipe'],
      })
      let output = ''
      child.stdout.on('data', (d: Buffer) => (output += d.toString()))
      const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)))
      await until(() => output.includes('rollout r-tty: running'), 'the first frame')
      await sleep(700) // a few redraws of the same view
      await test.store.updateRolloutHost(fence, hosts[0]!.name, { status: 'rolled_back', previousVersion: V1, newVersion: V1, error: 'verify failed' })
      await until(() => output.includes('rolled_back'), 'the changed frame')
      await test.store.updateRollout(fence, { state: 'halted', finishedAt: new Date(), exitCode: 3 })
      expect(await exited).toBe(3)
      expect(output).not.toContain('\x1b[2J')
      // Every frame after the first starts by moving up over the previous one and erasing it.
      const redraws = output.match(/\x1b\[(\d+)A\r\x1b\[J/g) ?? []
      expect(redraws.length).toBeGreaterThanOrEqual(3)
      const frames = output.split(/\x1b\[\d+A\r\x1b\[J/)
      expect(frames[0]).toMatch(/^rollout r-tty: running/)
      expect(frames.at(-1)).toMatch(/^rollout r-tty: halted/)
      expect(frames.at(-1)).toMatch(/exit 3: halted/)
      // The cursor goes up exactly as many rows as the previous frame had.
      for (let i = 1; i < frames.length; i++) {
        const up = Number(/\x1b\[(\d+)A/.exec(redraws[i - 1]!)![1])
        expect(up).toBe(frames[i - 1]!.replace(/\r/g, '').split('\n').length - 1)
      }
    } finally {
      await test.close()
      await database.drop()
    }
  })
})
