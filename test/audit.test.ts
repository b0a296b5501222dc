/**
 * The audit trail (`fleet rollout events`) from a recorded event log: the existing engine events are
 * typed as RolloutEvent (so a shape change breaks this file), the gate and control events carry the
 * design's fields.
 */
import { describe, expect, it } from 'vitest'

import { auditEntries, auditJson, auditMarkdown, auditText, type StoredEvent } from '../src/audit/index.js'
import type { RolloutEvent } from '../src/rollout/events.js'

const SHA = 'a1b2c3d4e5f60718293a4b5c6d7e8f9012345678'
const PREV = '0f0e0d0c0b0a09080706050403020100ffeeddcc'
const t = (minutes: number): string => new Date(Date.parse('2026-11-30T12:00:00.000Z') + minutes * 60_000).toISOString()
const counts = { pending: 0, updating: 0, success: 1, failed: 0, rolled_back: 0, rollback_failed: 0, skipped: 0, held: 0 }

const engine: RolloutEvent[] = [
  { type: 'rollout-started', rolloutId: 'r-9', ref: 'main', sha: SHA, stages: [50, 100], stageSizes: [1, 2], hosts: 3, concurrency: 5, failureThreshold: 0.3, seed: SHA, at: t(0) },
  { type: 'stage-started', rolloutId: 'r-9', stage: 0, percent: 50, hosts: ['web-1'], at: t(0) },
  { type: 'host-started', rolloutId: 'r-9', stage: 0, host: 'web-1', address: '10.0.0.1', at: t(0) },
  { type: 'host-step', rolloutId: 'r-9', stage: 0, host: 'web-1', step: 'install', phase: 'update', at: t(0) },
  { type: 'host-finished', rolloutId: 'r-9', stage: 0, host: 'web-1', status: 'success', previousVersion: PREV, newVersion: SHA, failedStep: null, error: null, durationMs: 4200, at: t(1) },
  { type: 'stage-finished', rolloutId: 'r-9', stage: 0, percent: 50, counts, failureRate: 0, halted: false, at: t(1) },
]
const control = [
  { type: 'bake-started', rolloutId: 'r-9', stage: 0, bakeMs: 600_000, intervalMs: 60_000, endsAt: t(11), at: t(1) },
  { type: 'gate-measured', rolloutId: 'r-9', stage: 0, verdict: 'pass', at: t(2), gates: [{ name: 'error_rate', kind: 'metric', value: 0.0021, min: null, max: 0.01, verdict: 'pass', reason: '0.0021 within max 0.01' }, { name: 'smoke', kind: 'check', value: 0, min: null, max: null, verdict: 'pass', reason: 'exit 0' }] },
  { type: 'rollout-paused', rolloutId: 'r-9', stage: 0, actor: 'alice@ops-1', reason: 'latency | spike on *eu* <b>', at: t(3) },
  { type: 'rollout-resumed', rolloutId: 'r-9', stage: 0, actor: 'alice@ops-1', owner: 'alice@ops-1 pid 4242', at: t(10) },
  { type: 'gate-measured', rolloutId: 'r-9', stage: 0, verdict: 'fail', at: t(11), gates: [{ name: 'error_rate', kind: 'metric', value: 0.052, min: null, max: 0.01, verdict: 'fail', reason: 'above max' }] },
  { type: 'gates-failed', rolloutId: 'r-9', stage: 0, reason: 'error_rate 0.052 above max 0.01', onFail: 'revert', at: t(11) },
  { type: 'host-finished', rolloutId: 'r-9', stage: 0, host: 'web-1', status: 'rolled_back', previousVersion: PREV, newVersion: PREV, failedStep: null, error: 'gate error_rate failed at stage 1\n\u001b[2Jcleared', durationMs: 3000, at: t(12) },
  { type: 'rollout-finished', rolloutId: 'r-9', state: 'halted', exitCode: 3, counts: { ...counts, success: 0, rolled_back: 1, pending: 2 }, durationMs: 12 * 60_000, error: null, at: t(12) },
]
const stored: StoredEvent[] = [...engine, ...control].map((e) => ({ at: new Date(e.at), type: e.type, host: 'host' in e ? (e.host as string) : null, data: e }))

describe('audit entries', () => {
  it('split who, what and why; manual actions are the ones a person ran', () => {
    const entries = auditEntries(stored)
    const paused = entries.find((e) => e.type === 'rollout-paused')!
    expect(paused).toMatchObject({ who: 'alice@ops-1', manual: true, what: 'rollout paused', why: 'latency | spike on *eu* <b>' })
    expect(entries.find((e) => e.type === 'rollout-resumed')).toMatchObject({ who: 'alice@ops-1', manual: true, what: 'rollout resumed at stage 1' })
    const measured = entries.filter((e) => e.type === 'gate-measured')
    expect(measured.map((e) => [e.what, e.why])).toEqual([
      ['stage 1 gates measured: pass', 'error_rate=0.0021 (max 0.01) pass; smoke pass'],
      ['stage 1 gates measured: fail', 'error_rate=0.052 (max 0.01) fail (above max)'],
    ])
    expect(entries.filter((e) => e.manual).map((e) => e.type)).toEqual(['rollout-paused', 'rollout-resumed'])
    // A pause by the gates names no person and is not manual.
    expect(auditEntries([{ at: t(1), type: 'rollout-paused', data: { reason: 'gates inconclusive 4 times in a row', at: t(1) } }])[0]).toMatchObject({ who: null, manual: false })
  })
})

describe('auditText', () => {
  it('one line per event that matters, host chatter only with all', () => {
    const text = auditText(stored)
    expect(text.split('\n')).toEqual([
      `${t(0)}  fleet        rollout started: main → a1b2c3d on 3 hosts, stages 50% (1) → 100% (2)`,
      `${t(0)}  fleet        stage 1 (50%) started: 1 host`,
      `${t(1)}  fleet        web-1 updated 0f0e0d0 → a1b2c3d in 4.2s`,
      `${t(1)}  fleet        stage 1 (50%) done: success 1; failure rate 0%`,
      `${t(1)}  fleet        stage 1 bake started: 10m, measured every 1m until ${t(11)}`,
      `${t(2)}  fleet        stage 1 gates measured: pass — error_rate=0.0021 (max 0.01) pass; smoke pass`,
      `${t(3)}  alice@ops-1  * rollout paused — latency | spike on *eu* <b>`,
      `${t(10)}  alice@ops-1  * rollout resumed at stage 1`,
      `${t(11)}  fleet        stage 1 gates measured: fail — error_rate=0.052 (max 0.01) fail (above max)`,
      `${t(11)}  fleet        stage 1 gates FAILED; reverting every updated host — error_rate 0.052 above max 0.01`,
      `${t(12)}  fleet        web-1 rolled back in 3s — gate error_rate failed at stage 1 cleared`,
      `${t(12)}  fleet        rollout halted in 12m: rolled_back 1, pending 2; exit 3`,
      '',
    ])
    expect(text).not.toContain('\u001b')
    expect(auditText(stored, { all: true }).split('\n')).toHaveLength(15)
    expect(auditText([])).toBe('no events recorded\n')
  })
})

describe('auditJson', () => {
  it('NDJSON: every event as streamed, plus who, manual and summary', () => {
    const lines = auditJson(stored).trimEnd().split('\n')
    expect(lines).toHaveLength(stored.length)
    const objects = lines.map((line) => JSON.parse(line) as Record<string, unknown>)
    expect(objects[0]).toEqual({ ...engine[0], who: null, manual: false, summary: 'rollout started: main → a1b2c3d on 3 hosts, stages 50% (1) → 100% (2)' })
    expect(objects.find((o) => o.type === 'rollout-paused')).toMatchObject({ actor: 'alice@ops-1', reason: 'latency | spike on *eu* <b>', who: 'alice@ops-1', manual: true })
    expect(objects.find((o) => o.type === 'gate-measured')!.gates).toEqual(control[1]!.gates)
  })
})

describe('auditMarkdown', () => {
  const report = auditMarkdown({ id: 'r-9', owner: 'cron@ctl-1 pid 77' }, stored)

  it('a pasteable report: title, target, who started it, outcome, hosts, timeline', () => {
    const lines = report.split('\n')
    expect(lines[0]).toBe('# Rollout r-9: main → a1b2c3d')
    expect(report).toContain(`| Target | main at \`${SHA}\` |`)
    expect(report).toContain('| Started | 2026-11-30 12:00:00Z by cron@ctl-1 |')
    expect(report).toContain('| Finished | 2026-11-30 12:12:00Z (12m) |')
    expect(report).toContain('| Outcome | **halted** (exit 3); hosts: rolled\\_back 1, pending 2 |')
    expect(report).toContain('| Manual actions | 2 (paused, resumed) |')
    expect(report).toContain('## Hosts that did not succeed\n\n- **web-1**: rolled\\_back: gate error\\_rate failed at stage 1 cleared\n')
    expect(report).toContain('| Time (UTC) | Who | What | Why / values |\n| --- | --- | --- | --- |\n')
    expect(report).toContain('| 2026-11-30 12:02:00Z | fleet | stage 1 gates measured: pass | error\\_rate=0.0021 (max 0.01) pass; smoke pass |')
  })

  it('untrusted text can neither break the table nor become markup', () => {
    const row = report.split('\n').find((l) => l.includes('rollout paused'))!
    expect(row).toBe('| 2026-11-30 12:03:00Z | alice@ops-1 | **rollout paused** | latency \\| spike on \\*eu\\* \\<b\\> |')
    // Every timeline row has exactly 4 cells (5 unescaped pipes).
    for (const line of report.split('\n').filter((l) => l.startsWith('| 2026'))) expect(line.match(/(?<!\\)\|/g)).toHaveLength(5)
    expect(report).not.toContain('\u001b')
  })

  it('the rollout record wins over the events; an unfinished rollout says so', () => {
    const running = auditMarkdown({ id: 'r-10', ref: 'release/1', sha: SHA, state: 'baking', startedAt: new Date(t(0)), finishedAt: null }, stored.slice(0, 6))
    expect(running).toContain('# Rollout r-10: release/1 → a1b2c3d')
    expect(running).toContain('| Finished | not finished |')
    expect(running).toContain('| Outcome | **baking** |')
    expect(running).not.toContain('Hosts that did not succeed')
  })
})
