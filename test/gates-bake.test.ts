/** bake.ts: the bake of one stage as a pure function of its facts, in milliseconds. */
import { describe, expect, test } from 'vitest'
import { evaluateBake, type BakeConfig, type BakeDecision } from '../src/gates/bake.js'
import type { MeasurementRecord, Verdict } from '../src/gates/types.js'

const CONFIG: BakeConfig = { bakeMs: 10_000, intervalMs: 2_000, failureLimit: 0, inconclusiveLimit: 2, errorTimeoutMs: 5_000 }
const FINISHED = 1_000_000

/** Measurements at FINISHED + the given offsets (ms), with these verdicts. */
const run = (...steps: [number, Verdict][]): MeasurementRecord[] =>
  steps.map(([offset, verdict]) => ({ at: FINISHED + offset, verdict, reason: `${verdict} at ${offset}` }))

const decide = (measurements: MeasurementRecord[], config: Partial<BakeConfig> = {}, gateCount = 1): BakeDecision =>
  evaluateBake({ config: { ...CONFIG, ...config }, gateCount, stageFinishedAt: FINISHED, measurements })

const at = (offset: number): BakeDecision => ({ kind: 'measure-at', at: FINISHED + offset, bakeEndsAt: FINISHED + 10_000 })

describe('bake timing', () => {
  test.each<[string, MeasurementRecord[], BakeDecision]>([
    ['first measurement one interval after the stage finished', [], at(2_000)],
    ['then one interval after the previous one', run([2_000, 'pass']), at(4_000)],
    ['from when it was actually taken (a slow measurement shifts the next one)', run([2_000, 'pass'], [4_700, 'pass']), at(6_700)],
    ['the last one exactly when the bake ends', run([2_000, 'pass'], [4_000, 'pass'], [6_000, 'pass'], [8_500, 'pass']), at(10_000)],
    ['passes when the bake has lasted and the last measurement passed', run([2_000, 'pass'], [4_000, 'pass'], [6_000, 'pass'], [8_000, 'pass'], [10_000, 'pass']), { kind: 'pass' }],
  ])('%s', (_, measurements, expected) => {
    expect(decide(measurements)).toEqual(expected)
  })

  test('no gates and bake 0: passes at once; no gates and a bake: one empty measurement when it ends', () => {
    expect(decide([], { bakeMs: 0 }, 0)).toEqual({ kind: 'pass' })
    expect(decide([], {}, 0)).toEqual(at(10_000))
    expect(decide(run([10_000, 'pass']), {}, 0)).toEqual({ kind: 'pass' })
  })

  test('gates with bake 0 (or shorter than the interval): one measurement, one interval after the stage', () => {
    const end = { bakeEndsAt: FINISHED + 2_000 }
    expect(decide([], { bakeMs: 0 })).toEqual({ kind: 'measure-at', at: FINISHED + 2_000, ...end })
    expect(decide(run([2_000, 'pass']), { bakeMs: 0 })).toEqual({ kind: 'pass' })
    expect(decide(run([2_000, 'inconclusive']), { bakeMs: 0 })).toEqual({ kind: 'measure-at', at: FINISHED + 4_000, ...end })
  })
})

describe('bake verdicts', () => {
  test.each<[string, MeasurementRecord[], Partial<BakeConfig>, BakeDecision | { kind: string; reason?: RegExp }]>([
    ['failureLimit 0: the first failed measurement fails the bake', run([2_000, 'fail']), {}, { kind: 'fail', reason: /^1 failed measurement \(failureLimit 0\); last: fail at 2000$/ }],
    ['failureLimit 1: one failure is tolerated', run([2_000, 'fail'], [4_000, 'pass']), { failureLimit: 1 }, at(6_000)],
    ['failureLimit 1: failures need not be in a row', run([2_000, 'fail'], [4_000, 'pass'], [6_000, 'fail']), { failureLimit: 1 }, { kind: 'fail', reason: /^2 failed measurements/ }],
    ['inconclusive up to the limit in a row keeps measuring', run([2_000, 'inconclusive'], [4_000, 'inconclusive']), {}, at(6_000)],
    ['more than inconclusiveLimit in a row pauses', run([2_000, 'inconclusive'], [4_000, 'inconclusive'], [6_000, 'inconclusive']), {}, { kind: 'pause', reason: /^3 inconclusive measurements in a row \(inconclusiveLimit 2\)/ }],
    ['a pass breaks the row', run([2_000, 'inconclusive'], [4_000, 'inconclusive'], [6_000, 'pass'], [8_000, 'inconclusive']), {}, at(10_000)],
    ['errors neither count nor break the inconclusive row', run([2_000, 'inconclusive'], [4_000, 'error'], [6_000, 'inconclusive'], [8_000, 'error'], [9_000, 'inconclusive']), {}, { kind: 'pause', reason: /^3 inconclusive/ }],
    ['inconclusiveLimit 0: the first inconclusive pauses', run([2_000, 'inconclusive']), { inconclusiveLimit: 0 }, { kind: 'pause', reason: /^1 inconclusive measurement in a row/ }],
    ['in error: the next measurement no later than the error timeout', run([2_000, 'pass'], [4_000, 'error'], [6_000, 'error'], [8_000, 'error']), {}, at(9_000)],
    ['errors for errorTimeout pause (clock from the first error of the run)', run([2_000, 'pass'], [4_000, 'error'], [6_000, 'error'], [9_000, 'error']), {}, { kind: 'pause', reason: /^gates in error for 5s \(errorTimeout 5s\); last: error at 9000$/ }],
    ['a non-error measurement restarts the error clock', run([2_000, 'error'], [4_000, 'error'], [6_000, 'inconclusive'], [8_000, 'error'], [10_000, 'error']), {}, at(12_000)],
    ['errorTimeout 0: the first error pauses', run([2_000, 'error']), { errorTimeoutMs: 0 }, { kind: 'pause', reason: /^gates in error for 0ms/ }],
    ['never passes while the last measurement is an error', run([2_000, 'pass'], [4_000, 'pass'], [6_000, 'pass'], [8_000, 'pass'], [10_000, 'error']), {}, { kind: 'measure-at', at: FINISHED + 12_000, bakeEndsAt: FINISHED + 10_000 }],
    ['an error at the end, then a pass: passes', run([2_000, 'pass'], [10_000, 'error'], [12_000, 'pass']), {}, { kind: 'pass' }],
    ['a failure within the limit at the end: one more measurement', run([2_000, 'pass'], [10_000, 'fail']), { failureLimit: 2 }, { kind: 'measure-at', at: FINISHED + 12_000, bakeEndsAt: FINISHED + 10_000 }],
    ['an error does not rescue a failure counted before it', run([2_000, 'fail'], [4_000, 'error']), {}, { kind: 'fail', reason: /^1 failed/ }],
  ])('%s', (_, measurements, config, expected) => {
    const got = decide(measurements, config)
    if ('reason' in expected && expected.reason instanceof RegExp) {
      expect(got.kind).toBe(expected.kind)
      expect((got as { reason: string }).reason).toMatch(expected.reason)
    } else expect(got).toEqual(expected)
  })

  test('every run of verdicts ends: pass, fail or pause within a bounded number of measurements', () => {
    const verdicts: Verdict[] = ['pass', 'inconclusive', 'fail', 'error']
    // Every repeating pattern of up to 3 verdicts, fed for as long as the bake asks for more.
    const patterns: Verdict[][] = []
    for (const a of verdicts) for (const b of verdicts) for (const c of verdicts) patterns.push([a], [a, b], [a, b, c])
    for (const pattern of patterns) {
      const measurements: MeasurementRecord[] = []
      let decision = decide(measurements, { failureLimit: 1 })
      while (decision.kind === 'measure-at' && measurements.length < 100) {
        measurements.push({ at: decision.at, verdict: pattern[measurements.length % pattern.length]! })
        decision = decide(measurements, { failureLimit: 1 })
      }
      expect(decision.kind, pattern.join(',')).not.toBe('measure-at')
      if (decision.kind === 'pass') expect(measurements.at(-1)!.verdict).toBe('pass')
    }
  })
})
