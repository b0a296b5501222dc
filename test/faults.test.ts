/**
 * Real fault injection against real parts: OpenSSH sshd killed mid-step, a command that hangs past
 * its timeout, the orchestrator SIGKILLed or interrupted mid-stage (the built binary), every fault
 * at once (the database away mid-rollout is in faults-store.test.ts). Every test checks the
 * final REAL state of every host (HEAD, service) against what the store says, and that no host was
 * lost (none left `updating`).
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { afterEach, describe, expect, it } from 'vitest'

import { systemClock, type Clock } from '../src/rollout/clock.js'
import { Store } from '../src/store/store.js'
import { runFleet } from './support/cli.js'
import { expectOn, hungInstalls, killSpawned, pgliteDirWithHosts, runCleanups, spawnFleet, until, withPglite, workdir } from './support/fault-kit.js'
import { expectNothingLost, expectStoreMatchesHosts, isStep, rolloutWith, statusesOf } from './support/faults.js'
import { fleetConfigOverrides, openTestStore, registerHosts, testConfig, type TestStore } from './support/harness.js'
import { createTestDatabase, type TestDatabase } from './support/postgres.js'
import { startTestFleet, type TestFleet } from './support/test-fleet.js'

// ---- per-test resources, always cleaned up ----------------------------------------------------

let fleet: TestFleet | null = null
let testStore: TestStore | null = null
let database: TestDatabase | null = null

afterEach(async () => {
  killSpawned()
  await testStore?.close().catch(() => {})
  await runCleanups()
  await database?.drop()
  await fleet?.stop()
  fleet = testStore = database = null
})

// ---- helpers ----------------------------------------------------------------------------------

/** An in-process store where its kind does not matter: a fresh Postgres database (~0.1 s, against ~2 s of CPU to open PGlite). */
async function postgresStore(): Promise<Store | null> {
  database = await createTestDatabase()
  if (!database) return null
  testStore = await openTestStore('postgres', database.url)
  return testStore.store
}





/**
 * Real time, but the engine's waits of a second or more (the reconnect backoff: 1, 2, 4 s) take a
 * tenth: the attempts, their order and their outcome are the same. Shorter waits (verify delay and
 * interval) are untouched.
 */
const hurriedClock: Clock = { now: () => systemClock.now(), sleep: (ms, signal) => systemClock.sleep(ms >= 1_000 ? ms / 10 : ms, signal) }

/** The hung install really runs on the host now (the event comes just before the command starts). */
const waitForHungInstall = (f: TestFleet, host: string) => until(`a hung bun install on ${host}`, () => hungInstalls(f, host).length > 0)





// ---- 1. sshd killed mid-step ------------------------------------------------------------------

/**
 * Two hosts, all in one stage, the store a fresh Postgres database (the CLI reaches it at once, no
 * embedded store to hand over); h01's install hangs, and once it really runs, h01's sshd is killed
 * (then `afterKill` runs, e.g. to bring it back). Returns the finished rollout, or null without Postgres.
 */
async function rolloutKillingSshdDuringInstall(afterKill: (f: TestFleet) => Promise<void> = async () => {}, clock: Clock = systemClock) {
  database = await createTestDatabase()
  if (!database) return null
  fleet = await startTestFleet({ hosts: 2 })
  const f = fleet
  testStore = await openTestStore('postgres', database.url)
  const { store } = testStore
  await registerHosts(store, f)
  const { v1, v2 } = f.origin.shas
  await f.setFault('h01', 'install-hangs', true)
  const config = testConfig(f, testStore.databaseConfig, { rollout: { stages: [100], failureThreshold: 1 } })
  let injected: Promise<void> | null = null
  const result = await rolloutWith(store, config, {
    clock,
    listener: (e) => {
      if (!injected && e.type === 'host-step' && e.host === 'h01' && e.step === 'install' && e.phase === 'update')
        injected = (async () => {
          await waitForHungInstall(f, 'h01')
          await f.killSshd('h01')
          await afterKill(f)
        })()
    },
  })
  await injected
  return { f, store, v1, v2, result, url: database.url }
}

describe('sshd killed in the middle of a host’s install', () => {
  it('the engine reconnects for the rollback once sshd is back → rolled_back, really on v1', async (t) => {
    const env = await rolloutKillingSshdDuringInstall(async (f) => {
      await sleep(500)
      await f.setFault('h01', 'install-hangs', false)
      await f.restartSshd('h01')
    })
    if (!env) return t.skip()
    const { f, store, v1, v2, result } = env

    expect(result.state).toBe('completed')
    expect(result.exitCode).toBe(4)
    const rows = await store.listRolloutHosts(result.rolloutId)
    const h01 = rows.find((r) => r.name === 'h01')!
    expect(h01).toMatchObject({ status: 'rolled_back', previousVersion: v1, newVersion: v1, step: 'install' })
    expect(h01.error).toMatch(/install: connection lost/)
    expect(rows.find((r) => r.name === 'h02')).toMatchObject({ status: 'success', newVersion: v2 })
    await expectNothingLost(store, result.rolloutId, ['h01', 'h02'])
    await expectOn(f, 'h01', v1)
    await expectOn(f, 'h02', v2)
    // One connection for the update, one fresh one for the rollback.
    expect(f.acceptedConnections('h01')).toBe(2)
    const rollbackSteps = result.events.filter((e) => e.type === 'host-step' && e.host === 'h01' && e.phase === 'rollback').map((e) => (e as { step: string }).step)
    expect(rollbackSteps).toEqual(['rollback', 'install', 'restart', 'verify', 'confirm'])
    expect((await store.listEvents(result.rolloutId)).map((e) => e.type)).toEqual(result.events.map((e) => e.type))
    expect((await store.listHosts()).find((h) => h.name === 'h01')).toMatchObject({ status: 'rolled_back', currentVersion: v1 })
    expect(hungInstalls(f, 'h01')).toEqual([])
  })

  it('sshd stays dead → rollback_failed (version unknown); `fleet rollback h01 --to v1` repairs it once sshd is back', async (t) => {
    // All four reconnect attempts fail (sshd is gone); the hurried clock only shortens the backoff between them.
    const env = await rolloutKillingSshdDuringInstall(async () => {}, hurriedClock)
    if (!env) return t.skip()
    const { f, store, v1, v2, result, url } = env

    expect(result.exitCode).toBe(5)
    const h01 = (await store.listRolloutHosts(result.rolloutId)).find((r) => r.name === 'h01')!
    // Nobody could look at the host afterwards, so its version is recorded as unknown.
    expect(h01).toMatchObject({ status: 'rollback_failed', previousVersion: v1, newVersion: null, step: 'install' })
    expect(h01.error).toMatch(/install: connection lost/)
    expect(h01.error).toMatch(/ROLLBACK FAILED: cannot connect to 127\.0\.0\.1:\d+/)
    await expectNothingLost(store, result.rolloutId, ['h01', 'h02'])
    await expectOn(f, 'h02', v2)
    // The real state of h01: the new commit was checked out before the install hung, the service was
    // never restarted, so it still runs the old release on a checkout of the new one.
    expect(await f.head('h01')).toBe(v2)
    expect(await f.service('h01')).toEqual({ running: true, sha: v1 })
    expect((await store.listHosts()).find((h) => h.name === 'h01')).toMatchObject({ status: 'rollback_failed' })

    // The operator brings sshd back and moves the host back by hand, through the CLI.
    await f.setFault('h01', 'install-hangs', false)
    await f.restartSshd('h01')
    const cwd = await workdir({ ...fleetConfigOverrides(f), database: { url } })
    const run = await runFleet(['rollback', 'h01', '--to', v1], { cwd })
    expect(run.stderr).toBe('')
    expect(run.code).toBe(0)
    expect(run.stdout).toMatch(/h01: moved .* → .*, verified/)
    await expectOn(f, 'h01', v1)
    await expectOn(f, 'h02', v2)
    // The recorded history is kept: a rollback does not make the bad release the host's "previous" version.
    const row = (await store.listHosts()).find((h) => h.name === 'h01')!
    expect(row).toMatchObject({ status: 'rolled_back', currentVersion: v1 })
    expect(row.previousVersion).not.toBe(v2)
    expect((await store.leaseState()).holder).toBeNull()
    // So `fleet rollback h01` now finds it already on the version before the rollout: nothing to do.
    const again = await runFleet(['rollback', 'h01'], { cwd })
    expect(again.code).toBe(0)
    expect(again.stdout).toMatch(/h01: already on .*nothing to do/)
    await expectOn(f, 'h01', v1)
  })
})

// ---- 2. a command that hangs past its timeout -------------------------------------------------

describe('a command that hangs past its timeout', () => {
  it('install times out → channel closed, host rolled back over the same connection, really on v1', async (t) => {
    const store = await postgresStore()
    if (!store) return t.skip()
    fleet = await startTestFleet({ hosts: 2 })
    const f = fleet
    await registerHosts(store, f)
    const { v1, v2 } = f.origin.shas
    await f.setFault('h02', 'install-hangs', true)
    const config = testConfig(f, testStore!.databaseConfig, { rollout: { stages: [100], failureThreshold: 1 }, timeouts: { command: '2s' } })

    let cleared: Promise<void> | null = null
    const result = await rolloutWith(store, config, {
      listener: (e) => {
        // Once the update's install really hangs, clear the fault so the rollback's install works.
        if (!cleared && e.type === 'host-step' && e.host === 'h02' && e.step === 'install' && e.phase === 'update')
          cleared = (async () => {
            await waitForHungInstall(f, 'h02')
            await f.setFault('h02', 'install-hangs', false)
          })()
      },
    })
    await cleared

    expect(result.exitCode).toBe(4)
    const h02 = (await store.listRolloutHosts(result.rolloutId)).find((r) => r.name === 'h02')!
    expect(h02).toMatchObject({ status: 'rolled_back', previousVersion: v1, newVersion: v1, step: 'install', error: 'install timed out after 2s' })
    await expectNothingLost(store, result.rolloutId, ['h01', 'h02'])
    await expectOn(f, 'h01', v2)
    await expectOn(f, 'h02', v1)
    // Same connection for the rollback: the timeout killed a command, not the session.
    expect(f.acceptedConnections('h02')).toBe(1)
    // The hung command does not outlive its closed channel.
    await until('the timed-out install to exit on the host', () => hungInstalls(f, 'h02').length === 0, 5_000)
  })
})

// ---- 3. the orchestrator SIGKILLed mid-stage ---------------------------------------------------

describe('the orchestrator SIGKILLed mid-stage (real Postgres, read while the CLI runs)', () => {
  /** 4 hosts in two stages (1 + 3), two at a time; returns once the CLI is dead mid-stage 2 (two hosts in flight, one not started). */
  async function killMidSecondStage() {
    database = await createTestDatabase()
    if (!database) return null
    fleet = await startTestFleet({ hosts: 4 })
    testStore = await openTestStore('postgres', database.url)
    const { store } = testStore
    await registerHosts(store, fleet)
    const cwd = await workdir(fleetConfigOverrides(fleet, { verify: { delay: '1s' }, rollout: { stages: [25, 100], concurrency: 2 } }))
    const env = { FLEET_DATABASE_URL: database.url }
    const child = spawnFleet(['rollout', 'start', '--json'], { cwd, env })
    const started = await child.waitFor((e) => e.type === 'rollout-started')
    await child.waitFor(isStep(null, 'verify', 'update', 1))
    child.kill('SIGKILL')
    const run = await child.exited
    expect(run.signal).toBe('SIGKILL')
    const rolloutId = started.rolloutId as string
    return { f: fleet, store, cwd, env, rolloutId, events: child.events }
  }

  it('leaves the rollout running with hosts `updating`; start refuses (exit 6); resume finishes it → every host really on v2', async (t) => {
    const env = await killMidSecondStage()
    if (!env) return t.skip()
    const { f, store, cwd, rolloutId } = env
    const { v1, v2 } = f.origin.shas
    const names = f.hosts.map((h) => h.name)

    expect(await store.getRollout(rolloutId)).toMatchObject({ state: 'running', currentStage: 1, finishedAt: null })
    const killed = await store.listRolloutHosts(rolloutId)
    expect(killed.filter((r) => r.status === 'updating').length).toBeGreaterThanOrEqual(1)
    expect(killed.filter((r) => r.stage === 0).every((r) => r.status === 'success')).toBe(true)
    expect((await store.leaseState()).rolloutId).toBe(rolloutId)
    const connectionsBefore = Object.fromEntries(names.map((n) => [n, f.acceptedConnections(n)]))

    const status = await runFleet(['rollout', 'status', '--json'], { cwd, env: env.env })
    expect(status.code).toBe(0)
    expect(JSON.parse(status.stdout)).toMatchObject({ id: rolloutId, state: 'running' })

    // The holder's pid is dead on this machine: the lease is stale at once, and start says what to do.
    const second = await runFleet(['rollout', 'start'], { cwd, env: env.env })
    expect(second.code).toBe(6)
    expect(second.stderr).toMatch(new RegExp(`rollout ${rolloutId} .*stopped without finishing`))
    expect(second.stderr).toMatch(/fleet rollout resume/)
    expect(second.stderr).toMatch(/fleet rollout abort/)

    const resume = await runFleet(['rollout', 'resume', '--json'], { cwd, env: env.env })
    expect(resume.stderr).toBe('')
    expect(resume.code).toBe(0)
    const events = resume.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>)
    expect(events.at(-1)).toMatchObject({ type: 'rollout-finished', rolloutId, state: 'completed', exitCode: 0 })

    expect(await store.getRollout(rolloutId)).toMatchObject({ state: 'completed', exitCode: 0 })
    expect(await statusesOf(store, rolloutId)).toEqual(Object.fromEntries(names.map((n) => [n, 'success'])))
    for (const row of await store.listRolloutHosts(rolloutId)) expect(row).toMatchObject({ previousVersion: v1, newVersion: v2 })
    for (const name of names) await expectOn(f, name, v2)
    // Hosts finished before the crash were not touched again.
    for (const row of killed.filter((r) => r.status === 'success')) expect(f.acceptedConnections(row.name)).toBe(connectionsBefore[row.name])
    const stored = (await store.listEvents(rolloutId)).map((e) => e.type)
    expect(stored).toContain('rollout-resumed')
    expect(stored.at(-1)).toBe('rollout-finished')
    expect((await store.leaseState()).holder).toBeNull()
  })

  it('abort --rollback after the SIGKILL: updated hosts back on v1 (rolled_back), never-started hosts untouched → exit 0', async (t) => {
    const env = await killMidSecondStage()
    if (!env) return t.skip()
    const { f, store, cwd, rolloutId } = env
    const { v1 } = f.origin.shas
    const names = f.hosts.map((h) => h.name)
    const killed = await store.listRolloutHosts(rolloutId)
    const neverStarted = killed.filter((r) => r.status === 'pending').map((r) => r.name)
    expect(neverStarted.length).toBeGreaterThanOrEqual(1)

    const abort = await runFleet(['rollout', 'abort', '--rollback', '--json'], { cwd, env: env.env })
    expect(abort.stderr).toBe('')
    expect(abort.code).toBe(0)

    expect(await store.getRollout(rolloutId)).toMatchObject({ state: 'aborted' })
    const rows = await store.listRolloutHosts(rolloutId)
    await expectNothingLost(store, rolloutId, names)
    for (const row of rows) {
      if (neverStarted.includes(row.name)) {
        expect(row.status).toBe('pending')
        expect(f.acceptedConnections(row.name)).toBe(0)
      } else {
        expect(row.status).toBe('rolled_back')
        expect(row.newVersion).toBe(v1)
      }
      await expectOn(f, row.name, v1)
    }
    expect((await store.listEvents(rolloutId)).map((e) => e.type)).toContain('rollout-aborting')
    expect((await store.leaseState()).holder).toBeNull()
  })

  it('SIGKILL while a host’s install runs (checked out, not restarted): after resume the stored status matches what really runs', async (t) => {
    const store = await postgresStore()
    if (!store) return t.skip()
    fleet = await startTestFleet({ hosts: 2 })
    const f = fleet
    const { v1, v2 } = f.origin.shas
    await registerHosts(store, f)
    const cwd = await workdir({ ...fleetConfigOverrides(f, { rollout: { stages: [100], concurrency: 2 } }), database: { url: database!.url } })
    await f.setFault('h01', 'install-hangs', true)
    const child = spawnFleet(['rollout', 'start', '--json'], { cwd })
    const started = await child.waitFor((e) => e.type === 'rollout-started')
    await child.waitFor((e) => e.type === 'host-finished' && e.host === 'h02')
    await child.waitFor(isStep('h01', 'install'))
    await waitForHungInstall(f, 'h01')
    child.kill('SIGKILL')
    await child.exited
    await f.setFault('h01', 'install-hangs', false)
    const rolloutId = started.rolloutId as string

    // What the crash left: h01 half-way (new commit checked out, old release still running).
    expect(await f.head('h01')).toBe(v2)
    expect(await f.service('h01')).toEqual({ running: true, sha: v1 })
    expect((await store.listRolloutHosts(rolloutId)).find((r) => r.name === 'h01')).toMatchObject({ status: 'updating', step: 'install', previousVersion: v1 })

    const resume = await runFleet(['rollout', 'resume', '--json'], { cwd })
    expect([0, 4]).toContain(resume.code)
    await expectNothingLost(store, rolloutId, ['h01', 'h02'])
    const h01 = (await store.listRolloutHosts(rolloutId)).find((r) => r.name === 'h01')!
    expect(['success', 'rolled_back']).toContain(h01.status)
    // `success` must mean the new release really runs; `rolled_back` that the old one does on its own commit.
    await expectStoreMatchesHosts(f, store, rolloutId, v2)
  })
})

// ---- 4. SIGINT mid-stage ----------------------------------------------------------------------

describe('SIGINT mid-stage (the built binary, PGlite)', () => {
  it('first SIGINT: in-flight host finishes, later hosts untouched, state interrupted, exit 130; the lock is free for the next start', async () => {
    fleet = await startTestFleet({ hosts: 4 })
    const f = fleet
    const { v1, v2 } = f.origin.shas
    const dir = await pgliteDirWithHosts(f)
    const cwd = await workdir({ ...fleetConfigOverrides(f, { rollout: { stages: [25, 100], concurrency: 1 } }), database: { dir } })
    const child = spawnFleet(['rollout', 'start', '--json'], { cwd })
    const first = await child.waitFor((e) => e.type === 'host-started' && e.stage === 1)
    child.kill('SIGINT')
    const run = await child.exited
    expect(run.code).toBe(130)
    const rolloutId = first.rolloutId as string
    const names = f.hosts.map((h) => h.name)
    expect(child.events.some((e) => e.type === 'rollout-stopping' && e.reason === 'signal')).toBe(true)
    expect(child.events.at(-1)).toMatchObject({ type: 'rollout-finished', state: 'interrupted', exitCode: 130 })

    const statuses = await withPglite(dir, async (s) => {
      await expectNothingLost(s, rolloutId, names)
      expect(await s.getRollout(rolloutId)).toMatchObject({ state: 'interrupted', exitCode: 130 })
      expect((await s.leaseState()).holder).toBeNull()
      await expectStoreMatchesHosts(f, s, rolloutId, v2)
      return statusesOf(s, rolloutId)
    })
    // The canary and the host in flight when the signal came finished; the other two never started.
    expect(statuses[first.host as string]).toBe('success')
    const untouched = names.filter((n) => statuses[n] === 'pending')
    expect(untouched).toHaveLength(2)
    for (const name of untouched) await expectOn(f, name, v1)
    // Untouched: no host of a later stage was changed. The default seed is the target commit, so the
    // branch was resolved (read-only `git ls-remote`) on a host picked before the canaries were
    // known; that one connection, kept for its own update, is the only one allowed.
    expect(untouched.reduce((n, name) => n + f.acceptedConnections(name), 0)).toBeLessThanOrEqual(1)

    // Nothing holds the lock: the next start runs and finishes the job (two at a time).
    const again = await runFleet(['rollout', 'start', '--json', '--concurrency', '2'], { cwd })
    expect(again.stderr).toBe('')
    expect(again.code).toBe(0)
    for (const name of names) await expectOn(f, name, v2)
  })

  it('second SIGINT while an install hangs: the install is killed and the host rolled back → exit 130', async () => {
    fleet = await startTestFleet({ hosts: 2 })
    const f = fleet
    const { v1, v2 } = f.origin.shas
    const dir = await pgliteDirWithHosts(f)
    const cwd = await workdir({ ...fleetConfigOverrides(f, { rollout: { stages: [100], concurrency: 2 } }), database: { dir } })
    await f.setFault('h01', 'install-hangs', true)
    const child = spawnFleet(['rollout', 'start', '--json'], { cwd })
    const started = await child.waitFor((e) => e.type === 'rollout-started')
    await child.waitFor((e) => e.type === 'host-finished' && e.host === 'h02')
    await child.waitFor(isStep('h01', 'install'))
    await waitForHungInstall(f, 'h01')
    // The hung command is committed to hanging; the rollback's install must work.
    await f.setFault('h01', 'install-hangs', false)
    child.kill('SIGINT')
    await child.waitFor((e) => e.type === 'rollout-stopping')
    child.kill('SIGINT')
    const run = await child.exited
    const rolloutId = started.rolloutId as string

    await withPglite(dir, async (s) => {
      await expectNothingLost(s, rolloutId, ['h01', 'h02'])
      // Ctrl-C twice is the operator's decision, not a failing stage: interrupted (130), never "halted" (3).
      expect({ code: run.code, state: (await s.getRollout(rolloutId))?.state }).toEqual({ code: 130, state: 'interrupted' })
      const h01 = (await s.listRolloutHosts(rolloutId)).find((r) => r.name === 'h01')!
      expect(h01).toMatchObject({ status: 'rolled_back', step: 'install', previousVersion: v1, newVersion: v1 })
      expect(h01.error).toMatch(/install aborted by the operator/)
      expect((await s.leaseState()).holder).toBeNull()
    })
    await expectOn(f, 'h01', v1)
    await expectOn(f, 'h02', v2)
    await until('the aborted install to exit on the host', () => hungInstalls(f, 'h01').length === 0, 5_000)
  })
})

// ---- 6. everything at once --------------------------------------------------------------------

describe('fault matrix in one rollout', () => {
  it('crash on start, install timeout, broken runtime, dirty worktree, healthy hosts: each host its own correct outcome → exit 5', async (t) => {
    const store = await postgresStore()
    if (!store) return t.skip()
    fleet = await startTestFleet({ hosts: 6 })
    const f = fleet
    await registerHosts(store, f)
    const { v1, v2 } = f.origin.shas
    await f.setFault('h01', 'new-release-crashes', true)
    await f.setFault('h02', 'install-hangs', true)
    await f.setFault('h03', 'service-broken', true)
    await f.dirtyWorktree('h04')
    const config = testConfig(f, testStore!.databaseConfig, { rollout: { stages: [100], failureThreshold: 1 }, timeouts: { command: '2s' } })
    let cleared: Promise<void> | null = null
    const result = await rolloutWith(store, config, {
      listener: (e) => {
        if (!cleared && e.type === 'host-step' && e.host === 'h02' && e.step === 'install')
          cleared = waitForHungInstall(f, 'h02').then(() => f.setFault('h02', 'install-hangs', false))
      },
    })
    await cleared

    expect(result.exitCode).toBe(5)
    expect(await statusesOf(store, result.rolloutId)).toEqual({
      h01: 'rolled_back',
      h02: 'rolled_back',
      h03: 'rollback_failed',
      h04: 'failed',
      h05: 'success',
      h06: 'success',
    })
    const rows = Object.fromEntries((await store.listRolloutHosts(result.rolloutId)).map((r) => [r.name, r]))
    expect(rows.h01).toMatchObject({ step: 'verify' })
    expect(rows.h02).toMatchObject({ step: 'install', error: 'install timed out after 2s' })
    expect(rows.h03!.error).toMatch(/ROLLBACK FAILED/)
    expect(rows.h04!.error).toMatch(/local modifications/)
    await expectOn(f, 'h01', v1)
    await expectOn(f, 'h02', v1)
    expect(await f.head('h03')).toBe(v1)
    expect(rows.h03!.newVersion).toBe(v1)
    expect((await f.service('h03')).running).toBe(false)
    expect(await f.head('h04')).toBe(v1)
    await expectOn(f, 'h05', v2)
    await expectOn(f, 'h06', v2)
    await expectNothingLost(store, result.rolloutId, f.hosts.map((h) => h.name))
  })
})
