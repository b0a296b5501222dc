/**
 * The fleet's shape as facts of the decision core, in milliseconds: rings in the plan, held hosts,
 * the failure budget, deploy windows across daylight-saving changes (fixed clocks), and the real
 * engine (PGlite, scripted hosts, a fake clock) running a rollout across nights and a DST switch.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import type { WindowSpec } from '../src/config/shape.js'
import { decide, type Facts, type RolloutView } from '../src/rollout/decide.js'
import { runRollout } from '../src/rollout/engine.js'
import type { RolloutEvent } from '../src/rollout/events.js'
import { buildPlan, ringOfStage } from '../src/rollout/plan.js'
import { budgetInHosts } from '../src/rollout/start.js'
import { closedFor, isOpen, localTime, nextChange } from '../src/rollout/window.js'
import type { Host, HostStatus } from '../src/types.js'
import { openTestStore, type TestStore } from './support/harness.js'
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

  it('a host held after the start is recorded skipped, never started; the others go on', () => {
    expect(decide(view(['pending', 'pending']), facts({ held: new Set(['h0']) }), 0)).toEqual({ kind: 'skip-held', host: 'h0' })
    expect(decide(view(['skipped', 'pending']), facts({ held: new Set(['h0']) }), 0)).toEqual({ kind: 'start-host', host: 'h1' })
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

describe('a rollout across nights and a daylight-saving change (the real engine, a fake clock)', () => {
  let testStore: TestStore
  beforeAll(async () => {
    testStore = await openTestStore('pglite')
  })
  afterAll(async () => {
    await testStore.close()
  })

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
