/**
 * The decision core as a table: (recorded state, facts, now) → the one next thing to do.
 * Pure and in microseconds; the drivers around it are tested in engine.test.ts and end to end.
 */
import { describe, expect, it } from 'vitest'

import { decide, type Facts, type RolloutView } from '../src/rollout/decide.js'
import type { HostStatus } from '../src/types.js'

/** Hosts as `stage:status` strings, named h0, h1, … in canary order. */
function view(hosts: string[], over: Partial<RolloutView> = {}): RolloutView {
  return {
    stages: [10, 50, 100],
    failureThreshold: 0.3,
    concurrency: 2,
    stageDelayMs: 10_000,
    hosts: hosts.map((h, i) => {
      const [stage, status] = h.split(':')
      return { name: `h${i}`, stage: Number(stage), status: status as HostStatus }
    }),
    stage: 0,
    stageStarted: true,
    stageFinishedAt: null,
    gates: null,
    ...over,
  }
}

const facts = (over: Partial<Facts> = {}): Facts => ({ inFlight: new Set(), settling: new Set(), stopped: false, pause: null, storeGaveUp: false, broken: false, ...over })
const T = 1_000_000

describe('decide', () => {
  const cases: [string, RolloutView, Facts, ReturnType<typeof decide>][] = [
    ['a new rollout announces its first stage', view(['0:pending', '1:pending'], { stageStarted: false }), facts(), { kind: 'start-stage', stage: 0 }],
    ['an empty first stage is passed over', view(['1:pending', '1:pending'], { stageStarted: false }), facts(), { kind: 'start-stage', stage: 1 }],
    ['starts the first pending host of the stage', view(['0:success', '0:pending', '0:pending']), facts(), { kind: 'start-host', host: 'h1' }],
    ['a pool: starts another while one is in flight', view(['0:updating', '0:pending']), facts({ inFlight: new Set(['h0']) }), { kind: 'start-host', host: 'h1' }],
    ['no more than `concurrency` in flight', view(['0:updating', '0:updating', '0:pending']), facts({ inFlight: new Set(['h0', 'h1']) }), { kind: 'wait-hosts' }],
    [
      'early halt: once the stage is certain to fail, no new host starts',
      view(['0:rolled_back', '0:failed', '0:pending', '0:pending', '0:pending']),
      facts(),
      { kind: 'finish-stage', stage: 0, counts: { pending: 3, updating: 0, success: 0, failed: 1, rolled_back: 1, rollback_failed: 0, skipped: 0, held: 0 }, failureRate: 0.4, halted: true },
    ],
    ['under the threshold the stage goes on', view(['0:rolled_back', '0:success', '0:success', '0:pending']), facts(), { kind: 'start-host', host: 'h3' }],
    [
      'skipped hosts do not count: 1 failure of 2 eligible is over 0.3',
      view(['0:skipped', '0:skipped', '0:failed', '0:pending']),
      facts(),
      { kind: 'finish-stage', stage: 0, counts: { pending: 1, updating: 0, success: 0, failed: 1, rolled_back: 0, rollback_failed: 0, skipped: 2, held: 0 }, failureRate: 0.5, halted: true },
    ],
    ['a finished stage over the threshold halts the rollout', view(['0:failed', '1:pending'], { stageFinishedAt: T }), facts(), { kind: 'finish', state: 'halted' }],
    ['between stages: the delay', view(['0:success', '1:pending'], { stageFinishedAt: T }), facts(), { kind: 'wait-until', until: T + 10_000, for: 'stage-delay' }],
    ['after the delay: the next stage', view(['0:success', '1:pending'], { stageFinishedAt: T - 10_000 }), facts(), { kind: 'start-stage', stage: 1 }],
    ['an empty middle stage is passed over', view(['0:success', '2:pending'], { stageFinishedAt: T - 10_000 }), facts(), { kind: 'start-stage', stage: 2 }],
    ['the last stage finished: completed', view(['0:success', '1:success'], { stage: 1, stageFinishedAt: T }), facts(), { kind: 'finish', state: 'completed' }],
    [
      'stopped: no new host; in flight ones finish',
      view(['0:updating', '0:pending']),
      facts({ inFlight: new Set(['h0']), stopped: true }),
      { kind: 'wait-hosts' },
    ],
    [
      'stopped with nothing in flight: the stage ends, not as a halt, even with failures',
      view(['0:rolled_back', '0:pending']),
      facts({ stopped: true }),
      { kind: 'finish-stage', stage: 0, counts: { pending: 1, updating: 0, success: 0, failed: 0, rolled_back: 1, rollback_failed: 0, skipped: 0, held: 0 }, failureRate: 0.5, halted: false },
    ],
    ['resumed after a stop ended a stage early: the stage runs again', view(['0:success', '0:pending', '1:pending'], { stageFinishedAt: T }), facts(), { kind: 'start-stage', stage: 0 }],
    ['stopped after a stage: interrupted', view(['0:success', '1:pending'], { stageFinishedAt: T }), facts({ stopped: true }), { kind: 'finish', state: 'interrupted' }],
    ['stopped before the first stage: interrupted', view(['0:pending'], { stageStarted: false }), facts({ stopped: true }), { kind: 'finish', state: 'interrupted' }],
    ['resume: a host left updating is settled first', view(['0:success', '1:updating', '1:pending'], { stage: 1, stageStarted: false }), facts(), { kind: 'settle', host: 'h1' }],
    [
      'resume: stages wait until every settle finished',
      view(['0:success', '1:updating', '1:pending'], { stage: 1, stageStarted: false }),
      facts({ inFlight: new Set(['h1']), settling: new Set(['h1']) }),
      { kind: 'wait-hosts' },
    ],
    ['resume: then the stage goes on where it was', view(['0:success', '1:success', '1:pending'], { stage: 1, stageStarted: false }), facts(), { kind: 'start-stage', stage: 1 }],
    ['store gave up with hosts in flight: wait for them', view(['0:updating', '0:pending']), facts({ inFlight: new Set(['h0']), storeGaveUp: true }), { kind: 'wait-hosts' }],
    ['store gave up, nothing in flight: give up, resumable', view(['0:success', '0:pending']), facts({ storeGaveUp: true }), { kind: 'give-up' }],
    ['lease lost with a host in flight: wait for it, start nothing', view(['0:updating', '0:pending']), facts({ inFlight: new Set(['h0']), lost: true }), { kind: 'wait-hosts' }],
    ['lease lost: an abandoned host left updating is not settled here (the new owner settles it)', view(['0:updating', '0:pending']), facts({ lost: true }), { kind: 'finish', state: 'interrupted' }],
    ['paused by hand: hosts in flight finish first', view(['0:updating', '0:pending']), facts({ inFlight: new Set(['h0']), pause: 'by ann: db migration' }), { kind: 'wait-hosts' }],
    ['paused by hand: then the rollout pauses, mid-stage too', view(['0:success', '0:pending']), facts({ pause: 'by ann: db migration' }), { kind: 'pause', stage: 0, reason: 'by ann: db migration' }],
    ['a bug in a host\'s work: no new host, then report it', view(['0:success', '0:pending']), facts({ broken: true }), { kind: 'give-up' }],
  ]

  it.each(cases)('%s', (_name, v, f, expected) => {
    expect(decide(v, f, T)).toEqual(expected)
  })

  it('never starts a host twice, whatever the order of facts', () => {
    const v = view(['0:pending', '0:pending', '0:pending'], { concurrency: 3 })
    const started = new Set<string>()
    let d = decide(v, facts(), T)
    while (d.kind === 'start-host') {
      expect(started.has(d.host)).toBe(false)
      started.add(d.host)
      d = decide(v, facts({ inFlight: new Set(started) }), T)
    }
    expect([...started]).toEqual(['h0', 'h1', 'h2'])
    expect(d).toEqual({ kind: 'wait-hosts' })
  })
})

describe('decide: a store that gave up', () => {
  it('settles nothing either: a host whose `updating` write failed was never started', () => {
    const v = view(['0:success', '0:updating', '0:pending'])
    expect(decide(v, facts({ storeGaveUp: true }), T)).toEqual({ kind: 'give-up' })
  })
})
