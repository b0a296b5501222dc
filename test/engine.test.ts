/**
 * The real engine (decision core + driver + PGlite store) in milliseconds: a fake clock and a
 * scripted executor make failures happen on cue. Threshold and early halt, stage delays, store
 * outages, resume of every state a crash can leave a host in, interrupt and abort.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { abortRollout, resumeRollout, runRollout, type RolloutDeps, type RolloutRequest, type RolloutResult } from '../src/rollout/engine.js'
import type { RolloutEvent } from '../src/rollout/events.js'
import { refuseIfInActiveRollout } from '../src/rollout/lease.js'
import type { HostStatus } from '../src/types.js'
import { Store } from '../src/store/store.js'
import type { Executor } from '../src/ssh/executor.js'
import { ageLease, openTestStore, seedRollout, testFence, type TestStore } from './support/harness.js'
import { fakeClock, ScriptedFleet, scriptedRequest } from './support/scripted.js'

const OLD = 'a'.repeat(40)
const NEW = 'b'.repeat(40)

let testStore: TestStore
beforeAll(async () => {
  testStore = await openTestStore('pglite')
})
afterAll(async () => {
  await testStore.close()
})

const names = (n: number) => Array.from({ length: n }, (_, i) => `h${String(i).padStart(2, '0')}`)

function request(hosts: readonly string[], over: Partial<RolloutRequest> = {}): RolloutRequest {
  return scriptedRequest(hosts, { seed: 'engine', ...over })
}

async function run(fleet: ScriptedFleet, req: RolloutRequest, options: { store?: Store; clock?: ReturnType<typeof fakeClock>; stop?: AbortSignal; onEvent?: (e: RolloutEvent) => void } = {}) {
  const events: RolloutEvent[] = []
  const clock = options.clock ?? fakeClock()
  const result = await runRollout(
    {
      store: options.store ?? testStore.store,
      executor: fleet,
      clock,
      listeners: [(e) => (events.push(e), options.onEvent?.(e))],
      ...(options.stop ? { stop: options.stop } : {}),
    },
    req,
  )
  return { result, events, clock }
}

const until = async (done: () => boolean) => {
  for (let i = 0; i < 500 && !done(); i++) await new Promise((resolve) => setTimeout(resolve, 10))
  expect(done()).toBe(true)
}

const statuses = async (id: string): Promise<Record<string, HostStatus>> => Object.fromEntries((await testStore.store.listRolloutHosts(id)).map((h) => [h.name, h.status]))

describe('the engine with a fake clock and scripted hosts', () => {
  it('completes: every host moved and running the target, one connection each, no real waiting', async () => {
    const fleet = new ScriptedFleet(names(6), OLD, { main: NEW })
    const started = Date.now()
    const { result, events, clock } = await run(fleet, request(names(6), { stages: [10, 50, 100], stageDelayMs: 10_000 }))
    expect(result).toMatchObject({ state: 'completed', exitCode: 0, sha: NEW })
    for (const h of fleet.hosts.values()) expect({ head: h.head, running: h.running }).toEqual({ head: NEW, running: NEW })
    expect(fleet.connects).toBe(6)
    // Two stage delays of 10 s and each stage's verify delay of 5 s passed on the fake clock only.
    expect(events.filter((e) => e.type === 'stage-delay')).toHaveLength(2)
    expect(clock.now() - Date.parse('2026-01-01T00:00:00Z')).toBeGreaterThanOrEqual(2 * 10_000 + 3 * 5_000)
    expect(Date.now() - started).toBeLessThan(5_000)
    const starts = events.filter((e): e is Extract<RolloutEvent, { type: 'stage-started' }> => e.type === 'stage-started')
    const ends = events.filter((e): e is Extract<RolloutEvent, { type: 'stage-finished' }> => e.type === 'stage-finished')
    expect(starts.map((s) => s.hosts.length)).toEqual([1, 2, 3])
    for (let i = 1; i < starts.length; i++) expect(Date.parse(starts[i]!.at) - Date.parse(ends[i - 1]!.at)).toBeGreaterThanOrEqual(10_000)
  })

  it('early halt: once the threshold is certainly exceeded, no further host starts → exit 3', async () => {
    const fleet = new ScriptedFleet(names(10), OLD, { main: NEW })
    for (const h of fleet.hosts.values()) h.failOn = [{ step: 'install', sha: NEW }]
    const { result } = await run(fleet, request(names(10), { concurrency: 1 }))
    expect(result).toMatchObject({ state: 'halted', exitCode: 3 })
    // 4 of 10 > 0.3 is certain after the 4th failure: the other 6 were never touched.
    expect(result.counts).toMatchObject({ rolled_back: 4, pending: 6 })
    const touched = [...fleet.hosts.values()].filter((h) => h.log.some((c) => c.includes('checkout')))
    expect(touched).toHaveLength(4)
    for (const h of touched) expect({ head: h.head, running: h.running }).toEqual({ head: OLD, running: OLD })
  })

  it('under the threshold: the failing host is rolled back, the rest go on → exit 4', async () => {
    const fleet = new ScriptedFleet(names(5), OLD, { main: NEW })
    fleet.host('h02').failOn = [{ step: 'verify', sha: NEW }]
    const { result } = await run(fleet, request(names(5)))
    expect(result).toMatchObject({ state: 'completed', exitCode: 4 })
    expect(await statuses(result.rolloutId)).toEqual({ h00: 'success', h01: 'success', h02: 'rolled_back', h03: 'success', h04: 'success' })
    expect(fleet.host('h02')).toMatchObject({ head: OLD, running: OLD })
  })

  it('a rollback that fails too → rollback_failed, exit 5', async () => {
    const fleet = new ScriptedFleet(names(3), OLD, { main: NEW })
    fleet.host('h01').failOn = [{ step: 'restart', sha: NEW }, { step: 'restart', sha: OLD }]
    const { result } = await run(fleet, request(names(3), { failureThreshold: 1 }))
    expect(result).toMatchObject({ exitCode: 5 })
    expect((await statuses(result.rolloutId)).h01).toBe('rollback_failed')
  })

  it('a store outage: writes retried, the operator told at once, the rollout completes', async () => {
    const fleet = new ScriptedFleet(names(4), OLD, { main: NEW })
    const clock = fakeClock()
    let downUntil = 0
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' })
    const store = new Proxy(testStore.store, {
      get(target, key, receiver) {
        const value = Reflect.get(target, key, receiver) as unknown
        if (typeof value !== 'function') return value
        return (...args: unknown[]) => (clock.now() < downUntil ? Promise.reject(refused) : (value as (...a: unknown[]) => unknown).apply(target, args))
      },
    })
    let first = true
    const { result, events } = await run(fleet, request(names(4), { concurrency: 1 }), {
      store,
      clock,
      onEvent: (e) => {
        if (e.type === 'host-finished' && first) {
          first = false
          downUntil = clock.now() + 3_000
        }
      },
    })
    expect(result).toMatchObject({ state: 'completed', exitCode: 0 })
    const types = events.map((e) => e.type)
    expect(types.indexOf('store-recovered')).toBeGreaterThan(types.indexOf('store-unavailable'))
    expect(types.indexOf('store-unavailable')).toBeGreaterThan(-1)
  })

  it('stopped after the first stage: interrupted (130), then resume finishes the job', async () => {
    const fleet = new ScriptedFleet(names(4), OLD, { main: NEW })
    const stop = new AbortController()
    const { result } = await run(fleet, request(names(4), { stages: [25, 100] }), {
      stop: stop.signal,
      onEvent: (e) => e.type === 'stage-finished' && stop.abort('SIGTERM'),
    })
    expect(result).toMatchObject({ state: 'interrupted', exitCode: 130 })
    expect(result.counts).toMatchObject({ success: 1, pending: 3 })
    const resumed = (await resumeRollout({ store: testStore.store, executor: fleet, clock: fakeClock(), listeners: [] }, 'test')) as RolloutResult
    expect(resumed).toMatchObject({ rolloutId: result.rolloutId, state: 'completed', exitCode: 0 })
    for (const h of fleet.hosts.values()) expect(h.head).toBe(NEW)
  })

  it('abort --rollback after an interrupt: updated hosts moved back, exit 0, recorded as aborted', async () => {
    const fleet = new ScriptedFleet(names(4), OLD, { main: NEW })
    const stop = new AbortController()
    const { result } = await run(fleet, request(names(4), { stages: [50, 100] }), {
      stop: stop.signal,
      onEvent: (e) => e.type === 'stage-finished' && stop.abort('SIGINT'),
    })
    expect(result.counts).toMatchObject({ success: 2, pending: 2 })
    const events: RolloutEvent[] = []
    const aborted = (await abortRollout({ store: testStore.store, executor: fleet, clock: fakeClock(), listeners: [(e) => events.push(e)] }, 'test', { rollback: true })) as RolloutResult & { revertComplete: boolean }
    expect(aborted).toMatchObject({ state: 'aborted', exitCode: 0, revertComplete: true })
    expect(aborted.counts).toMatchObject({ rolled_back: 2, pending: 2 })
    expect(events.at(-1)).toMatchObject({ type: 'rollout-finished', state: 'aborted', exitCode: 0 })
    for (const h of fleet.hosts.values()) expect(h.head).toBe(OLD)
    // A move back keeps the version the host ran before the rollout as its previous one.
    for (const r of (await testStore.store.listRolloutHosts(result.rolloutId)).filter((r) => r.status === 'rolled_back')) expect([r.previousVersion, r.newVersion]).toEqual([OLD, OLD])
  })
})

describe('a revert frozen mid-move, then taken over: every row ends true of its host', () => {
  const gates = { bakeMs: 60_000, intervalMs: 10_000, prometheus: { url: null, timeoutMs: 1_000 }, metrics: [], checks: [{ name: 'bad', command: 'exit 1' }], failureLimit: 0, inconclusiveLimit: 3, errorTimeoutMs: 60_000, onFail: 'revert' as const }

  /** On a store of its own, runs `revert` on 4 hosts until the first host it moves back freezes at its install; its lease then lapses. */
  async function frozenRevert(revert: (fleet: ScriptedFleet, deps: (fleet: ScriptedFleet) => RolloutDeps) => Promise<object>) {
    const { store, close } = await openTestStore('pglite')
    const deps = (fleet: ScriptedFleet): RolloutDeps => ({ store, executor: fleet, clock: fakeClock(), listeners: [] })
    const fleet = new ScriptedFleet(names(4), OLD, { main: NEW })
    for (const h of fleet.hosts.values()) h.hangOn = [{ step: 'install', sha: OLD }] // only a move back installs OLD
    const first = revert(fleet, deps).catch((error: unknown) => error)
    const ended = first.then((r) => Promise.reject(new Error(`ended before any host froze: ${String(r)}`)))
    const frozen = await Promise.race([...names(4).map((name) => fleet.hung(name).then(() => name)), ended])
    for (const h of fleet.hosts.values()) h.hangOn = []
    const id = (await store.getRollout())!.id
    const rows = await store.listRolloutHosts(id)
    // While it moves back, its row says so: `updating`, the rollback phase, the version before the rollout kept.
    expect(rows.find((r) => r.name === frozen)).toMatchObject({ status: 'updating', step: expect.stringMatching(/^revert/), previousVersion: OLD })
    await ageLease(store, 120_000)
    const updated = rows.filter((r) => r.status !== 'pending').map((r) => r.name)
    /** Every row true of its host: the ones the rollout moved are back on OLD, recorded so; the others untouched. */
    const expectTrue = async () => {
      for (const r of await store.listRolloutHosts(id)) {
        const moved = updated.includes(r.name)
        expect([r.name, r.status, r.previousVersion, r.newVersion]).toEqual([r.name, moved ? 'rolled_back' : 'pending', moved ? OLD : null, moved ? OLD : null])
        expect(fleet.host(r.name)).toMatchObject({ head: OLD, running: OLD })
      }
    }
    return { fleet, id, first, expectTrue, deps: deps(fleet), close }
  }

  it('abort --rollback frozen, then abort --rollback again: the host is moved back, not forward to the release aborted', async () => {
    const { fleet, id, first, expectTrue, deps, close } = await frozenRevert(async (f, deps) => {
      const stop = new AbortController()
      await run(f, request(names(4), { stages: [50, 100] }), { store: deps(f).store, stop: stop.signal, onEvent: (e) => e.type === 'stage-finished' && stop.abort('SIGINT') })
      return abortRollout(deps(f), 'first@a pid 1', { rollback: true })
    })
    expect(await abortRollout(deps, 'second@b pid 2', { rollback: true })).toMatchObject({ rolloutId: id, state: 'aborted', exitCode: 0, revertComplete: true })
    await expectTrue()
    fleet.thaw() // the first wakes up: refused, it changes nothing recorded
    expect(await first).toMatchObject({ exitCode: 6 })
    await expectTrue()
    await close()
  })

  it('a gate revert frozen, then resume: the revert is finished, every host back on the version before the rollout', async () => {
    const req = request(names(4), { stages: [50, 100], gates })
    const { fleet, id, first, expectTrue, deps, close } = await frozenRevert((f, deps) => run(f, req, { store: deps(f).store }).then((r) => r.result))
    // Reverting after failed gates: the rollout no longer says it is baking.
    expect((await deps.store.getRollout(id))!.state).toBe('running')
    expect(await resumeRollout(deps, 'second@b pid 2', { current: { gates, checksDir: process.cwd() } })).toMatchObject({ rolloutId: id, state: 'halted', exitCode: 3 })
    await expectTrue()
    fleet.thaw()
    expect(await first).toMatchObject({ exitCode: 6 })
    await expectTrue()
    await close()
  })
})

describe('what a run records and tells, when it dies or loses its rollout', () => {
  it('killed right after a host finished: its row and its host-finished event are stored together, and the takeover adds no second one', async () => {
    const { store, close } = await openTestStore('pglite')
    const fleet = new ScriptedFleet(names(3), OLD, { main: NEW })
    let id = ''
    let killed = false
    // The process dies once any host's row says `success`: nothing it sends after that reaches the store.
    const dying = new Proxy(store, {
      get(target, key, receiver) {
        const value = Reflect.get(target, key, receiver) as unknown
        if (typeof value !== 'function') return value
        return async (...args: unknown[]) => {
          if (killed) return new Promise(() => {})
          const out = await (value as (...a: unknown[]) => unknown).apply(target, args)
          if (id && (await store.listRolloutHosts(id)).some((h) => h.status === 'success')) killed = true
          return out
        }
      },
    })
    void run(fleet, request(names(3), { concurrency: 1 }), { store: dying, onEvent: (e) => (id ||= e.rolloutId ?? '') })
    await until(() => killed)
    const finishedRows = async () => (await store.listRolloutHosts(id)).filter((h) => h.status !== 'pending' && h.status !== 'updating').map((h) => h.name)
    const finishedEvents = async () => (await store.listEvents(id, ['host-finished'])).map((e) => e.host)
    expect(await finishedRows()).toHaveLength(1)
    expect(await finishedEvents()).toEqual(await finishedRows())
    await ageLease(store, 120_000)
    expect(await resumeRollout({ store, executor: fleet, clock: fakeClock(), listeners: [] }, 'second@b pid 2')).toMatchObject({ state: 'completed', exitCode: 0 })
    expect((await finishedEvents()).sort()).toEqual(names(3))
    await close()
  })

  it('after rollout-lost nothing more is told; a new holder that already released the lease is named by the rollout\'s recorded owner', async () => {
    const { store, close } = await openTestStore('pglite')
    const fleet = new ScriptedFleet(names(2), OLD, { main: NEW })
    for (const h of fleet.hosts.values()) h.hangOn = [{ step: 'install', sha: NEW }]
    const told: RolloutEvent[] = []
    const running = run(fleet, request(names(2), { concurrency: 2 }), { store, onEvent: (e) => told.push(e) })
    await Promise.all(names(2).map((name) => fleet.hung(name)))
    await new Promise((resolve) => setTimeout(resolve, 300)) // the progress told so far is stored (batches of 200 ms)
    // Another process takes the rollout over, finishes with it and releases the lease.
    const lease = await store.leaseState()
    const thief = await store.takeOverLease({ leaseId: lease.rolloutId!, epoch: lease.epoch }, 'thief@c pid 3', true)
    expect(await store.releaseLease(thief!)).toBe(true)
    fleet.thaw('h00') // its outcome cannot be written: the run learns it lost the rollout
    await until(() => told.some((e) => e.type === 'rollout-lost'))
    fleet.thaw('h01') // still in flight: it goes on no further, and nothing more of it is told
    const { result } = await running
    expect(result).toMatchObject({ exitCode: 6, lost: expect.stringMatching(/^lost \S+ to thief@c pid 3, which has released it since/) })
    expect(told.at(-1)).toMatchObject({ type: 'rollout-lost', reason: result.lost })
    await close()
  })
})

describe('resume: every state a crash can leave a host in', () => {
  it('settles each host from what it really is, then goes on', async () => {
    const hosts = ['untouched', 'fetched', 'checked-out', 'restarted', 'rolling-back', 'gone']
    const fleet = new ScriptedFleet(hosts, OLD, { main: NEW })
    const clock = fakeClock()
    // What the crashed run recorded, and what is really on each host.
    const left: Record<string, { previous: string | null; step: string; head: string; running: string }> = {
      untouched: { previous: null, step: 'connect', head: OLD, running: OLD },
      fetched: { previous: OLD, step: 'fetch', head: OLD, running: OLD },
      'checked-out': { previous: OLD, step: 'install', head: NEW, running: OLD },
      restarted: { previous: OLD, step: 'verify', head: NEW, running: NEW },
      'rolling-back': { previous: OLD, step: 'rollback', head: OLD, running: NEW },
      gone: { previous: OLD, step: 'restart', head: NEW, running: NEW },
    }
    for (const [name, s] of Object.entries(left)) Object.assign(fleet.host(name), { head: s.head, running: s.running })
    fleet.host('gone').failOn = [{ step: 'connect' }]
    const id = '20260101-000000-dead'
    const { store } = testStore
    const at = new Date(clock.now() - 120_000)
    await seedRollout(
      store,
      { id, state: 'running', ref: 'main', sha: NEW, stages: [100], seed: 's', currentStage: 0, settings: { ...request(hosts, { failureThreshold: 1 }), host: request(hosts).settings } as unknown as Record<string, unknown>, owner: 'dead@elsewhere pid 1', startedAt: at, finishedAt: null, heartbeatAt: at, exitCode: null, error: null },
      hosts.map((name, position) => ({ name, address: '127.0.0.1', port: 22, user: 'u', appDir: '/srv/app', position, stage: 0, status: 'updating' as const, step: left[name]!.step, previousVersion: left[name]!.previous, newVersion: null, error: null, startedAt: at, finishedAt: null })),
    )
    await store.acquireLease(id, 'dead@elsewhere pid 1')
    await ageLease(store, 120_000)
    // The crash came in the middle of a rollback for one host: it must be finished, not re-applied.
    const resumed = (await resumeRollout({ store, executor: fleet, clock, listeners: [] }, 'test')) as RolloutResult
    expect(await statuses(id)).toEqual({
      untouched: 'success', // nothing had changed: updated now
      fetched: 'success', // nothing had changed yet: updated now
      'checked-out': 'success', // the update was finished (install, restart, verify)
      restarted: 'success', // restarted and verified: done
      'rolling-back': 'rolled_back', // its rollback was cut short: finished now
      gone: 'rollback_failed', // unreachable: state unknown, the loudest outcome
    })
    expect(resumed).toMatchObject({ state: 'completed', exitCode: 5 })
    for (const name of ['untouched', 'fetched', 'checked-out', 'restarted']) expect(fleet.host(name)).toMatchObject({ head: NEW, running: NEW })
    expect(fleet.host('rolling-back')).toMatchObject({ head: OLD, running: OLD })
  })
})

describe('one rollout at a time, also between cron ticks', () => {
  it('start refuses (exit 6) while a detached rollout is baking, and leaves no lease behind', async () => {
    const fleet = new ScriptedFleet(names(2), OLD, { main: NEW })
    const gates = { bakeMs: 60_000, intervalMs: 10_000, prometheus: { url: null, timeoutMs: 1_000 }, metrics: [], checks: [{ name: 'ok', command: 'true' }], failureLimit: 0, inconclusiveLimit: 3, errorTimeoutMs: 60_000, onFail: 'revert' as const }
    const clock = fakeClock()
    const detached = await runRollout({ store: testStore.store, executor: fleet, clock, listeners: [] }, request(names(2), { gates }), { detach: true })
    expect(detached.state).toBe('baking')
    const second = await runRollout({ store: testStore.store, executor: fleet, clock, listeners: [] }, request(names(2))).then(
      () => null,
      (error: unknown) => error,
    )
    expect(second).toMatchObject({ exitCode: 6, message: expect.stringMatching(/is baking/) })
    expect((await testStore.store.leaseState()).holder).toBeNull()
    // Clean up for the other tests: abort it.
    expect(await abortRollout({ store: testStore.store, executor: fleet, clock, listeners: [] }, 'test', { rollback: false })).toMatchObject({ state: 'aborted' })
  })
})

describe('hosts disabled around a start', () => {
  it('a host disabled between the inventory read and the lock stays out; while the start holds the lock, disable is refused', async () => {
    const { store } = await openTestStore('pglite')
    const hosts = ['d1', 'd2', 'd3']
    for (const name of hosts) await store.addHost({ name, address: '127.0.0.1' })
    const fleet = new ScriptedFleet(hosts, OLD, { main: NEW })
    // The inventory was read with every host active; d2 is disabled before the start takes the lock.
    const req = request(hosts, { fromHostsTable: true })
    await store.setHostActive('d2', false)
    const { result } = await run(fleet, req, { store })
    expect(result.state).toBe('completed')
    expect((await store.listRolloutHosts(result.rolloutId)).map((h) => h.name).sort()).toEqual(['d1', 'd3'])
    expect(fleet.host('d2').log).toEqual([])

    // A start that holds the lock but has not recorded its hosts yet: any host may be in it.
    const starting = await store.acquireLease('r-starting', 'other@b pid 2')
    expect(starting.acquired).toBe(true)
    await expect(refuseIfInActiveRollout(store, ['d3'], '`fleet hosts disable`')).rejects.toMatchObject({ exitCode: 6, message: expect.stringMatching(/rollout r-starting is starting .*try again in a moment/) })
  })
})

describe('requests to a start that never recorded its rollout', () => {
  it('are answered "not applied" when its planning fails, not left pending for nobody', async () => {
    const { store, close } = await openTestStore('pglite')
    const fleet = new ScriptedFleet(names(2), OLD, { main: NEW })
    // A pause sent while the start resolves its ref: addressed to the rollout id its lease names.
    const executor: Executor = {
      connect: async (host) => {
        const lease = await store.leaseState()
        await store.addRequest({ id: 'sent-while-starting', rolloutId: lease.rolloutId!, kind: 'pause', actor: 'ann@x', reason: null, skipBake: false })
        return fleet.connect(host)
      },
    }
    await expect(runRollout({ store, executor, clock: fakeClock(), listeners: [] }, request(names(2), { ref: 'no-such-branch' }))).rejects.toMatchObject({ exitCode: 2 })
    expect(await store.getRequest('sent-while-starting')).toMatchObject({ outcome: expect.stringMatching(/^not applied: rollout \S+ did not start \(/) })
    expect((await store.leaseState()).holder).toBeNull()
    await close()
  })
})

