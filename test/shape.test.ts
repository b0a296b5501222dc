/**
 * The fleet's shape as facts of the decision core, in milliseconds: rings in the plan, held hosts,
 * the failure budget, deploy windows across daylight-saving changes (fixed clocks), and the real
 * engine (PGlite, scripted hosts, a fake clock) running a rollout across nights and a DST switch,
 * and one in which a host is held after it began.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import type { WindowSpec } from '../src/config/shape.js'
import { decide, type Facts, type RolloutView } from '../src/rollout/decide.js'
import { renderMetrics } from '../src/metrics/index.js'
import { renderStatus } from '../src/render/status-table.js'
import { metricsSnapshot } from '../src/report/metrics.js'
import { runRollout } from '../src/rollout/engine.js'
import type { RolloutEvent } from '../src/rollout/events.js'
import { describeOutcome } from '../src/rollout/outcome.js'
import { buildPlan, ringOfStage } from '../src/rollout/plan.js'
import { budgetInHosts } from '../src/rollout/start.js'
import { readStatus } from '../src/rollout/status.js'
import { closedFor, isOpen, localTime, nextChange } from '../src/rollout/window.js'
import type { Host, HostStatus } from '../src/types.js'
import { openTestStore, testFence, type TestStore } from './support/harness.js'
import { fakeClock, ScriptedFleet, scriptedRequest } from './support/scripted.js'

const host = (name: string, extra: Partial<Host> = {}): Host => ({ name, address: '127.0.0.1', port: 22, user: 'u', appDir: '/srv/app', ...extra })
const facts = (over: Partial<Facts> = {}): Facts => ({ inFlight: new Set(), settling: new Set(), stopped: false, pause: null, storeGaveUp: false, broken: false, ...over })
const view = (statuses: HostStatus[], over: Partial<RolloutView> = {}): RolloutView => ({
  stages: [100],
  failureThreshold: 0.5,
  concurrency: 2,
  stageDelayMs: 0,
  hosts: statuses.map((status, i) => ({ name: `h${i}`, stage: 0, status })),
  stage: 0,
  stageStarted: true,
  stageFinishedAt: null,
  gates: null,
  ...over,
})

describe('rings and holds in the plan', () => {
  it('ring by ring in the configured order, each with its own stages; unlisted rings last; held hosts in no stage', () => {
    const hosts = [
      ...['a', 'b', 'c', 'd'].map((n) => host(`paid-${n}`, { ring: 'paid' })),
      host('int-1', { ring: 'internal' }),
      host('int-2', { ring: 'internal' }),
      host('free-1', { ring: 'free' }),
      host('loose-1'),
      host('paid-held', { ring: 'paid', hold: 'held by ann@ops: customer asked' }),
    ]
    const plan = buildPlan(hosts, [10, 50, 100], 'seed', [
      { name: 'internal', stages: [100] },
      { name: 'paid', stages: [25, 100] },
    ])
    expect(plan.rings).toEqual([
      { name: 'internal', stages: 1 },
      { name: 'paid', stages: 2 },
      { name: null, stages: 3 },
    ])
    expect(plan.stages).toEqual([100, 25, 100, 10, 50, 100])
    expect(ringOfStage(plan.rings)).toEqual(['internal', 'paid', 'paid', null, null, null])
    // internal: both at once; paid: 1 canary then 3; the rest (free is no listed ring) 1, 0, 1 by 10/50/100% of 2.
    expect(plan.byStage.map((s) => s.length)).toEqual([2, 1, 3, 1, 0, 1])
    expect(plan.byStage[0]!.map((h) => h.name).sort()).toEqual(['int-1', 'int-2'])
    expect([...plan.byStage[1]!, ...plan.byStage[2]!].map((h) => h.name).sort()).toEqual(['paid-a', 'paid-b', 'paid-c', 'paid-d'])
    expect([...plan.byStage[3]!, ...plan.byStage[5]!].map((h) => h.name).sort()).toEqual(['free-1', 'loose-1'])
    expect(plan.held).toEqual([{ name: 'paid-held', reason: 'held by ann@ops: customer asked' }])
    expect(plan.hosts.map((h) => h.name)).not.toContain('paid-held')
    // Positions run across the rollout; stages are numbered across the rings.
    expect(plan.hosts.map((h) => h.position)).toEqual(plan.hosts.map((_, i) => i))
  })

  it('without rings: one unnamed ring, as before', () => {
    const plan = buildPlan([host('a'), host('b')], [50, 100], 's')
    expect(plan.rings).toEqual([{ name: null, stages: 2 }])
    expect(plan.held).toEqual([])
  })

  it('a host held after the start is recorded held, never started; the others go on', () => {
    expect(decide(view(['pending', 'pending']), facts({ held: new Set(['h0']) }), 0)).toEqual({ kind: 'skip-held', host: 'h0' })
    expect(decide(view(['held', 'pending']), facts({ held: new Set(['h0']) }), 0)).toEqual({ kind: 'start-host', host: 'h1' })
  })

  it('a held row is final and finished for its stage (hold lifted or not), in no failure rate and no failure budget', () => {
    const counts = { pending: 0, updating: 0, success: 1, failed: 0, rolled_back: 0, rollback_failed: 0, skipped: 0, held: 2 }
    expect(decide(view(['held', 'success', 'held']), facts(), 0)).toEqual({ kind: 'finish-stage', stage: 0, counts, failureRate: 0, halted: false })
    // 1 failure of 2 hosts tried: 0.5, not 1 of 4 (held hosts would dilute the rate) nor a halt at 0.5.
    expect(decide(view(['held', 'success', 'failed', 'held']), facts(), 0)).toMatchObject({ kind: 'finish-stage', failureRate: 0.5, halted: false })
    // A budget of 0 failed hosts: held ones spend none of it.
    expect(decide(view(['held', 'pending'], { failureBudget: 0 }), facts(), 0)).toEqual({ kind: 'start-host', host: 'h1' })
    // Once its stage is done, nothing goes back to it: the rollout completes.
    expect(decide(view(['held', 'success'], { stageFinishedAt: 1 }), facts(), 2)).toEqual({ kind: 'finish', state: 'completed' })
  })
})

describe('the failure budget', () => {
  it('a share rounds down; hosts are hosts', () => {
    expect(budgetInHosts({ percent: 5 }, 30)).toBe(1)
    expect(budgetInHosts({ percent: 5 }, 19)).toBe(0)
    expect(budgetInHosts({ hosts: 3 }, 10)).toBe(3)
    expect(budgetInHosts(null, 10)).toBeNull()
  })

  it('one failure more than the budget halts across stages, though every stage stayed under its threshold', () => {
    // Stage 0 done with 1 failure (50% threshold: fine), stage 1 now has its first failure: 2 > budget 1.
    const hosts = [
      { name: 'a', stage: 0, status: 'success' as const },
      { name: 'b', stage: 0, status: 'rolled_back' as const },
      { name: 'c', stage: 1, status: 'failed' as const },
      { name: 'd', stage: 1, status: 'pending' as const },
      { name: 'e', stage: 1, status: 'pending' as const },
      { name: 'f', stage: 1, status: 'pending' as const },
    ]
    const base = { stages: [50, 100], hosts, stage: 1, failureBudget: 1 }
    // No further host starts; the stage ends halted …
    expect(decide(view([], base), facts(), 0)).toMatchObject({ kind: 'finish-stage', stage: 1, halted: true })
    // … and the rollout halts, saying why.
    expect(decide(view([], { ...base, stageFinishedAt: 1 }), facts(), 2)).toEqual({
      kind: 'finish',
      state: 'halted',
      why: 'failure budget exceeded: 2 hosts failed across the rollout, the budget is 1',
    })
    // Within the budget, the stage goes on.
    expect(decide(view([], { ...base, failureBudget: 2 }), facts(), 0)).toEqual({ kind: 'start-host', host: 'd' })
  })
})

const BERLIN_NIGHTS: WindowSpec[] = [{ days: ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'], start: 120, end: 300, timezone: 'Europe/Berlin' }]
const at = (iso: string) => Date.parse(iso)

describe('deploy windows, on fixed clocks', () => {
  it('02:00–05:00 in Berlin, winter and summer time', () => {
    expect(isOpen(BERLIN_NIGHTS, at('2026-01-15T01:00:00Z'))).toBe(true) // 02:00 CET
    expect(isOpen(BERLIN_NIGHTS, at('2026-01-15T00:59:00Z'))).toBe(false)
    expect(isOpen(BERLIN_NIGHTS, at('2026-07-15T00:00:00Z'))).toBe(true) // 02:00 CEST
    expect(isOpen(BERLIN_NIGHTS, at('2026-07-15T03:00:00Z'))).toBe(false) // 05:00 CEST
  })

  it('spring forward (29 March 2026): 02:00 does not exist, the window opens at 03:00 CEST and lasts two hours', () => {
    expect(localTime(at('2026-03-29T00:59:00Z'), 'Europe/Berlin')).toEqual({ day: 'sun', minute: 119 })
    expect(localTime(at('2026-03-29T01:00:00Z'), 'Europe/Berlin')).toEqual({ day: 'sun', minute: 180 })
    expect(nextChange(BERLIN_NIGHTS, at('2026-03-28T12:00:00Z'), true)).toBe(at('2026-03-29T01:00:00Z'))
    expect(nextChange(BERLIN_NIGHTS, at('2026-03-29T01:00:00Z'), false)).toBe(at('2026-03-29T03:00:00Z'))
  })

  it('fall back (25 October 2026): 02:00–03:00 happens twice, the window lasts four hours', () => {
    expect(nextChange(BERLIN_NIGHTS, at('2026-10-24T12:00:00Z'), true)).toBe(at('2026-10-25T00:00:00Z'))
    expect(nextChange(BERLIN_NIGHTS, at('2026-10-25T00:00:00Z'), false)).toBe(at('2026-10-25T04:00:00Z'))
  })

  it('a window across midnight belongs to the evening it opens; days and host time zones count', () => {
    const fridayNights: WindowSpec[] = [{ days: ['fri'], start: 22 * 60, end: 2 * 60, timezone: 'host' }]
    expect(isOpen(fridayNights, at('2026-01-16T23:00:00Z'), 'UTC')).toBe(true) // Friday 23:00
    expect(isOpen(fridayNights, at('2026-01-17T01:30:00Z'), 'UTC')).toBe(true) // Saturday 01:30, Friday's window
    expect(isOpen(fridayNights, at('2026-01-17T23:00:00Z'), 'UTC')).toBe(false) // Saturday 23:00
    // The same instant is Friday 23:00 in London and Saturday 08:00 in Tokyo.
    expect(isOpen(fridayNights, at('2026-01-16T23:00:00Z'), 'Europe/London')).toBe(true)
    expect(isOpen(fridayNights, at('2026-01-16T23:00:00Z'), 'Asia/Tokyo')).toBe(false)
    expect(closedFor(fridayNights, [host('a', { timezone: 'Asia/Tokyo' }), host('b', { timezone: 'Europe/London' })], at('2026-01-16T23:00:00Z'))).toBeNull()
    expect(closedFor(fridayNights, [host('a', { timezone: 'Asia/Tokyo' })], at('2026-01-16T23:00:00Z'))).toEqual({ opensAt: '2026-01-23T13:00:00.000Z' })
  })

  it('closed hosts are not started; when only they are left, the core waits for the first opening', () => {
    const closed = { closed: new Set(['h0']), opensAt: 5_000 }
    expect(decide(view(['pending', 'pending']), facts(closed), 0)).toEqual({ kind: 'start-host', host: 'h1' })
    expect(decide(view(['pending', 'success']), facts(closed), 0)).toEqual({ kind: 'wait-until', until: 5_000, for: 'window' })
    expect(decide(view(['pending', 'success']), facts({ closed: new Set(['h0']), opensAt: null }), 0)).toMatchObject({ kind: 'finish', state: 'halted' })
  })
})

let testStore: TestStore
beforeAll(async () => {
  testStore = await openTestStore('pglite')
})
afterAll(async () => {
  await testStore.close()
})

describe('a rollout across nights and a daylight-saving change (the real engine, a fake clock)', () => {
  it('every host starts inside 02:00–05:00 Berlin time; the rollout waits out the days and completes', async () => {
    const OLD = 'a'.repeat(40)
    const NEW = 'b'.repeat(40)
    const names = Array.from({ length: 40 }, (_, i) => `h${String(i).padStart(2, '0')}`)
    const fleet = new ScriptedFleet(names, OLD, { main: NEW })
    // Thursday noon before the spring-forward Sunday.
    const clock = fakeClock(at('2026-03-26T12:00:00Z'))
    const events: RolloutEvent[] = []
    // 20 minutes of verify per host: nine hosts a night with two at a time.
    const request = scriptedRequest(names, { stages: [10, 50, 100], verify: { delayMs: 20 * 60_000, retries: 0, intervalMs: 1_000 }, windows: BERLIN_NIGHTS, seed: 'windows' })
    const result = await runRollout({ store: testStore.store, executor: fleet, clock, listeners: [(e) => events.push(e)] }, request)
    expect(result.exitCode).toBe(0)
    const starts = events.filter((e) => e.type === 'host-started').map((e) => Date.parse(e.at))
    expect(starts).toHaveLength(40)
    expect(starts.filter((t) => !isOpen(BERLIN_NIGHTS, t))).toEqual([])
    // Several nights, the DST one included, where the first host started at 03:00 CEST.
    const nights = new Set(starts.map((t) => new Date(t).toISOString().slice(0, 10)))
    expect(nights.size).toBeGreaterThanOrEqual(3)
    expect(starts).toContain(at('2026-03-29T01:00:00Z'))
  })
})

describe('a host held after the rollout began (the real engine, a fake clock)', () => {
  it('ends `held`, never connected to; the rest complete with exit 0, and no line says every host succeeded', async () => {
    const OLD = 'c'.repeat(40)
    const NEW = 'd'.repeat(40)
    const names = ['w1', 'w2', 'w3', 'w4']
    const fleet = new ScriptedFleet(names, OLD, { main: NEW })
    const store = testStore.store
    // Later than the rollout across nights, so it is the latest one (metrics read the latest).
    const base = fakeClock(at('2026-06-01T00:00:00Z'))
    let holding: Promise<void> = Promise.resolve()
    // The stage delay waits for the hold: `fleet hosts hold` in another shell, between the stages.
    const clock = { ...base, sleep: async (ms: number, signal?: AbortSignal) => (await holding, base.sleep(ms, signal)) }
    const events: RolloutEvent[] = []
    let canaries: string[] = []
    let held = ''
    const listener = (e: RolloutEvent) => {
      events.push(e)
      if (e.type === 'stage-started' && e.stage === 0) canaries = e.hosts
      if (e.type === 'stage-finished' && e.stage === 0) {
        held = names.find((n) => !canaries.includes(n))!
        holding = store.hold({ name: held, reason: 'customer asked', actor: 'ann@ops', until: null })
      }
    }
    // 1 canary, then 3 hosts of which one is held: a threshold of 0 would halt on any failure.
    const request = scriptedRequest(names, { stages: [25, 100], stageDelayMs: 10_000, failureThreshold: 0, budget: { hosts: 0 }, seed: 'held' })
    try {
      const result = await runRollout({ store, executor: fleet, clock, listeners: [listener] }, request)
      expect(held).not.toBe('')
      expect(result).toMatchObject({ state: 'completed', exitCode: 0 })
      expect(result.counts).toMatchObject({ success: 3, held: 1, skipped: 0, pending: 0 })
      // Never touched: no command, still on the old version; the others were each connected to once.
      expect(fleet.host(held).log).toEqual([])
      expect(fleet.host(held).head).toBe(OLD)
      expect(fleet.connects).toBe(3)
      expect(events.some((e) => e.type === 'host-started' && e.host === held)).toBe(false)
      expect(events.find((e) => e.type === 'host-finished' && e.host === held)).toMatchObject({ status: 'held', stage: 1, newVersion: null })
      expect(events.find((e) => e.type === 'stage-finished' && e.stage === 1)).toMatchObject({ counts: { success: 2, held: 1 }, failureRate: 0, halted: false })

      const finished = events.find((e) => e.type === 'rollout-finished')!
      expect(finished).toMatchObject({ exitCode: 0, counts: { success: 3, held: 1 } })
      const line = describeOutcome(finished as Extract<RolloutEvent, { type: 'rollout-finished' }>)
      expect(line).toBe('every other targeted host succeeded or was already on the target; 1 host held, never touched')
      expect(line).not.toMatch(/every targeted host succeeded/)

      // `rollout status` (JSON shape and text) and the metrics count it.
      const status = (await readStatus(store, result.rolloutId))!
      expect(status.counts).toMatchObject({ success: 3, held: 1 })
      expect(status.hosts.find((h) => h.name === held)).toMatchObject({ status: 'held', newVersion: null, error: 'held since the rollout began: never touched' })
      const text = renderStatus(status, { color: false })
      expect(text).toMatch(/^4 hosts: success 3, held 1$/m)
      expect(text).toContain('exit 0: every other targeted host succeeded or was already on the target; 1 host held, never touched')
      const metrics = await renderMetrics(await metricsSnapshot(store))
      expect(metrics).toContain('fleet_hosts{status="held"} 1')
      expect(metrics).toContain('fleet_hosts{status="skipped"} 0')

      // The row is final: a `fleet rollback` of the host recorded into the rollout leaves it `held` (a tried host's row takes it).
      const fence = await testFence(store, `rollback:${held}`)
      const byHand = { status: 'rolled_back', newVersion: OLD, error: 'moved back by hand' } as const
      expect(await store.recordHandRollback(fence, result.rolloutId, held, byHand)).toBe(false)
      expect(await store.recordHandRollback(fence, result.rolloutId, canaries[0]!, byHand)).toBe(true)
      expect((await readStatus(store, result.rolloutId))!.counts).toMatchObject({ held: 1, rolled_back: 1, success: 2 })
    } finally {
      await store.unhold(held)
    }
  })
})
