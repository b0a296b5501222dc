import { describe, expect, it } from 'vitest'

import { buildPlan, canaryOrder, failureRate, haltIsCertain, stageSizes } from '../src/rollout/plan.js'
import { exitCodeFor } from '../src/rollout/exit-code.js'
import { emptyCounts } from '../src/rollout/events.js'
import type { Host } from '../src/types.js'

const hosts = (n: number): Host[] =>
  Array.from({ length: n }, (_, i) => ({ name: `h${i}`, address: '127.0.0.1', port: 22, user: 'rachel', appDir: '/srv/app' }))

describe('stageSizes', () => {
  it.each([
    [0, [0, 0, 0]],
    [1, [1, 0, 0]],
    [2, [1, 0, 1]],
    [9, [1, 4, 4]],
    [10, [1, 4, 5]],
    [11, [2, 4, 5]],
    [1000, [100, 400, 500]],
  ])('N=%i with 10,50,100 → %j', (n, expected) => {
    expect(stageSizes(n, [10, 50, 100])).toEqual(expected)
  })

  it('places every host exactly once for any N and stage list', () => {
    for (const stages of [[10, 50, 100], [1, 100], [100], [33, 66, 100], [5, 25, 50, 100]])
      for (let n = 0; n <= 257; n++) {
        const sizes = stageSizes(n, stages)
        expect(sizes.reduce((a, b) => a + b, 0)).toBe(n)
        const firstNonEmpty = sizes.find((s) => s > 0)
        if (n > 0) expect(firstNonEmpty).toBeGreaterThanOrEqual(1)
      }
  })

  it('does not round 10% of 30 up to 4 through floating point', () => {
    expect(stageSizes(30, [10, 50, 100])).toEqual([3, 12, 15])
  })
})

describe('canary order', () => {
  it('is deterministic per seed and differs between seeds', () => {
    const a = canaryOrder(hosts(50), 'seed-1').map((h) => h.name)
    expect(canaryOrder(hosts(50), 'seed-1').map((h) => h.name)).toEqual(a)
    expect(canaryOrder([...hosts(50)].reverse(), 'seed-1').map((h) => h.name)).toEqual(a)
    expect(canaryOrder(hosts(50), 'seed-2').map((h) => h.name)).not.toEqual(a)
    expect([...a].sort()).toEqual(hosts(50).map((h) => h.name).sort())
  })

  it('buildPlan numbers positions and stages in order', () => {
    const plan = buildPlan(hosts(11), [10, 50, 100], 's')
    expect(plan.byStage.map((s) => s.length)).toEqual([2, 4, 5])
    expect(plan.hosts.map((h) => h.position)).toEqual([...Array(11).keys()])
    expect(plan.byStage[2]!.every((h) => h.stage === 2)).toBe(true)
  })
})

describe('failure threshold', () => {
  it('leaves skipped hosts out of the rate', () => {
    expect(failureRate({ size: 10, failures: 3, skipped: 0 })).toBeCloseTo(0.3)
    expect(failureRate({ size: 10, failures: 3, skipped: 5 })).toBeCloseTo(0.6)
    expect(failureRate({ size: 4, failures: 0, skipped: 4 })).toBe(0)
  })

  it('halts early only once no outcome of the remaining hosts can save the stage', () => {
    // 10 hosts, threshold 0.3: 3 failures could still end at exactly 0.3 (not over); 4 cannot.
    expect(haltIsCertain({ size: 10, failures: 3, skipped: 0 }, 0.3)).toBe(false)
    expect(haltIsCertain({ size: 10, failures: 4, skipped: 0 }, 0.3)).toBe(true)
    // A one-host canary stage: one failure is certain.
    expect(haltIsCertain({ size: 1, failures: 1, skipped: 0 }, 0.3)).toBe(true)
    expect(haltIsCertain({ size: 1, failures: 1, skipped: 0 }, 1)).toBe(false)
  })
})

describe('exit codes', () => {
  const counts = (patch: Partial<ReturnType<typeof emptyCounts>>) => ({ ...emptyCounts(), ...patch })
  it('maps outcomes, most urgent first', () => {
    expect(exitCodeFor('completed', counts({ success: 3, skipped: 1 }))).toBe(0)
    expect(exitCodeFor('completed', counts({ success: 3, rolled_back: 1 }))).toBe(4)
    expect(exitCodeFor('completed', counts({ success: 3, failed: 1 }))).toBe(4)
    expect(exitCodeFor('halted', counts({ rolled_back: 1, pending: 9 }))).toBe(3)
    expect(exitCodeFor('halted', counts({ rollback_failed: 1, pending: 9 }))).toBe(5)
    expect(exitCodeFor('completed', counts({ success: 9, rollback_failed: 1 }))).toBe(5)
    expect(exitCodeFor('interrupted', counts({ success: 1, pending: 9 }))).toBe(130)
  })
})
