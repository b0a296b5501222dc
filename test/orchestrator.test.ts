/**
 * The orchestrator's own faults, on the built binary with real sshd and PGlite: its stdout closed
 * (`| head`), its stderr closed, SIGHUP (the operator's SSH session dropped) and SIGTERM. Each
 * ends with every host in a recorded state that matches the host, and the rollout resumable.
 * Also: `fleet rollback <host>` twice is a no-op the second time.
 */
import { afterEach, describe, expect, it } from 'vitest'

import { makeExecutor } from '../src/cli/context.js'
import { systemClock } from '../src/rollout/clock.js'
import { rollbackOneHost } from '../src/rollout/rollback.js'
import type { HostStatus } from '../src/types.js'
import { hostSettings } from '../src/cli/context.js'
import { runFleet } from './support/cli.js'
import { expectOn, killSpawned, pgliteDirWithHosts, runCleanups, spawnFleet, withPglite, workdir } from './support/fault-kit.js'
import { fleetConfigOverrides, openTestStore, registerHosts, rollout, testConfig, type TestStore } from './support/harness.js'
import { createTestDatabase, type TestDatabase } from './support/postgres.js'
import { startTestFleet, type TestFleet } from './support/test-fleet.js'

let fleet: TestFleet | null = null
let testStore: TestStore | null = null
let database: TestDatabase | null = null

afterEach(async () => {
  killSpawned()
  await testStore?.close()
  await runCleanups()
  await database?.drop()
  await fleet?.stop()
  fleet = testStore = database = null
})

const TERMINAL: readonly HostStatus[] = ['success', 'failed', 'rolled_back', 'rollback_failed', 'skipped', 'pending']

/** A 2-host fleet in a PGlite dir and a working dir whose config runs one host per stage: a signal at the first host leaves the second pending. */
async function setUp() {
  fleet = await startTestFleet({ hosts: 2 })
  const dir = await pgliteDirWithHosts(fleet)
  const cwd = await workdir({ ...fleetConfigOverrides(fleet, { rollout: { stages: [50, 100], concurrency: 1 } }), database: { dir } })
  return { f: fleet, dir, cwd }
}

/** Nothing left updating; each host's stored status is what really runs on it; then resume finishes the job. */
async function expectRecordedThenResume(f: TestFleet, dir: string, cwd: string, rolloutId: string, cause: RegExp): Promise<void> {
  const { v1, v2 } = f.origin.shas
  await withPglite(dir, async (s) => {
    const rollout = await s.getRollout(rolloutId)
    expect(rollout).toMatchObject({ state: 'interrupted', exitCode: 130 })
    expect(rollout?.error).toMatch(cause)
    expect((await s.leaseState()).holder).toBeNull()
    for (const row of await s.listRolloutHosts(rolloutId)) {
      expect(TERMINAL, `${row.name} is ${row.status}`).toContain(row.status)
      await expectOn(f, row.name, row.status === 'success' ? v2 : v1)
    }
  })
  const resumed = await runFleet(['rollout', 'resume', '--json'], { cwd })
  expect(resumed.code, resumed.stderr).toBe(0)
  for (const h of f.hosts) await expectOn(f, h.name, v2)
}

describe('the orchestrator loses its output or its session (the built binary, PGlite)', () => {
  it('stdout closed mid-rollout (`| head`): no crash; stops like SIGHUP → exit 130, hosts recorded, resumable', async () => {
    const { f, dir, cwd } = await setUp()
    const child = spawnFleet(['rollout', 'start', '--json'], { cwd })
    const started = await child.waitFor((e) => e.type === 'host-started')
    child.closePipe('stdout')
    const run = await child.exited
    expect(run.stderr).not.toMatch(/EPIPE|internal error|at .*\.js/)
    expect(run.code).toBe(130)
    await expectRecordedThenResume(f, dir, cwd, started.rolloutId as string, /stopped by output closed \(EPIPE\)/)
  })

  it('stderr closed: human text written there is dropped, the rollout goes on → exit 0', async () => {
    const { f, dir } = await setUp()
    // An invalid inventory row (port 99999) makes fleet write a warning to stderr (stdout carries the JSON).
    const rows = [...f.hosts.map((h) => `('${h.name}', '127.0.0.1', ${h.port}, '${h.appDir}')`), `('bad', '127.0.0.1', 99999, '/srv/app')`]
    const query = `select name, address, port, app_dir from (values ${rows.join(', ')}) as t(name, address, port, app_dir)`
    const cwd = await workdir({ ...fleetConfigOverrides(f, { rollout: { stages: [100] } }), inventory: { query }, database: { dir } })
    const child = spawnFleet(['rollout', 'start', '--json'], { cwd })
    child.closePipe('stderr')
    const run = await child.exited
    expect(run.code).toBe(0)
    expect(child.events.at(-1)).toMatchObject({ type: 'rollout-finished', state: 'completed', exitCode: 0 })
  })

  it.each(['SIGHUP', 'SIGTERM'] as const)('%s mid-stage: in-flight host finishes, exit 130 with the cause recorded, resumable', async (signal) => {
    const { f, dir, cwd } = await setUp()
    const child = spawnFleet(['rollout', 'start', '--json'], { cwd })
    const started = await child.waitFor((e) => e.type === 'host-started')
    child.kill(signal)
    const run = await child.exited
    expect(run.code).toBe(130)
    expect(child.events.some((e) => e.type === 'rollout-stopping' && e.cause === signal)).toBe(true)
    await expectRecordedThenResume(f, dir, cwd, started.rolloutId as string, new RegExp(`stopped by ${signal}`))
  })
})

describe('fleet rollback <host>', () => {
  it('twice: the first moves it back to the version before the rollout, the second says so and changes nothing', async (t) => {
    // In-process, so the store's kind does not matter: a fresh Postgres database opens in ~0.1 s (PGlite: ~2 s of CPU).
    database = await createTestDatabase()
    if (!database) return t.skip()
    fleet = await startTestFleet({ hosts: 2 })
    const f = fleet
    const { v1, v2 } = f.origin.shas
    testStore = await openTestStore('postgres', database.url)
    const { store } = testStore
    await registerHosts(store, f)
    const config = testConfig(f, testStore.databaseConfig, { rollout: { stages: [100] } })
    expect((await rollout(store, config)).exitCode).toBe(0)
    const host = { name: 'h01', address: f.host('h01').address, port: f.host('h01').port, user: f.host('h01').user, appDir: f.host('h01').appDir }
    const once = () =>
      rollbackOneHost(
        { store, executor: makeExecutor(config, store), clock: systemClock },
        { host, settings: hostSettings(config), connectTimeoutMs: 5_000, owner: 'test' },
      )
    const first = await once()
    expect({ action: first.action, status: first.outcome.status, to: first.to, exit: first.exitCode }).toEqual({ action: 'moved', status: 'success', to: v1, exit: 0 })
    await expectOn(f, 'h01', v1)
    const second = await once()
    expect({ action: second.action, to: second.to, exit: second.exitCode }).toEqual({ action: 'already', to: v1, exit: 0 })
    await expectOn(f, 'h01', v1)
    // The history is kept: previous is still the version before the rollout, current is where it runs.
    expect((await store.listHosts()).find((h) => h.name === 'h01')).toMatchObject({ currentVersion: v1, previousVersion: v1, status: 'rolled_back' })
    await expectOn(f, 'h02', v2)
  })
})
