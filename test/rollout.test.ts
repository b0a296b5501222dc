/**
 * The core rollout, end to end against real parts: OpenSSH sshd per simulated
 * host, real git checkouts, a service that really starts or crashes, and the
 * real store (PGlite, and the real Postgres server).
 */
import { afterEach, describe, expect, it } from 'vitest'

import type { HostStatus } from '../src/types.js'
import { createTestDatabase, type TestDatabase } from './support/postgres.js'
import { openTestStore, registerHosts, rollout, testConfig, type StoreKind, type TestStore } from './support/harness.js'
import { startTestFleet, type TestFleet } from './support/test-fleet.js'

let fleet: TestFleet | null = null
let testStore: TestStore | null = null
let database: TestDatabase | null = null

afterEach(async () => {
  await testStore?.close()
  await database?.drop()
  await fleet?.stop()
  fleet = testStore = database = null
})

async function setUp(kind: StoreKind, hosts: number, options: Parameters<typeof startTestFleet>[0] = {}) {
  fleet = await startTestFleet({ hosts, ...options })
  if (kind === 'postgres') {
    database = await createTestDatabase()
    if (!database) return null
  }
  testStore = await openTestStore(kind, database?.url)
  await registerHosts(testStore.store, fleet)
  return { fleet, store: testStore.store, dbConfig: testStore.databaseConfig }
}

const statusesOf = async (store: TestStore['store'], id: string): Promise<Record<string, HostStatus>> =>
  Object.fromEntries((await store.listRolloutHosts(id)).map((h) => [h.name, h.status]))

describe.each(['pglite', 'postgres'] as const)('rollout on %s', (kind) => {
  it('updates every host to the target over one SSH connection each → exit 0', async (t) => {
    const env = await setUp(kind, 6)
    if (!env) return t.skip()
    const config = testConfig(env.fleet, env.dbConfig)
    const result = await rollout(env.store, config)

    expect(result.exitCode).toBe(0)
    expect(result.state).toBe('completed')
    expect(result.sha).toBe(env.fleet.origin.shas.v2)
    for (const host of env.fleet.hosts) {
      expect(await env.fleet.head(host.name)).toBe(env.fleet.origin.shas.v2)
      expect(await env.fleet.service(host.name)).toEqual({ running: true, sha: env.fleet.origin.shas.v2 })
      expect(env.fleet.acceptedConnections(host.name)).toBe(1)
    }
    const hosts = await env.store.listRolloutHosts(result.rolloutId)
    expect(hosts.every((h) => h.status === 'success' && h.previousVersion === env.fleet.origin.shas.v1 && h.newVersion === env.fleet.origin.shas.v2)).toBe(true)
    const inventory = await env.store.listHosts()
    expect(inventory.every((h) => h.currentVersion === env.fleet.origin.shas.v2 && h.status === 'success')).toBe(true)
    const stored = await env.store.getRollout(result.rolloutId)
    expect(stored).toMatchObject({ state: 'completed', exitCode: 0, sha: env.fleet.origin.shas.v2 })
    // 6 hosts at 10/50/100 → stages of 1, 2, 3, run in order.
    const stageStarts = result.events.filter((e) => e.type === 'stage-started').map((e) => (e.type === 'stage-started' ? e.hosts.length : 0))
    expect(stageStarts).toEqual([1, 2, 3])
    expect((await env.store.listEvents(result.rolloutId)).map((e) => e.type)).toEqual(result.events.map((e) => e.type))
  })

  it('rolls back the one host a new release cannot run on → exit 4', async (t) => {
    const env = await setUp(kind, 5)
    if (!env) return t.skip()
    await env.fleet.setFault('h03', 'new-release-crashes', true)
    const config = testConfig(env.fleet, env.dbConfig, { rollout: { stages: [100] } })
    const result = await rollout(env.store, config)

    expect(result.exitCode).toBe(4)
    const { v1, v2 } = env.fleet.origin.shas
    expect(await env.fleet.head('h03')).toBe(v1)
    expect(await env.fleet.service('h03')).toEqual({ running: true, sha: v1 })
    for (const name of ['h01', 'h02', 'h04', 'h05']) expect(await env.fleet.head(name)).toBe(v2)
    const h03 = (await env.store.listRolloutHosts(result.rolloutId)).find((h) => h.name === 'h03')!
    expect(h03).toMatchObject({ status: 'rolled_back', previousVersion: v1, newVersion: v1, step: 'verify' })
    expect(h03.error).toMatch(/verify failed/)
    expect((await env.store.listHosts()).find((h) => h.name === 'h03')).toMatchObject({ status: 'rolled_back', currentVersion: v1 })
  })
})

// The faults below do not depend on the store (both kinds are covered above): each runs on a fresh
// Postgres database, which opens in ~0.1 s against ~2 s of CPU for a PGlite copy.
describe('rollout faults', () => {
  it('halts at the canary stage on a crashing release; canary rolled back, later stages untouched → exit 3', async (t) => {
    // 4 hosts at 10/50/100: a canary of one, then stages of 1 and 2 that must stay untouched.
    const env = await setUp('postgres', 4)
    if (!env) return t.skip()
    const config = testConfig(env.fleet, env.dbConfig)
    const result = await rollout(env.store, config, { ref: 'crash' })

    expect(result.exitCode).toBe(3)
    expect(result.state).toBe('halted')
    const rows = await env.store.listRolloutHosts(result.rolloutId)
    const canary = rows.filter((h) => h.stage === 0)
    expect(canary).toHaveLength(1)
    expect(canary[0]).toMatchObject({ status: 'rolled_back' })
    expect(rows.filter((h) => h.stage > 0).map((h) => h.status)).toEqual(['pending', 'pending', 'pending'])
    for (const host of env.fleet.hosts) {
      expect(await env.fleet.head(host.name)).toBe(env.fleet.origin.shas.v1)
      expect(await env.fleet.service(host.name)).toEqual({ running: true, sha: env.fleet.origin.shas.v1 })
      // Untouched hosts were never even connected to.
      if (host.name !== canary[0]!.name) expect(env.fleet.acceptedConnections(host.name)).toBe(0)
    }
  })

  it('reports a host whose rollback fails too → exit 5, real state recorded', async (t) => {
    const env = await setUp('postgres', 4)
    if (!env) return t.skip()
    await env.fleet.setFault('h02', 'service-broken', true)
    const config = testConfig(env.fleet, env.dbConfig, { rollout: { stages: [100] } })
    const result = await rollout(env.store, config)

    expect(result.exitCode).toBe(5)
    const h02 = (await env.store.listRolloutHosts(result.rolloutId)).find((h) => h.name === 'h02')!
    expect(h02.status).toBe('rollback_failed')
    expect(h02.error).toMatch(/ROLLBACK FAILED/)
    // What is recorded is what is on the host: the old commit checked out, the service down.
    expect(h02.newVersion).toBe(await env.fleet.head('h02'))
    expect(await env.fleet.head('h02')).toBe(env.fleet.origin.shas.v1)
    expect((await env.fleet.service('h02')).running).toBe(false)
  })

  it('rolls back a release whose install fails', async (t) => {
    const env = await setUp('postgres', 2)
    if (!env) return t.skip()
    const config = testConfig(env.fleet, env.dbConfig, { rollout: { stages: [100], failureThreshold: 1 } })
    const result = await rollout(env.store, config, { ref: 'bad-install' })
    expect(result.exitCode).toBe(4)
    expect(await statusesOf(env.store, result.rolloutId)).toEqual({ h01: 'rolled_back', h02: 'rolled_back' })
    const rows = await env.store.listRolloutHosts(result.rolloutId)
    expect(rows.every((h) => h.step === 'install' && /install failed/.test(h.error ?? ''))).toBe(true)
    for (const host of env.fleet.hosts) expect(await env.fleet.service(host.name)).toEqual({ running: true, sha: env.fleet.origin.shas.v1 })
  })

  it('skips hosts already on the target and refuses a dirty worktree without touching it', async (t) => {
    const env = await setUp('postgres', 4, { initialRelease: { h01: 'v2', h02: 'v2' } })
    if (!env) return t.skip()
    await env.fleet.dirtyWorktree('h03')
    const config = testConfig(env.fleet, env.dbConfig, { rollout: { stages: [100], failureThreshold: 1 } })
    const before = await env.fleet.service('h01')
    const result = await rollout(env.store, config)

    expect(await statusesOf(env.store, result.rolloutId)).toEqual({ h01: 'skipped', h02: 'skipped', h03: 'failed', h04: 'success' })
    expect(result.exitCode).toBe(4)
    expect(await env.fleet.service('h01')).toEqual(before)
    expect(await env.fleet.head('h03')).toBe(env.fleet.origin.shas.v1)
    const h03 = (await env.store.listRolloutHosts(result.rolloutId)).find((h) => h.name === 'h03')!
    expect(h03.error).toMatch(/local modifications/)
  })

  it('fails an unreachable host without rolling anything back', async (t) => {
    const env = await setUp('postgres', 3)
    if (!env) return t.skip()
    await env.fleet.killSshd('h02')
    const config = testConfig(env.fleet, env.dbConfig, { rollout: { stages: [100], failureThreshold: 0.5 } })
    const result = await rollout(env.store, config)
    expect(await statusesOf(env.store, result.rolloutId)).toMatchObject({ h02: 'failed' })
    const h02 = (await env.store.listRolloutHosts(result.rolloutId)).find((h) => h.name === 'h02')!
    expect(h02).toMatchObject({ step: 'connect', previousVersion: null })
    expect(await env.fleet.head('h02')).toBe(env.fleet.origin.shas.v1)
    expect(result.exitCode).toBe(4)
  })
})
