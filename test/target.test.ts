/**
 * Resolving the target before any host changes, against real sshd and git: a silent canary is
 * skipped, a fleet that cannot answer leaves nothing behind, a commit that does not exist is bad
 * input (not a "bad release"), short SHAs work, and the default seed is the target commit so the
 * dry run shows the real run's canaries.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'

import { makeExecutor, rolloutRequest } from '../src/cli/context.js'
import { FleetError } from '../src/errors.js'
import { systemClock } from '../src/rollout/clock.js'
import { planRollout, runRollout } from '../src/rollout/engine.js'
import { canaryOrder } from '../src/rollout/plan.js'
import type { Host } from '../src/types.js'
import type { Session } from '../src/ssh/executor.js'
import { runFleet } from './support/cli.js'
import { expectOn, runCleanups, workdir } from './support/fault-kit.js'
import { ageLease, fleetConfigOverrides, openTestStore, registerHosts, testConfig, type TestStore } from './support/harness.js'
import { startHostile, type HostileListener } from './support/hostile-hosts.js'
import { createTestDatabase, type TestDatabase } from './support/postgres.js'
import { startTestFleet, type TestFleet } from './support/test-fleet.js'

// One fleet and store for the whole file (in order: the read-only cases, then real rollouts). The
// store is a fresh database on the test Postgres: the CLI can use it while the test holds it open.
let fleet: TestFleet
let database: TestDatabase
let testStore: TestStore
let config: ReturnType<typeof testConfig>
const listeners: HostileListener[] = []

beforeAll(async () => {
  const db = await createTestDatabase()
  if (!db) throw new Error('target tests need Postgres (127.0.0.1:5432)')
  database = db
  fleet = await startTestFleet({ hosts: 6 })
  testStore = await openTestStore('postgres', database.url)
  await registerHosts(testStore.store, fleet)
  config = testConfig(fleet, testStore.databaseConfig, { ssh: { connectTimeout: '2s' } })
})

afterEach(async () => {
  for (const l of listeners.splice(0)) await l.close()
  await runCleanups()
})

afterAll(async () => {
  await testStore?.close()
  await database?.drop()
  await fleet?.stop()
})

const setUp = () => ({ f: fleet, store: testStore.store, config })

/** A silent host named so that it is asked first when resolving `ref`. */
async function silentFirst(hosts: readonly Host[], ref: string, template: Host): Promise<Host> {
  const listener = await startHostile('silent')
  listeners.push(listener)
  for (let i = 0; ; i++) {
    const candidate: Host = { ...template, name: `silent-${i}`, port: listener.port }
    if (canaryOrder([...hosts, candidate], ref)[0]!.name === candidate.name) return candidate
  }
}

const catchError = async (p: Promise<unknown>): Promise<unknown> => p.then(() => null, (e: unknown) => e)

describe('resolving the target', () => {
  it('skips a canary that accepts TCP but never speaks SSH, and uses the next one', async () => {
    const { f, store, config } = setUp()
    const hosts = f.hosts.map((h) => ({ name: h.name, address: h.address, port: h.port, user: h.user, appDir: h.appDir }))
    const silent = await silentFirst(hosts, 'main', hosts[0]!)
    const sessions = new Map<string, Session>()
    const started = Date.now()
    const { target } = await planRollout({ executor: makeExecutor(config, store) }, rolloutRequest({ config, configSource: null }, [silent, ...hosts], { ref: 'main' }), sessions)
    for (const s of sessions.values()) s.close()
    expect(target.sha).toBe(f.origin.shas.v2)
    expect(Date.now() - started).toBeLessThan(2_000 + 3_000)
  })

  it('no host answers → exit 1, "nothing was changed", no rollout recorded and no lease left', async () => {
    const { f, store, config } = setUp()
    const template = { name: 'x', address: '127.0.0.1', port: 1, user: f.hosts[0]!.user, appDir: f.hosts[0]!.appDir }
    const silent = await Promise.all([0, 1].map(async (i) => {
      const l = await startHostile(i === 0 ? 'silent' : 'banner-stall')
      listeners.push(l)
      return { ...template, name: `stall-${i}`, port: l.port }
    }))
    const error = await catchError(
      runRollout({ store, executor: makeExecutor(config, store), clock: systemClock, listeners: [] }, rolloutRequest({ config, configSource: null }, silent, { ref: 'main', owner: 'test' })),
    )
    expect(error).toBeInstanceOf(FleetError)
    expect((error as FleetError).exitCode).toBe(1)
    expect((error as FleetError).message).toMatch(/no host could answer .*stall-0: connect timed out.*; nothing was changed/)
    expect((await store.leaseState()).holder).toBeNull()
    expect(await store.listRollouts(10)).toEqual([])
  })

  it('a SHA that is not in the repo is bad input (exit 2) in the dry run and the real run; nothing changes', async () => {
    const { f, store, config } = setUp()
    const missing = 'deadbeef'.repeat(5)
    const error = await catchError(planRollout({ executor: makeExecutor(config, store) }, rolloutRequest({ config, configSource: null }, f.hosts, { ref: missing }), new Map()))
    expect(error).toBeInstanceOf(FleetError)
    expect((error as FleetError).exitCode).toBe(2)
    expect((error as FleetError).message).toMatch(/deadbeefdeadbeef.* does not name a commit of remote "origin" .*nothing was changed/)

    const cwd = await workdir({ ...fleetConfigOverrides(f), database: { url: database.url } })
    for (const args of [['rollout', 'start', '--dry-run', '--ref', missing], ['rollout', 'start', '--ref', missing], ['rollout', 'start', '--ref', 'deadbee']]) {
      const run = await runFleet(args, { cwd })
      expect(run.code, `${args.join(' ')}: ${run.stderr}`).toBe(2)
      expect(run.stderr).toMatch(/does not name a commit/)
    }
    const history = await runFleet(['history', '--json'], { cwd })
    expect(JSON.parse(history.stdout)).toEqual([])
    for (const h of f.hosts) await expectOn(f, h.name, f.origin.shas.v1)
  })

  it('default seed is the target commit: the dry run shows the canaries the real run starts with', async () => {
    const { f, store, config } = setUp()
    const request = rolloutRequest({ config, configSource: null }, f.hosts, { ref: 'main', owner: 'test' })
    const sessions = new Map<string, Session>()
    const dry = await planRollout({ executor: makeExecutor(config, store) }, request, sessions)
    for (const s of sessions.values()) s.close()
    expect(dry.plan.seed).toBe(f.origin.shas.v2)
    const realStages: string[][] = []
    const result = await runRollout(
      { store, executor: makeExecutor(config, store), clock: systemClock, listeners: [(e) => e.type === 'stage-started' && realStages.push(e.hosts)] },
      request,
    )
    expect(result.exitCode).toBe(0)
    expect(realStages).toEqual(dry.plan.byStage.filter((s) => s.length).map((s) => s.map((h) => h.name)))
    expect((await store.getRollout(result.rolloutId))?.seed).toBe(f.origin.shas.v2)
  })

  it('accepts a short SHA and moves hosts to the full commit', async () => {
    const { f, store, config } = setUp()
    const short = f.origin.shas.v3.slice(0, 7)
    const result = await runRollout({ store, executor: makeExecutor(config, store), clock: systemClock, listeners: [] }, rolloutRequest({ config, configSource: null }, f.hosts, { ref: short, owner: 'test' }))
    expect(result.exitCode).toBe(0)
    expect(result.sha).toBe(f.origin.shas.v3)
    for (const h of f.hosts) await expectOn(f, h.name, f.origin.shas.v3)
  })

  it('a lease left by a start that died before recording its rollout does not block the next start', async () => {
    const { f, store, config } = setUp()
    await store.acquireLease('20261130-000000-dead', 'someone@elsewhere pid 1')
    await ageLease(store, 120_000)
    const result = await runRollout({ store, executor: makeExecutor(config, store), clock: systemClock, listeners: [] }, rolloutRequest({ config, configSource: null }, f.hosts, { ref: 'main', owner: 'test' }))
    expect(result.exitCode).toBe(0)
    expect(result.counts.success).toBe(f.hosts.length) // back from v3 to main (v2)
    expect((await store.leaseState()).holder).toBeNull()
  })
})
