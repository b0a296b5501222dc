import { describe, expect, it } from 'vitest'

import { cooldownMessage, cooldownStatus, type FinishedRollout } from '../src/audit/cooldown.js'

const HOUR = 3_600_000
const finished = new Date('2026-11-30T12:00:00.000Z')
const at = (ms: number): number => finished.getTime() + ms

describe('cooldownStatus', () => {
  const cases: [string, FinishedRollout | null, number, number, boolean][] = [
    // name, last rollout, cooldown, now, blocked
    ['no rollout yet', null, HOUR, at(0), false],
    ['halted, within the cooldown', { state: 'halted', finishedAt: finished }, HOUR, at(HOUR - 1), true],
    ['halted, the moment it ends', { state: 'halted', finishedAt: finished }, HOUR, at(HOUR), false],
    ['halted, cooldown 0s (default)', { state: 'halted', finishedAt: finished }, 0, at(1), false],
    ['reverted by gates under another state', { state: 'completed', finishedAt: finished, reverted: true }, HOUR, at(1), true],
    ['completed', { state: 'completed', finishedAt: finished }, HOUR, at(1), false],
    ['failed (fleet error, not the release)', { state: 'failed', finishedAt: finished }, HOUR, at(1), false],
    ['aborted by a person', { state: 'aborted', finishedAt: finished }, HOUR, at(1), false],
    ['interrupted', { state: 'interrupted', finishedAt: finished }, HOUR, at(1), false],
    ['halted but not finished (still active)', { state: 'halted', finishedAt: null }, HOUR, at(1), false],
    ['clock behind the finish (another machine)', { state: 'halted', finishedAt: finished }, HOUR, at(-5000), true],
  ]
  it.each(cases)('%s', (_, last, cooldownMs, now, blocked) => {
    expect(cooldownStatus(last, cooldownMs, now).blocked).toBe(blocked)
  })

  it('says until when, which rollout and why', () => {
    const status = cooldownStatus({ id: 'r-7', state: 'halted', finishedAt: finished }, HOUR, new Date(at(10)))
    expect(status).toEqual({ blocked: true, until: new Date('2026-11-30T13:00:00.000Z'), rolloutId: 'r-7', cause: 'halted' })
    if (!status.blocked) throw new Error('unreachable')
    expect(cooldownMessage(status)).toBe(
      'cooldown until 2026-11-30T13:00:00.000Z: rollout r-7 was halted (rollout.cooldown); pass --ignore-cooldown --reason <text> to start anyway',
    )
  })
})
