/**
 * What fleet says about an outcome is derived from the recorded outcome: the
 * exit line names what happened to which hosts, and text a host sent is
 * cleaned of escape sequences before any terminal, log or table shows it.
 */
import { describe, expect, it } from 'vitest'

import { emptyCounts } from '../src/rollout/events.js'
import { exitCodeFor } from '../src/rollout/exit-code.js'
import { describeOutcome } from '../src/rollout/outcome.js'
import { formatPlainEvent } from '../src/render/plain.js'
import { renderSummary, versionCell } from '../src/render/summary.js'
import { sanitize, sanitizeLine } from '../src/text/sanitize.js'

const HOSTILE = '\x1b]0;TITLE\x07\x1b[2J\x1b[Hboom\r\x1bP1;2|payload\x1b\\\x9b31m\u202eevil\x00\xff\ttab\nnext'

describe('sanitize: text from a host', () => {
  it('drops CSI, OSC (with its payload), DCS, C1, NUL, CR and bidi overrides; keeps newline and tab', () => {
    expect(sanitize(HOSTILE)).toBe('boomevilÿ\ttab\nnext')
    expect(sanitize('plain text\twith tab\n')).toBe('plain text\twith tab\n')
    expect(sanitizeLine('a\nb\tc')).toBe('a b c')
  })
  it('never lets an ESC, BEL or C1 byte through, whatever the input', () => {
    let junk = ''
    for (let i = 0; i < 2000; i++) junk += String.fromCharCode((i * 7919) % 256)
    expect(sanitize(junk)).not.toMatch(/[\x00-\x08\x0b-\x1f\x7f-\x9f]/)
  })
})

describe('the exit line is derived from the counts', () => {
  const counts = (c: Partial<ReturnType<typeof emptyCounts>>) => ({ ...emptyCounts(), ...c })

  it('a halt caused by connect failures does not claim anything was rolled back', () => {
    const line = describeOutcome({ state: 'halted', exitCode: 3, counts: counts({ failed: 2, pending: 8 }) })
    expect(line).toBe('halted: a stage failed too often: 2 hosts failed before anything changed on them, 8 hosts not started')
    expect(line).not.toMatch(/rolled back/)
  })
  it('names rolled-back and failed hosts apart', () => {
    expect(describeOutcome({ state: 'completed', exitCode: 4, counts: counts({ success: 7, rolled_back: 1, failed: 1 }) })).toBe(
      'completed, but some hosts failed: 1 host rolled back to its previous version, 1 host failed before anything changed on it',
    )
  })
  it('abort: exit 0 when done, 3 when moving hosts back had to stop, 5 when a rollback failed; the line agrees', () => {
    expect(exitCodeFor('aborted', counts({ rolled_back: 2 }))).toBe(0)
    expect(exitCodeFor('aborted', counts({ rolled_back: 1, success: 3 }), { revertHalted: true })).toBe(3)
    expect(exitCodeFor('aborted', counts({ rollback_failed: 1 }))).toBe(5)
    expect(describeOutcome({ state: 'aborted', exitCode: 0, counts: counts({ rolled_back: 2 }) })).toBe('aborted: 2 hosts rolled back to their previous version')
    expect(describeOutcome({ state: 'aborted', exitCode: 0, counts: counts({ rolled_back: 2 }) })).not.toMatch(/interrupted/)
  })
  it('an interrupted rollout says it can be resumed', () => {
    expect(describeOutcome({ state: 'interrupted', exitCode: 130, counts: counts({ success: 1, pending: 3 }) })).toBe(
      'interrupted; every host is in a recorded state: 3 hosts not started; `fleet rollout resume` continues',
    )
  })
})

describe('version column', () => {
  const target = 'b'.repeat(40)
  it('shows the target a rolled-back host left, not previous → previous', () => {
    expect(versionCell({ status: 'rolled_back', previousVersion: 'a'.repeat(40), newVersion: 'a'.repeat(40) }, target)).toBe('bbbbbbbbbbbb ↩ aaaaaaaaaaaa')
    expect(versionCell({ status: 'failed', previousVersion: null, newVersion: null }, target)).toBe('unchanged')
    expect(versionCell({ status: 'rollback_failed', previousVersion: 'a'.repeat(40), newVersion: null }, target)).toBe('version unknown')
  })
})

describe('renderers never pass escape sequences from a host', () => {
  const finished = { type: 'host-finished', rolloutId: 'r', stage: 0, host: 'h1', status: 'rolled_back', previousVersion: 'a'.repeat(40), newVersion: 'a'.repeat(40), failedStep: 'install', error: HOSTILE, durationMs: 1, at: '2026-11-30T00:00:00Z' } as const
  it('plain lines (cron and CI logs)', () => {
    const line = formatPlainEvent(finished, { color: false, verbose: false, timestamps: true })!
    expect(line).toContain('boomevil')
    expect(line).not.toMatch(/[\x00-\x08\x0b-\x1f\x7f-\x9f]/)
  })
  it('the end-of-rollout table', () => {
    const out = renderSummary(
      {
        finished: { type: 'rollout-finished', rolloutId: 'r', state: 'completed', exitCode: 4, counts: { ...emptyCounts(), rolled_back: 1 }, durationMs: 1, error: null, at: '' },
        outcomes: [{ host: 'h1', stage: 0, status: 'rolled_back', failedStep: 'install', error: HOSTILE, previousVersion: null, newVersion: null }],
      },
      { color: false, width: 200 },
    )
    expect(out).toContain('boomevil')
    expect(out).not.toMatch(/[\x00-\x08\x0b-\x1f\x7f-\x9f]/)
  })
})

describe('terminal width', () => {
  it('counts wide characters as two columns when cutting a line', async () => {
    const { fit } = await import('../src/render/width.js')
    const { default: stringWidth } = await import('string-width')
    const cut = fit('顧客-東京-01 running install', 10)
    expect(stringWidth(cut)).toBeLessThanOrEqual(10)
    expect(cut).toBe('顧客-東京…')
    expect(fit('\x1b[31mabcdef\x1b[39m', 4)).toBe('\x1b[31mabc…\x1b[0m')
  })
})

describe('rollout status: the gates of the current stage', () => {
  it('are read from the log: last measurement while baking, then the verdict', async () => {
    const { gateState } = await import('../src/rollout/status.js')
    const at = (s: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, s))
    const measured = { stage: 1, verdict: 'pass', gates: [{ name: 'error_rate', value: 0.004, min: null, max: 0.01, verdict: 'pass', reason: '0.004 <= max 0.01' }] }
    expect(gateState(1, [])).toBeNull()
    expect(gateState(1, [{ type: 'gate-measured', data: { ...measured, stage: 0 }, at: at(1) }])).toBeNull()
    expect(gateState(1, [{ type: 'gate-measured', data: measured, at: at(2) }])).toMatchObject({ stage: 1, phase: 'measured', verdict: 'pass', gates: measured.gates })
    expect(gateState(1, [{ type: 'gate-measured', data: measured, at: at(2) }, { type: 'rollout-paused', data: { stage: 1, reason: 'gates in error for 10m' }, at: at(3) }])).toMatchObject({ phase: 'paused', reason: 'gates in error for 10m', verdict: 'pass' })
  })
})

describe('notify knows every event the engine emits', () => {
  it('EVENT_TYPES (what notify[].on may name) covers every RolloutEvent type', async () => {
    const { EVENT_TYPES } = await import('../src/notify/event-types.js')
    // Compile time: npm test's typecheck fails if an engine event type is missing from the list.
    type Missing = Exclude<import('../src/rollout/events.js').RolloutEvent['type'], (typeof EVENT_TYPES)[number]>
    const none: [Missing] extends [never] ? true : Missing = true
    expect(none).toBe(true)
    expect(EVENT_TYPES).toContain('rollout-promoted')
  })
})
