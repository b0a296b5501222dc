/**
 * One rollout at a time against one store, from real processes (the built binary): the embedded
 * store's directory lock (PGlite), the lease in Postgres when two orchestrators race, and
 * `fleet rollback <host>` under the same lock.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterEach, describe, expect, it } from 'vitest'

import { runFleet, type FleetRun } from './support/cli.js'
import { expectOn, heldStep, hold, hungInstalls, killSpawned, spawnFleet, until } from './support/fault-kit.js'
import { fleetConfigOverrides, openTestStore, registerHosts, type TestStore } from './support/harness.js'
import { createTestDatabase, type TestDatabase } from './support/postgres.js'
import { startTestFleet, type TestFleet } from './support/test-fleet.js'

let fleet: TestFleet | null = null
let testStore: TestStore | null = null
let database: TestDatabase | null = null
const cleanups: (() => Promise<void>)[] = []

afterEach(async () => {
  killSpawned()
  await testStore?.close().catch(() => {})
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => {})
  await database?.drop()
  await fleet?.stop()
  fleet = testStore = database = null
})

async function workdir(config: object): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'fleet-lock-'))
  await writeFile(path.join(dir, 'rollout.config.json'), JSON.stringify(config, null, 2))
  cleanups.push(() => rm(dir, { recursive: true, force: true }))
  return dir
}

/** A fresh migrated PGlite dir with the fleet's hosts, closed so that `fleet` processes can open it. */
async function pgliteDirWithHosts(f: TestFleet): Promise<string> {
  const s = await openTestStore('pglite')
  await registerHosts(s.store, f)
  await s.database.close()
  const dir = s.databaseConfig.dir
  cleanups.push(() => rm(dir, { recursive: true, force: true }))
  return dir
}





/**
 * Two processes from `start` at the same instant, their hosts' installs held (heldStep) until one
 * of them has exited (the loser, refused) or 30 s have passed: the winner cannot finish before the
 * loser has met the lock, however loaded the machine. Resolves with both runs.
 */
async function raceHeld(f: TestFleet, start: () => Promise<FleetRun>): Promise<FleetRun[]> {
  await hold(f, true)
  const runs = [start(), start()]
  await Promise.race([...runs, sleep(30_000)])
  await hold(f, false)
  return Promise.all(runs)
}

// ---- 7a. the embedded store ---------------------------------------------------------------------

describe('two `rollout start` on one embedded store (PGlite, same dir)', () => {
  it('the second process is refused with exit 6 naming the pid that holds the store; the first finishes', async () => {
    fleet = await startTestFleet({ hosts: 2 })
    const f = fleet
    const dir = await pgliteDirWithHosts(f)
    // The hosts' installs are held, so the first stays busy until the second has been refused, however loaded the machine.
    const cwd = await workdir({ ...fleetConfigOverrides(f, { steps: { install: heldStep('bun install') }, rollout: { stages: [100] } }), database: { dir } })
    await hold(f, true)
    const first = spawnFleet(['rollout', 'start', '--json'], { cwd })
    await first.waitFor((e) => e.type === 'rollout-started')

    const second = await runFleet(['rollout', 'start', '--json'], { cwd })
    expect(second.code).toBe(6)
    expect(second.stdout).toBe('')
    expect(second.stderr).toMatch(new RegExp(`embedded store .* is in use by pid ${first.pid} on ${os.hostname()}`))
    await hold(f, false)

    const done = await first.exited
    expect(done.code).toBe(0)
    for (const h of f.hosts) await expectOn(f, h.name, f.origin.shas.v2)
    // Exactly one rollout was recorded, and nobody holds the store now.
    const history = await runFleet(['history', '--json'], { cwd })
    expect(history.code).toBe(0)
    expect(JSON.parse(history.stdout)).toHaveLength(1)
  })

  it('started at the same instant: exactly one runs (exit 0), the other gets exit 6', async () => {
    fleet = await startTestFleet({ hosts: 2 })
    const f = fleet
    const dir = await pgliteDirWithHosts(f)
    const cwd = await workdir({ ...fleetConfigOverrides(f, { steps: { install: heldStep('bun install') }, rollout: { stages: [100] } }), database: { dir } })
    const runs = await raceHeld(f, () => runFleet(['rollout', 'start'], { cwd }))
    expect(runs.map((r) => r.code).sort()).toEqual([0, 6])
    // Racing to the very same instant the loser may find the lock file created but not yet written, hence no pid.
    expect(runs.find((r) => r.code === 6)!.stderr).toMatch(/embedded store .* is in use by (pid \d+|another fleet process)/)
    for (const h of f.hosts) await expectOn(f, h.name, f.origin.shas.v2)
  })
})

// ---- 7b. Postgres: two orchestrators racing for the lease -----------------------------------------

describe('two `rollout start` racing on one Postgres database', () => {
  it('each round exactly one runs (exit 0) and the other is refused (exit 6, "is running", the winner’s pid); every host ends on the target', async (t) => {
    database = await createTestDatabase()
    if (!database) return t.skip()
    fleet = await startTestFleet({ hosts: 3 })
    const f = fleet
    testStore = await openTestStore('postgres', database.url)
    const { store } = testStore
    await registerHosts(store, f)
    const cwd = await workdir(fleetConfigOverrides(f, { steps: { install: heldStep('bun install') }, rollout: { stages: [100] } }))
    const env = { FLEET_DATABASE_URL: database.url }

    const rounds = [
      { ref: 'v3', sha: f.origin.shas.v3 },
      { ref: 'v2', sha: f.origin.shas.v2 },
      { ref: 'v3', sha: f.origin.shas.v3 },
    ]
    for (const [i, round] of rounds.entries()) {
      const pids: number[] = []
      const runs = await raceHeld(f, () => runFleet(['rollout', 'start', '--ref', round.ref, '--json'], { cwd, env, onSpawn: (pid) => pids.push(pid) }))
      expect(runs.map((r) => r.code).sort(), `round ${i + 1}: ${runs.map((r) => r.stderr).join(' | ')}`).toEqual([0, 6])
      const winner = runs.find((r) => r.code === 0)!
      const loser = runs.find((r) => r.code === 6)!
      const started = JSON.parse(winner.stdout.split('\n')[0]!) as { rolloutId: string }
      expect(loser.stderr).toMatch(new RegExp(`rollout ${started.rolloutId} is running \\(.*@${os.hostname()} pid (${pids.join('|')}),`))
      expect(loser.stdout).toBe('')
      for (const h of f.hosts) await expectOn(f, h.name, round.sha)
      expect(await store.getRollout(started.rolloutId)).toMatchObject({ state: 'completed', exitCode: 0 })
      expect((await store.leaseState()).holder).toBeNull()
    }
    // The losers recorded nothing.
    expect(await store.listRollouts(10)).toHaveLength(rounds.length)
  })
})

// ---- 8. `fleet rollback <host>` under the same lock ---------------------------------------------

describe('`fleet rollback <host>` and the rollout lock (Postgres)', () => {
  it('refuses (exit 6) while a rollout holds the lock, and works once it is done', async (t) => {
    database = await createTestDatabase()
    if (!database) return t.skip()
    fleet = await startTestFleet({ hosts: 2 })
    const f = fleet
    const { v1, v2 } = f.origin.shas
    testStore = await openTestStore('postgres', database.url)
    const { store } = testStore
    await registerHosts(store, f)
    const cwd = await workdir(fleetConfigOverrides(f, { steps: { install: heldStep('bun install') }, rollout: { stages: [100] } }))
    const env = { FLEET_DATABASE_URL: database.url }

    // The rollout's installs wait until the rollback has been refused.
    await hold(f, true)
    const rollout = spawnFleet(['rollout', 'start', '--json'], { cwd, env })
    const started = await rollout.waitFor((e) => e.type === 'rollout-started')
    const refused = await runFleet(['rollback', 'h01', '--to', v1], { cwd, env })
    expect(refused.code).toBe(6)
    expect(refused.stderr).toMatch(new RegExp(`rollout ${started.rolloutId as string} holds the lock`))
    await hold(f, false)

    expect((await rollout.exited).code).toBe(0)
    for (const h of f.hosts) await expectOn(f, h.name, v2)
    // The refused rollback never went near the host: its one connection is the rollout's.
    expect(f.acceptedConnections('h01')).toBe(1)

    // Now it runs: back to the version the rollout recorded as h01's previous one.
    const rollback = await runFleet(['rollback', 'h01', '--json'], { cwd, env })
    expect(rollback.stderr).toBe('')
    expect(rollback.code).toBe(0)
    expect(JSON.parse(rollback.stdout)).toMatchObject({ host: 'h01', to: v1, status: 'success', exitCode: 0 })
    await expectOn(f, 'h01', v1)
    await expectOn(f, 'h02', v2)
    expect((await store.listHosts()).find((h) => h.name === 'h01')).toMatchObject({ status: 'rolled_back', currentVersion: v1 })
    expect((await store.leaseState()).holder).toBeNull()
  })

  it('a `fleet rollback` killed mid-way does not leave the lock held for good: the recovery the tool names releases it', async (t) => {
    database = await createTestDatabase()
    if (!database) return t.skip()
    fleet = await startTestFleet({ hosts: 1 })
    const f = fleet
    const { v1 } = f.origin.shas
    testStore = await openTestStore('postgres', database.url)
    const { store } = testStore
    await registerHosts(store, f)
    const cwd = await workdir(fleetConfigOverrides(f))
    const env = { FLEET_DATABASE_URL: database.url }
    expect((await runFleet(['rollout', 'start'], { cwd, env })).code).toBe(0)

    await f.setFault('h01', 'install-hangs', true)
    const rollback = spawnFleet(['rollback', 'h01', '--to', v1], { cwd, env })
    await until('the rollback’s install to hang', () => hungInstalls(f, 'h01').length > 0)
    rollback.kill('SIGKILL')
    await rollback.exited
    await f.setFault('h01', 'install-hangs', false)
    expect((await store.leaseState()).holder).toMatch(/ pid \d+$/)

    // The holder is dead on this machine; start says so and names resume/abort.
    const start = await runFleet(['rollout', 'start'], { cwd, env })
    expect(start.code).toBe(6)
    expect(start.stderr).toMatch(/fleet rollout abort/)
    const abort = await runFleet(['rollout', 'abort'], { cwd, env })
    expect({ code: abort.code, holder: (await store.leaseState()).holder }).toEqual({ code: 0, holder: null })
    // It says what it released and which host to check.
    expect(abort.stderr).toMatch(/released the lock left by an interrupted `fleet rollback h01`/)

    const again = await runFleet(['rollback', 'h01', '--to', v1], { cwd, env })
    expect(again.code).toBe(0)
    await expectOn(f, 'h01', v1)
  })
})
