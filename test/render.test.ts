import { PassThrough } from 'node:stream'

import { afterEach, describe, expect, it, vi } from 'vitest'

import { emptyCounts, type RolloutEvent, type StatusCounts } from '../src/rollout/events.js'
import type { HostStatus, StepName } from '../src/types.js'
import { createLiveRenderer } from '../src/render/live.js'
import { renderLive } from '../src/render/live-frame.js'
import { formatPlainEvent } from '../src/render/plain.js'
import { errorTail, LiveState } from '../src/render/live-state.js'
import { fit } from '../src/render/width.js'
import { renderSummary, summaryFromState } from '../src/render/summary.js'

// ---------------------------------------------------------------------------------------------
// Recorded event sequences, built the way the engine emits them.

const SHA = 'abcdef1234567890abcdef1234567890abcdef12'
const OLD = '0123456789ab0123456789ab0123456789ab0123'
const T0 = Date.parse('2025-01-01T12:00:00.000Z')
const ANSI = /\x1b\[/

/** A recorder with its own clock: each event is stamped `at` the recorder's current time. */
function recorder(rolloutId = 'r-42') {
  const events: RolloutEvent[] = []
  let t = T0
  const at = () => new Date(t).toISOString()
  const counts: StatusCounts = emptyCounts()
  const base = { rolloutId }
  return {
    events,
    counts,
    tick: (ms: number) => void (t += ms),
    now: () => t,
    started(hosts: number, stageSizes: number[], concurrency = 5) {
      counts.pending = hosts
      events.push({ type: 'rollout-started', ...base, ref: 'main', sha: SHA, stages: [10, 50, 100], stageSizes, hosts, concurrency, failureThreshold: 0.3, seed: 's', at: at() })
    },
    stage(stage: number, hosts: string[]) {
      events.push({ type: 'stage-started', ...base, stage, percent: [10, 50, 100][stage]!, hosts, at: at() })
    },
    hostStarted(host: string, stage: number) {
      counts.pending--
      counts.updating++
      events.push({ type: 'host-started', ...base, stage, host, address: '10.0.0.1', at: at() })
    },
    step(host: string, stage: number, step: StepName, phase: 'update' | 'rollback' = 'update') {
      events.push({ type: 'host-step', ...base, stage, host, step, phase, at: at() })
    },
    hostFinished(host: string, stage: number, status: HostStatus, failedStep: StepName | null = null, error: string | null = null) {
      counts.updating--
      counts[status]++
      const newVersion = status === 'success' ? SHA : status === 'failed' ? null : OLD
      events.push({ type: 'host-finished', ...base, stage, host, status, previousVersion: OLD, newVersion, failedStep, error, durationMs: 1234, at: at() })
    },
    stageFinished(stage: number, halted = false) {
      events.push({ type: 'stage-finished', ...base, stage, percent: [10, 50, 100][stage]!, counts: { ...counts }, failureRate: 0, halted, at: at() })
    },
    finished(state: 'completed' | 'halted' | 'interrupted', exitCode: number) {
      events.push({ type: 'rollout-finished', ...base, state, exitCode, counts: { ...counts }, durationMs: t - T0, error: null, at: at() })
    },
  }
}

const INSTALL_ERROR = [
  'install failed (exit 1): error: could not resolve "left-pad"',
  '    at resolve (bun:internal)',
  '    at install (bun:internal)',
  'error: lockfile had changes, but lockfile is frozen',
  'note: try `bun install` without --frozen-lockfile',
].join('\n')
const ROLLBACK_ERROR = 'restart failed (exit 3): rachel8.service: main process exited\n; ROLLBACK FAILED: verify failed (exit 3) (after 3 attempts)'

const host = (i: number) => `host-${String(i).padStart(2, '0')}`

/**
 * 20 hosts, stages 2/8/10: stage 1 succeeds; in stage 2 host-05 is rolled back after a failed
 * install and host-06 fails its rollback; stage 3 is caught mid-flight with 10 hosts updating.
 */
function twentyHostRollout() {
  const r = recorder()
  const snapshots: Record<'midFlight' | 'end', number> = { midFlight: 0, end: 0 }
  r.started(20, [2, 8, 10])
  r.stage(0, [host(1), host(2)])
  for (const i of [1, 2]) {
    r.hostStarted(host(i), 0)
    for (const s of ['connect', 'version', 'fetch', 'install', 'restart', 'verify'] as const) r.step(host(i), 0, s)
    r.tick(2000)
    r.hostFinished(host(i), 0, 'success')
  }
  r.stageFinished(0)
  r.stage(1, Array.from({ length: 8 }, (_, k) => host(k + 3)))
  for (let i = 3; i <= 10; i++) {
    r.hostStarted(host(i), 1)
    r.step(host(i), 1, 'install')
    r.tick(1000)
    if (i === 5) {
      r.step(host(i), 1, 'rollback', 'rollback')
      r.hostFinished(host(i), 1, 'rolled_back', 'install', INSTALL_ERROR)
    } else if (i === 6) {
      r.step(host(i), 1, 'restart', 'rollback')
      r.hostFinished(host(i), 1, 'rollback_failed', 'restart', ROLLBACK_ERROR)
    } else r.hostFinished(host(i), 1, 'success')
  }
  r.stageFinished(1)
  r.stage(2, Array.from({ length: 10 }, (_, k) => host(k + 11)))
  for (let i = 11; i <= 20; i++) {
    r.hostStarted(host(i), 2)
    r.step(host(i), 2, i === 12 ? 'verify' : 'fetch', i === 12 ? 'rollback' : 'update')
    r.tick(100)
  }
  snapshots.midFlight = r.events.length
  for (let i = 11; i <= 20; i++) r.hostFinished(host(i), 2, 'success')
  r.stageFinished(2)
  r.finished('completed', 5)
  snapshots.end = r.events.length
  return { ...r, snapshots }
}

const stateAfter = (events: RolloutEvent[], n = events.length): LiveState => {
  const state = new LiveState()
  for (const e of events.slice(0, n)) state.apply(e)
  return state
}

// ---------------------------------------------------------------------------------------------

describe('renderLive (pure)', () => {
  const r = twentyHostRollout()
  const mid = stateAfter(r.events, r.snapshots.midFlight)
  const frame = renderLive(mid, { color: false, width: 160, now: r.now() })

  it('shows the target, stage bar, counts and elapsed time', () => {
    expect(frame).toContain('main → abcdef123456')
    expect(frame).toContain('rollout r-42')
    expect(frame).toMatch(/\[■ 10% ✓\] \[■■■■ 50% ✓\] \[□□□□□ 100% 0\/10\]/)
    expect(frame).toContain('hosts    10/20 done  10 updating  0 left')
    expect(frame).toContain('8 success  0 skipped  0 failed  1 rolled back  1 rollback failed')
    expect(frame).toContain('20 hosts  00:13') // 2×2 s + 8×1 s + 10×0.1 s since rollout-started
  })

  it('lists at most maxInFlight hosts with their current step, then +N more', () => {
    expect(frame).toContain('in flight (10)')
    expect(frame).toMatch(/host-11\s+fetch/)
    expect(frame).toMatch(/host-12\s+rollback › verify/)
    expect(frame).toContain('+2 more')
    expect(frame).not.toContain('host-19')
  })

  it('shows failures with their step and error tail, rollback_failed loudest', () => {
    expect(frame).toContain('failures (2)  1 ROLLBACK FAILED: HOST MAY BE DOWN')
    expect(frame).toContain('✗ host-05 rolled back at install (stage 2)')
    // first line (step, exit code) + the last lines of stderr
    expect(frame).toContain('install failed (exit 1): error: could not resolve "left-pad" ⏎ error: lockfile had changes')
    expect(frame).toContain('✖ HOST MAY BE DOWN: host-06 rollback failed at restart (stage 2)')
    expect(frame).toContain('main process exited ⏎ ; ROLLBACK FAILED')
  })

  it('paints rolled_back yellow and rollback_failed red bold when colour is on, nothing when off', () => {
    const colored = renderLive(mid, { color: true, width: 160, now: r.now() })
    expect(colored).toMatch(ANSI)
    expect(frame).not.toMatch(ANSI)
    expect(colored).toContain('\x1b[33m✗ host-05 rolled back')
    expect(colored).toMatch(/\x1b\[31m\x1b\[1m✖ HOST MAY BE DOWN: host-06/)
  })

  it('cuts every line to the width, with and without colour', () => {
    for (const width of [40, 60, 100])
      for (const color of [false, true]) {
        const out = renderLive(mid, { color, width, now: r.now() })
        for (const line of out.split('\n')) expect([...line.replace(/\x1b\[[0-9;]*m/g, '')].length).toBeLessThanOrEqual(width)
      }
    expect(fit('\x1b[31mabcdef\x1b[39m', 4)).toBe('\x1b[31mabc…\x1b[0m')
    expect(fit('abc', 3)).toBe('abc')
  })

  it('shrinks to header and stage bar once finished; the summary tells the rest', () => {
    const end = stateAfter(r.events)
    const out = renderLive(end, { color: false, width: 100, now: r.now() })
    expect(out.split('\n')).toHaveLength(2)
    expect(out).toContain('✖ rollout r-42 completed  main → abcdef123456')
    expect(out).toContain('[■ 10% ✓] [■■■■ 50% ✓] [■■■■■ 100% ✓]')
  })

  it('marks a halted stage and leaves later stages pending', () => {
    const h = recorder()
    h.started(10, [1, 4, 5])
    h.stage(0, [host(1)])
    h.hostStarted(host(1), 0)
    h.hostFinished(host(1), 0, 'rolled_back', 'verify', 'verify failed')
    h.stageFinished(0, true)
    h.finished('halted', 3)
    const out = renderLive(stateAfter(h.events), { color: false, width: 100, now: h.now() })
    expect(out).toContain('[■ 10% halted] [□□□□ 50%] [□□□□□ 100%]')
  })

  it('keeps only a sanitised head and tail of an error', () => {
    expect(errorTail('a\nb\nc\nd\ne')).toEqual(['a', 'd', 'e'])
    expect(errorTail('\x1b[31mred\x1b[0m\r\nok\ttab')).toEqual(['red', 'ok tab'])
    expect(errorTail(null)).toEqual([])
  })
})

describe('renderSummary', () => {
  it('tables the hosts that did not succeed, the counts and what the exit code means', () => {
    const r = twentyHostRollout()
    const out = summaryFromState(stateAfter(r.events), { color: false })!
    expect(out).not.toMatch(ANSI)
    const rows = out.split('\n')
    const at = (h: string) => rows.findIndex((l) => l.includes(h))
    expect(at('host-06')).toBeLessThan(at('host-05')) // the host that may be down comes first
    // The version column says where each host is now, and for one moved back, which target it left.
    expect(rows[at('host-06')]).toMatch(/host-06 │ 2 +│ ROLLBACK FAILED │ restart │ stuck on 0123456789ab +│ restart failed \(exit 3\)/)
    expect(rows[at('host-05')]).toMatch(/host-05 │ 2 +│ rolled back +│ install │ abcdef123456 ↩ 0123456789ab │ install failed \(exit 1\)/)
    for (const line of summaryFromState(stateAfter(r.events), { color: false, width: 100 })!.split('\n')) expect(line.length).toBeLessThanOrEqual(100)
    expect(out).not.toContain('host-01') // successes are not rows
    expect(out).toContain('rollout r-42 completed in 13s: success 18, rolled_back 1, rollback_failed 1')
    expect(out.split('\n').slice(-2).join(' ')).toBe(
      'exit 5: a rollback failed: at least one host may be down and needs a person: 1 host could not be rolled back and may be down, 1 host rolled back to its previous version',
    )
    expect(summaryFromState(stateAfter(r.events), { color: true })).toMatch(ANSI)
    expect(summaryFromState(stateAfter(r.events, r.snapshots.midFlight), { color: false })).toBeNull()
  })

  it('caps the table at 50 rows and points at fleet rollout status for the rest', () => {
    const r = recorder()
    r.started(300, [30, 120, 150])
    r.stage(0, [])
    for (let i = 0; i < 300; i++) {
      r.hostStarted(`h${i}`, 0)
      r.hostFinished(`h${i}`, 0, i % 2 ? 'rolled_back' : 'success', 'install', 'install failed (exit 1)')
    }
    r.finished('halted', 3)
    const out = summaryFromState(stateAfter(r.events), { color: false })!
    expect(out.split('\n').filter((l) => /│ h\d+/.test(l))).toHaveLength(50)
    expect(out).toContain('+100 more (fleet rollout status)')
    expect(out).toContain('exit 3: halted')
  })

  it('prints only counts and the exit line when every host succeeded', () => {
    const finished = { type: 'rollout-finished', rolloutId: 'r', state: 'completed', exitCode: 0, counts: { ...emptyCounts(), success: 3 }, durationMs: 61_000, error: null, at: '' } as const
    expect(renderSummary({ finished, outcomes: [] }, { color: false })).toBe(
      'rollout r completed in 1m01s: success 3\nexit 0: every targeted host succeeded or was already on the target',
    )
  })
})

describe('10,000 hosts', () => {
  it('keeps the frame bounded and the redraw cheap', () => {
    const N = 10_000
    const r = recorder('r-big')
    r.started(N, [1000, 4000, 5000], 50)
    const stageOf = (i: number) => (i < 1000 ? 0 : i < 5000 ? 1 : 2)
    // Recorded up front so the measurement is the renderer's, not the test's.
    for (let i = 0; i < N; i++) {
      const name = `vps-${i}`
      const stage = stageOf(i)
      if (i === 0 || i === 1000 || i === 5000) r.stage(stage, [])
      r.hostStarted(name, stage)
      for (const s of ['fetch', 'install', 'restart'] as const) r.step(name, stage, s)
      r.tick(10)
      // keep 50 in flight: finish the host started 50 before
      if (i >= 50) {
        const j = i - 50
        const status: HostStatus = j % 97 === 0 ? 'rolled_back' : j % 1999 === 0 ? 'rollback_failed' : 'success'
        r.hostFinished(`vps-${j}`, stageOf(j), status, status === 'success' ? null : 'verify', status === 'success' ? null : INSTALL_ERROR)
      }
    }
    const { events } = r
    const state = new LiveState()

    const frames: string[] = []
    const every = Math.floor(events.length / 100)
    const t0 = performance.now()
    let renderMs = 0
    events.forEach((e, k) => {
      state.apply(e)
      if (k % every === 0) {
        const f0 = performance.now()
        frames.push(renderLive(state, { color: true, width: 120, now: r.now() }))
        renderMs += performance.now() - f0
      }
    })
    const totalMs = performance.now() - t0
    console.log(
      `10,000 hosts: ${events.length} events + ${frames.length} frames in ${totalMs.toFixed(1)} ms; ` +
        `apply ${(((totalMs - renderMs) / events.length) * 1000).toFixed(2)} µs/event, renderLive ${((renderMs / frames.length) * 1000).toFixed(1)} µs/frame`,
    )

    const last = renderLive(state, { color: false, width: 120, now: r.now() })
    expect(last.split('\n').length).toBeLessThan(30)
    for (const f of frames) expect(f.split('\n').length).toBeLessThan(30)
    expect(last).toContain('in flight (50)')
    expect(last).toContain('+42 more')
    expect(last).toMatch(/\+\d+ earlier/)
    expect(last).toContain(`9950/${N} done`)
    expect(state.recentFailures.length).toBeLessThanOrEqual(32)
  })
})

describe('createLiveRenderer', () => {
  afterEach(() => void vi.useRealTimers())

  const fakeTerminal = () => {
    const stream = Object.assign(new PassThrough(), { columns: 80, rows: 40 })
    let output = ''
    stream.on('data', (chunk: Buffer) => (output += chunk.toString()))
    return { stream, output: () => output }
  }

  it('redraws in place, persists failures above the frame, ends with the summary', () => {
    vi.useFakeTimers()
    const r = twentyHostRollout()
    const term = fakeTerminal()
    const live = createLiveRenderer({ stream: term.stream, color: false, now: r.now })

    for (const e of r.events.slice(0, r.snapshots.midFlight)) live.listener(e)
    vi.advanceTimersByTime(100)
    const first = term.output()
    expect(first).toContain('\x1b[?25l') // cursor hidden while the frame is live
    expect(first).toContain('main → abcdef123456')
    expect(first).toContain('in flight (10)')
    // failures are written as persistent lines, error tail included
    expect(first).toContain('✗ host-05 rolled back at install (stage 2)\n    install failed (exit 1)')
    expect(first).toContain('✖ HOST MAY BE DOWN: host-06 rollback failed at restart (stage 2)\n    restart failed (exit 3)')

    // nothing changed: no redraw
    vi.advanceTimersByTime(100)
    expect(term.output()).toBe(first)

    // Ctrl-C: a clear line at once, and the previous frame erased (cursor up + clear)
    live.listener({ type: 'rollout-stopping', rolloutId: '', reason: 'signal', at: '' })
    const afterStop = term.output().slice(first.length)
    expect(afterStop).toMatch(/^\x1b\[\d+A\r\x1b\[0J/)
    expect(afterStop).toContain('stopping: no new hosts will start')
    expect(afterStop).toContain('stopping: hosts in flight finish (Ctrl-C again to abort)')

    for (const e of r.events.slice(r.snapshots.midFlight)) live.listener(e)
    const out = term.output()
    expect(out).toContain('exit 5: a rollback failed')
    expect(out).toContain('┌') // the summary table
    expect(out.endsWith('\x1b[?25h')).toBe(true) // cursor restored
    expect(out).not.toContain('\x1b[3') // colour off: cursor moves only, no colours
    expect(vi.getTimerCount()).toBe(0)

    const len = out.length
    live.done() // idempotent after the finished event
    vi.advanceTimersByTime(1000)
    expect(term.output().length).toBe(len)
  })

  it('done() without a finished event keeps the last frame, restores the cursor and clears its timer', () => {
    vi.useFakeTimers()
    const r = twentyHostRollout()
    const term = fakeTerminal()
    const exitListeners = process.listenerCount('exit')
    const live = createLiveRenderer({ stream: term.stream, color: true, now: r.now })
    for (const e of r.events.slice(0, 10)) live.listener(e)
    vi.advanceTimersByTime(250)
    live.done()
    expect(vi.getTimerCount()).toBe(0)
    expect(term.output()).toMatch(ANSI)
    expect(term.output().endsWith('\x1b[?25h')).toBe(true)
    expect(term.output()).toContain('rollout r-42')
    expect(process.listenerCount('exit')).toBe(exitListeners) // the cursor-restoring exit hook is gone too
  })

  it('a terminal made narrower is redrawn at once, erasing the rows the old frame now wraps onto', () => {
    vi.useFakeTimers()
    const r = twentyHostRollout()
    const term = fakeTerminal()
    term.stream.columns = 120
    const live = createLiveRenderer({ stream: term.stream, color: false, now: r.now })
    for (const e of r.events.slice(0, r.snapshots.midFlight)) live.listener(e)
    vi.advanceTimersByTime(100)
    const before = term.output()
    // The one frame drawn so far starts at its header line (failures were written above it).
    const lines = before.split('\n')
    const frameLines = lines.slice(lines.findIndex((l) => l.includes('rollout r-42'))).filter((l) => l !== '')
    term.stream.columns = 30
    term.stream.emit('resize')
    const after = term.output().slice(before.length)
    const up = Number(/^\x1b\[(\d+)A/.exec(after)?.[1])
    // Each old line (up to 119 columns) now takes ceil(width / 30) rows; moving up by the line count would leave junk.
    const rows = frameLines.reduce((n, l) => n + Math.max(1, Math.ceil(l.length / 30)), 0)
    expect(up).toBe(rows)
    expect(up).toBeGreaterThan(frameLines.length)
    for (const line of after.split('\n').slice(1)) expect(line.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').length).toBeLessThanOrEqual(30)
    live.done()
  })

  it('writes nothing before the rollout starts and leaves no timer when done() comes first', () => {
    const term = fakeTerminal()
    const live = createLiveRenderer({ stream: term.stream, color: false })
    live.done()
    expect(term.output()).toBe('')
  })
})

describe('live view: the bake', () => {
  it('shows a countdown and the last value of every gate, and drops it when the gates pass', () => {
    const state = new LiveState()
    const at = (s: number) => new Date(T0 + s * 1000).toISOString()
    state.apply({ type: 'rollout-started', rolloutId: 'r', ref: 'main', sha: SHA, stages: [50, 100], stageSizes: [1, 1], hosts: 2, concurrency: 1, failureThreshold: 0.3, seed: 's', at: at(0) })
    state.apply({ type: 'bake-started', rolloutId: 'r', stage: 0, bakeMs: 60_000, intervalMs: 10_000, endsAt: at(70), at: at(10) })
    state.apply({ type: 'gate-measured', rolloutId: 'r', stage: 0, verdict: 'pass', gates: [{ name: 'error_rate', kind: 'metric', value: 0.004, min: null, max: 0.01, verdict: 'pass', reason: '0.004 <= max 0.01' }], at: at(20) })
    const frame = renderLive(state, { color: false, width: 100, now: T0 + 28_000 })
    expect(frame).toContain('baking   stage 1, 00:42 left, last measurement pass')
    expect(frame).toMatch(/error_rate=0\.004 \(max 0\.01\) pass/)
    state.apply({ type: 'gates-passed', rolloutId: 'r', stage: 0, at: at(70) })
    expect(renderLive(state, { color: false, width: 100, now: T0 + 71_000 })).not.toContain('baking')
  })
})

describe('live view: the header says what the rollout does; a revert is shown as one', () => {
  it('baking in the header; gates failing with revert: reverting, the moved hosts leave success for rolled back "by the revert"', () => {
    const state = new LiveState()
    const at = (s: number) => new Date(T0 + s * 1000).toISOString()
    const base = { rolloutId: 'r' }
    state.apply({ type: 'rollout-started', ...base, ref: 'main', sha: SHA, stages: [50, 100], stageSizes: [1, 1], hosts: 2, concurrency: 1, failureThreshold: 0.3, seed: 's', at: at(0) })
    state.apply({ type: 'stage-started', ...base, stage: 0, percent: 50, hosts: ['a'], at: at(0) })
    state.apply({ type: 'host-started', ...base, stage: 0, host: 'a', address: '127.0.0.1', at: at(0) })
    state.apply({ type: 'host-finished', ...base, stage: 0, host: 'a', status: 'success', previousVersion: OLD, newVersion: SHA, failedStep: null, error: null, durationMs: 900, at: at(1) })
    state.apply({ type: 'stage-finished', ...base, stage: 0, percent: 50, counts: { ...emptyCounts(), success: 1, pending: 1 }, failureRate: 0, halted: false, at: at(1) })
    state.apply({ type: 'bake-started', ...base, stage: 0, bakeMs: 60_000, intervalMs: 10_000, endsAt: at(61), at: at(1) })
    expect(renderLive(state, { color: false, width: 120, now: T0 + 2_000 }).split('\n')[0]).toMatch(/rollout r baking /)

    state.apply({ type: 'gates-failed', ...base, stage: 0, reason: 'error_rate 0.2 > max 0.01', onFail: 'revert', at: at(20) })
    state.apply({ type: 'host-step', ...base, stage: 0, host: 'a', step: 'checkout', phase: 'update', at: at(21) })
    const during = renderLive(state, { color: false, width: 120, now: T0 + 22_000 })
    expect(during.split('\n')[0]).toMatch(/reverting: moving the updated hosts back/)
    expect(during).toMatch(/a {15} revert › checkout/)
    expect(state.counts).toMatchObject({ success: 0, updating: 1, pending: 1 })
    state.apply({ type: 'host-finished', ...base, stage: 0, host: 'a', status: 'rolled_back', previousVersion: OLD, newVersion: OLD, failedStep: null, error: 'rolled back: gates failed at stage 1', durationMs: 3000, at: at(24) })
    expect(state.counts).toMatchObject({ success: 0, updating: 0, rolled_back: 1, pending: 1 })
    const after = renderLive(state, { color: false, width: 120, now: T0 + 25_000 })
    expect(after).toContain('✗ a rolled back by the revert (stage 1)')
    expect(after).not.toContain('unknown step')
    // The stage's own tally is not counted twice.
    expect(state.stages[0]!.finished).toBe(1)
  })

  it('a terminal that reports 0 columns gets a usable frame (80 columns), not a 20-column stub', () => {
    const stream = Object.assign(new PassThrough(), { isTTY: true, columns: 0, rows: 24 })
    let out = ''
    stream.on('data', (d: Buffer) => (out += d.toString()))
    const { listener, done } = createLiveRenderer({ stream: stream as unknown as NodeJS.WriteStream, color: false })
    listener({ type: 'rollout-started', rolloutId: 'r-zero-columns', ref: 'main', sha: SHA, stages: [100], stageSizes: [1], hosts: 1, concurrency: 1, failureThreshold: 0.3, seed: 's', at: new Date().toISOString() })
    done()
    expect(out).toMatch(/rollout r-zero-columns running  main → abcdef1\w*  1 host  00:00\n/)
  })
})

describe('a host held after the rollout began', () => {
  it('is done for the live view, counted `held` (not skipped), and no line says every host succeeded', () => {
    const state = new LiveState()
    const at = (s: number) => new Date(T0 + s * 1000).toISOString()
    const base = { rolloutId: 'r' }
    state.apply({ type: 'rollout-started', ...base, ref: 'main', sha: SHA, stages: [100], stageSizes: [2], hosts: 2, concurrency: 1, failureThreshold: 0.3, seed: 's', at: at(0) })
    state.apply({ type: 'stage-started', ...base, stage: 0, percent: 100, hosts: ['a', 'b'], at: at(0) })
    const held = { type: 'host-finished', ...base, stage: 0, host: 'b', status: 'held', previousVersion: null, newVersion: null, failedStep: null, error: 'held since the rollout began: never touched', durationMs: 0, at: at(0) } as const
    state.apply(held)
    state.apply({ type: 'host-started', ...base, stage: 0, host: 'a', address: '127.0.0.1', at: at(0) })
    state.apply({ type: 'host-finished', ...base, stage: 0, host: 'a', status: 'success', previousVersion: OLD, newVersion: SHA, failedStep: null, error: null, durationMs: 900, at: at(1) })
    expect(state.counts).toMatchObject({ success: 1, held: 1, skipped: 0, pending: 0 })
    expect(state.done).toBe(2)
    const frame = renderLive(state, { color: false, width: 120, now: T0 + 2_000 })
    expect(frame).toContain('2/2 done')
    expect(frame).toContain('0 skipped  0 failed  0 rolled back  0 rollback failed  1 held')
    expect(formatPlainEvent(held, { color: false, verbose: false, timestamps: false })).toBe('  b held, never touched')
    const finished = { type: 'rollout-finished', ...base, state: 'completed', exitCode: 0, counts: { ...emptyCounts(), success: 1, held: 1 }, durationMs: 2000, error: null, at: at(2) } as const
    const summary = renderSummary({ finished, outcomes: [] }, { color: false })
    expect(summary).toContain('rollout r completed in 2s: success 1, held 1')
    expect(summary).toContain('exit 0: every other targeted host succeeded or was already on the target; 1 host held, never touched')
    expect(summary).not.toMatch(/every targeted host succeeded/)
  })
})
