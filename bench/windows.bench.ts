/**
 * Issue 19's window figure: a simulated week of a rollout under a 02:00–05:00 Europe/Berlin window,
 * across the spring-forward night (29 March 2026): the real engine and store (PGlite), scripted
 * hosts and a fake clock, so a week takes seconds. Counted: hosts started outside the window (target
 * 0), the nights used, and when the DST night's first host started.
 */
import { expect, it } from 'vitest'

import type { WindowSpec } from '../src/config/shape.js'
import { runRollout } from '../src/rollout/engine.js'
import type { RolloutEvent } from '../src/rollout/events.js'
import { isOpen, localTime } from '../src/rollout/window.js'
import { openTestStore } from '../test/support/harness.js'
import { fakeClock, ScriptedFleet, scriptedRequest } from '../test/support/scripted.js'
import { record } from './support/results.js'

const WINDOW: WindowSpec[] = [{ days: ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'], start: 120, end: 300, timezone: 'Europe/Berlin' }]

it('a week under a Berlin night window, across a DST change', async () => {
  const t = await openTestStore('pglite')
  try {
    const names = Array.from({ length: 60 }, (_, i) => `vps-${String(i + 1).padStart(3, '0')}`)
    const fleet = new ScriptedFleet(names, 'a'.repeat(40), { main: 'b'.repeat(40) })
    const start = Date.parse('2026-03-24T12:00:00Z')
    const clock = fakeClock(start)
    const events: RolloutEvent[] = []
    const result = await runRollout(
      { store: t.store, executor: fleet, clock, listeners: [(e) => events.push(e)] },
      scriptedRequest(names, { stages: [10, 50, 100], concurrency: 1, verify: { delayMs: 20 * 60_000, retries: 0, intervalMs: 1_000 }, windows: WINDOW, owner: 'bench', seed: 'windows' }),
    )
    const starts = events.filter((e) => e.type === 'host-started').map((e) => Date.parse(e.at))
    const outside = starts.filter((s) => !isOpen(WINDOW, s)).length
    const nights = [...new Set(starts.map((s) => new Date(s).toISOString().slice(0, 10)))]
    const dstFirst = starts.find((s) => new Date(s).toISOString().startsWith('2026-03-29'))
    const days = (clock.now() - start) / 86_400_000
    expect(result.exitCode).toBe(0)
    record({
      id: 'windows',
      title: 'Deploy windows across a DST change (issue 19)',
      order: 60,
      summary: [
        { metric: 'hosts started outside 02:00–05:00 Europe/Berlin', target: '0', value: String(outside), ok: outside === 0 },
        { metric: 'simulated time / nights used', target: '—', value: `${days.toFixed(1)} days / ${nights.length} nights (${nights.join(', ')})`, ok: null },
        {
          metric: 'first start on the spring-forward night (29 March)',
          target: '03:00 CEST (02:00 does not exist)',
          value: dstFirst === undefined ? 'none' : `${new Date(dstFirst).toISOString()} = ${Math.floor(localTime(dstFirst, 'Europe/Berlin').minute / 60)}:00 local`,
          ok: dstFirst !== undefined && localTime(dstFirst, 'Europe/Berlin').minute === 180,
        },
      ],
      notes: '60 hosts, one at a time, 20 minutes each (a verify delay on the fake clock): nine hosts a night. The real engine and PGlite store; scripted hosts; the clock jumps through every wait.',
    })
    expect(outside).toBe(0)
  } finally {
    await t.close()
  }
}, 300_000)
