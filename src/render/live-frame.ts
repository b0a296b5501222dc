import { gateLine } from '../notify/summary.js'
/** The live frame, pure: a LiveState in, the lines to draw out (no terminal, no clock of its own). */
import type { ChalkInstance } from 'chalk'

import { formatDuration } from '../duration.js'
import type { HostStatus } from '../types.js'
import type { FailureView, LiveState, StageView } from './live-state.js'
import { palette, shortSha, statusColor } from './style.js'
import { fit, visibleLength } from './width.js'

export interface LiveRenderOptions {
  readonly color: boolean
  /** Columns available; every line of the frame is cut to it so a redraw never wraps. */
  readonly width: number
  /** ms since epoch; drives the elapsed clock, host ages and the spinner. */
  readonly now: number
  /** In-flight hosts listed (longest-running first) before "+N more". */
  readonly maxInFlight?: number
  /** Newest failures listed; 0 keeps only the count line (for a caller that prints failures elsewhere). */
  readonly maxFailures?: number
}

const SPINNER = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏']

/** `mm:ss`, or `h:mm:ss` past an hour: a clock, unlike formatDuration's compact form. */
export const formatClock = (ms: number): string => {
  const total = Math.max(0, Math.floor(ms / 1000))
  const pad = (n: number) => String(n).padStart(2, '0')
  const [h, m, s] = [Math.floor(total / 3600), Math.floor(total / 60) % 60, total % 60]
  return h > 0 ? `${h}:${pad(m)}:${pad(s)}` : `${pad(m)}:${pad(s)}`
}

const label = (status: HostStatus): string => status.replace(/_/g, ' ')

/** `[■ 10% ✓] [■■□□ 50% 3/8] [□□□□□ 100%]`: one block per ~10% of the fleet the stage adds. */
export function renderStageBar(stages: readonly StageView[], c: ChalkInstance): string {
  let previous = 0
  return stages
    .map((s) => {
      const blocks = Math.max(1, Math.round((s.percent - previous) / 10))
      previous = s.percent
      const filled = s.status === 'pending' ? 0 : s.status === 'done' ? blocks : Math.floor((blocks * s.finished) / Math.max(1, s.size))
      const bar = '■'.repeat(filled) + '□'.repeat(blocks - filled)
      switch (s.status) {
        case 'done':
          return c.green(`[${bar} ${s.percent}% ✓]`)
        case 'current':
          return c.cyan(`[${bar} ${s.percent}% ${s.finished}/${s.size}]`)
        case 'halted':
          return c.yellow(`[${bar} ${s.percent}% halted]`)
        case 'stopped':
          return c.yellow(`[${bar} ${s.percent}% stopped ${s.finished}/${s.size}]`)
        case 'pending':
          return c.gray(`[${bar} ${s.percent}%]`)
      }
    })
    .join(' ')
}

/** One failure: a single line in the frame, the header plus its error lines when printed to scrollback. */
export function formatFailure(f: FailureView, c: ChalkInstance, multiline: boolean): string {
  const at = f.reverted && f.status === 'rolled_back' ? `by the revert (stage ${f.stage + 1})` : `${f.failedStep ? `at ${f.failedStep} ` : ''}(stage ${f.stage + 1})`
  const head =
    f.status === 'rollback_failed'
      ? c.red.bold(`✖ HOST MAY BE DOWN: ${f.host} rollback failed ${at}`)
      : c.yellow(`✗ ${f.host} ${label(f.status)} ${at}`)
  const tone = f.status === 'rollback_failed' ? c.red : c.gray
  if (!multiline) return f.error.length ? `${head} ${tone(`— ${f.error.join(' ⏎ ')}`)}` : head
  return [head, ...f.error.map((l) => tone(`    ${l}`))].join('\n')
}

function renderCounts(state: LiveState, c: ChalkInstance): string[] {
  const { counts } = state
  // Zeros stay on screen (greyed) so numbers do not jump around as statuses first appear.
  const n = (value: number, name: string, paint: (s: string) => string) => (value > 0 ? paint(`${value} ${name}`) : c.gray(`0 ${name}`))
  return [
    `  hosts    ${state.done}/${state.hosts} done  ${n(counts.updating, 'updating', c.cyan)}  ${counts.pending} left`,
    `           ${[
      n(counts.success, 'success', c.green),
      n(counts.skipped, 'skipped', (s) => s),
      n(counts.failed, 'failed', c.yellow),
      n(counts.rolled_back, 'rolled back', c.yellow),
      n(counts.rollback_failed, 'rollback failed', c.red.bold),
      n(counts.held, 'held', (s) => s),
    ].join('  ')}`,
  ]
}

/**
 * The live frame: a dozen-odd lines whatever the fleet size (summaries, never a row per host).
 * Once the rollout has finished it shrinks to header + stage bar; the summary tells the rest.
 */
export function renderLive(state: LiveState, options: LiveRenderOptions): string {
  const { color, width, now, maxInFlight = 8, maxFailures = 6 } = options
  const c = palette(color)
  const lines: string[] = []
  const elapsed = state.finished ? state.finished.durationMs : state.startedAt === null ? 0 : now - state.startedAt
  const target = state.target ? `${state.target.ref} → ${shortSha(state.target.sha)}` : 'resolving target…'
  const where = `${target}  ${state.hosts} host${state.hosts === 1 ? '' : 's'}  ${formatClock(elapsed)}`

  if (state.finished) {
    const { state: end } = state.finished
    const mark = state.counts.rollback_failed > 0 ? c.red.bold('✖') : end === 'completed' && state.failures === 0 ? c.green('✔') : c.yellow('!')
    lines.push(`${mark} rollout ${state.rolloutId} ${statusColor(c, end)(end)}  ${where}`)
    lines.push(`  stages   ${renderStageBar(state.stages, c)}`)
    return lines.map((l) => fit(l, width)).join('\n')
  }

  const spinner = c.cyan(SPINNER[Math.floor(now / 100) % SPINNER.length]!)
  const mode =
    state.stopping === 'abort'
      ? c.yellow('killing: rolling back the hosts in flight')
      : state.stopping === 'signal'
        ? c.yellow('stopping: hosts in flight finish (Ctrl-C again to abort)')
        : state.mode === 'reverting'
          ? c.yellow('reverting: moving the updated hosts back')
          : c.cyan(state.mode)
  lines.push(`${spinner} rollout ${state.rolloutId} ${mode}  ${where}`)
  lines.push(`  stages   ${renderStageBar(state.stages, c)}`)
  lines.push(...renderCounts(state, c))
  if (state.prepared > 0) lines.push(`  ahead    ${state.prepared} host${state.prepared === 1 ? '' : 's'} of later stages prepared: promotion only switches them`)
  if (state.bake) {
    // The bake: a countdown, then the last value of every gate.
    const left = formatClock(Math.max(0, state.bake.endsAt - now))
    lines.push(`  baking   stage ${state.bake.stage + 1}, ${left} left${state.bake.verdict ? `, last measurement ${state.bake.verdict}` : ', first measurement due'}`)
    for (const g of state.bake.gates) lines.push(`    ${(g.verdict === 'pass' ? c.green : g.verdict === 'fail' ? c.red : c.yellow)(gateLine(g))}`)
  }

  if (state.inFlight.size > 0 && maxInFlight > 0) {
    lines.push(`  in flight (${state.inFlight.size})`)
    let shown = 0
    for (const [host, f] of state.inFlight) {
      if (shown++ === maxInFlight) break // Map iteration: O(maxInFlight), never O(hosts)
      const step = f.step ? (f.phase === 'rollback' || f.reverting ? c.yellow(`${f.reverting ? 'revert' : 'rollback'} › ${f.step}`) : f.step) : c.gray('starting')
      const secs = Math.floor(Math.max(0, now - f.since) / 1000) // whole seconds: the frame changes at most once a second per host
      const age = secs < 60 ? `${secs}s` : formatDuration(secs * 1000)
      lines.push(`    ${host.padEnd(16)} ${step.padEnd(18 + (step.length - visibleLength(step)))} ${c.gray(age)}`)
    }
    if (state.inFlight.size > maxInFlight) lines.push(c.gray(`    +${state.inFlight.size - maxInFlight} more`))
  }

  if (state.failures > 0) {
    const loud = state.counts.rollback_failed > 0 ? `  ${c.red.bold(`${state.counts.rollback_failed} ROLLBACK FAILED: HOST MAY BE DOWN`)}` : ''
    lines.push(`  failures (${state.failures})${loud}`)
    const shown = maxFailures > 0 ? state.recentFailures.slice(-maxFailures) : []
    if (state.failures > shown.length && shown.length > 0) lines.push(c.gray(`    +${state.failures - shown.length} earlier`))
    for (const f of shown) lines.push(`    ${formatFailure(f, c, false)}`)
  }
  return lines.map((l) => fit(l, width)).join('\n')
}
