import type { ChalkInstance } from 'chalk'

import { formatDuration } from '../duration.js'
import type { RolloutEvent, RolloutListener, StatusCounts } from '../rollout/events.js'
import { emptyCounts } from '../rollout/events.js'
import type { Phase } from '../rollout/host-update.js'
import type { HostStatus, StepName } from '../types.js'
import { formatPlainEvent } from './plain.js'
import { palette, shortSha, statusColor } from './style.js'
import { summaryFromState } from './summary.js'
import { sanitize } from '../text/sanitize.js'
import { fit, visibleLength } from './width.js'

export { fit } from './width.js'

type Finished = Extract<RolloutEvent, { type: 'rollout-finished' }>
type HostFinished = Extract<RolloutEvent, { type: 'host-finished' }>

export type FailureStatus = 'failed' | 'rolled_back' | 'rollback_failed'
export const isFailure = (status: HostStatus): status is FailureStatus =>
  status === 'failed' || status === 'rolled_back' || status === 'rollback_failed'

/** `stopped`: the stage ended with hosts never started (Ctrl-C), which is neither done nor halted. */
export type StageStatus = 'pending' | 'current' | 'done' | 'halted' | 'stopped'

export interface StageView {
  readonly percent: number
  readonly size: number
  finished: number
  status: StageStatus
}

export interface InFlightHost {
  readonly stage: number
  step: StepName | null
  phase: Phase
  /** When the host started (ms since epoch): the age shown is the host's, not the step's. */
  readonly since: number
}

export interface FailureView {
  readonly host: string
  readonly stage: number
  readonly status: FailureStatus
  readonly failedStep: StepName | null
  /** At most ERROR_LINES lines, sanitised (remote stderr may carry escape codes). */
  readonly error: readonly string[]
}

/** A host that did not succeed, as the end-of-rollout table shows it. */
export interface OutcomeRow {
  readonly host: string
  readonly stage: number
  readonly status: FailureStatus
  readonly failedStep: StepName | null
  readonly error: string | null
  readonly previousVersion: string | null
  readonly newVersion: string | null
}

const ERROR_LINES = 3
/** The frame shows the newest few; keeping a few more lets a caller ask for more without unbounded memory. */
const RECENT_FAILURES = 32
/** Per list (rollback_failed, others): the table shows 50 rows, this only bounds memory for huge failing fleets. */
export const MAX_STORED_OUTCOMES = 1000

/**
 * The useful part of an engine error in ERROR_LINES lines: its first line names the step and exit
 * code, its last lines are the end of stderr (and, after a failed rollback, why the rollback failed).
 */
export function errorTail(error: string | null, lines = ERROR_LINES): string[] {
  if (!error) return []
  const all = error
    .replace(/\t/g, ' ')
    .split(/\r?\n|\r/)
    // Remote text: escape sequences would corrupt a redrawn frame (or worse, the terminal).
    .map((l) => sanitize(l).trimEnd())
    .filter((l) => l.trim() !== '')
  return all.length <= lines ? all : [all[0]!, ...all.slice(all.length - (lines - 1))]
}

/**
 * Everything the live view shows, kept up to date in O(1) per event: no field is ever
 * recomputed by walking the hosts, so a 10,000-host rollout costs the same per event as a 10-host one.
 * Fields are public for renderers; only apply() changes them.
 */
export class LiveState {
  rolloutId = ''
  target: { ref: string; sha: string } | null = null
  hosts = 0
  concurrency = 0
  stages: StageView[] = []
  counts: StatusCounts = emptyCounts()
  startedAt: number | null = null
  stopping: 'signal' | 'abort' | null = null
  /** Insertion-ordered, so the first entries are the hosts that have been running longest. */
  readonly inFlight = new Map<string, InFlightHost>()
  /** Newest last, bounded by RECENT_FAILURES. */
  readonly recentFailures: FailureView[] = []
  /** Non-success outcomes for the summary; rollback_failed kept apart so a flood of rollbacks never pushes them out. */
  readonly critical: OutcomeRow[] = []
  readonly otherFailures: OutcomeRow[] = []
  finished: Finished | null = null

  apply(event: RolloutEvent): void {
    switch (event.type) {
      case 'rollout-started':
        this.rolloutId = event.rolloutId
        this.target = { ref: event.ref, sha: event.sha }
        this.hosts = event.hosts
        this.concurrency = event.concurrency
        this.stages = event.stages.map((percent, i) => ({ percent, size: event.stageSizes[i] ?? 0, finished: 0, status: 'pending' }))
        this.counts = { ...emptyCounts(), pending: event.hosts }
        this.startedAt = Date.parse(event.at)
        return
      case 'stage-started':
        // The engine never announces empty stages; passing one means it is behind us.
        this.stages.forEach((s, i) => {
          if (i < event.stage && s.status === 'pending') s.status = 'done'
        })
        if (this.stages[event.stage]) this.stages[event.stage]!.status = 'current'
        return
      case 'host-started':
        this.inFlight.set(event.host, { stage: event.stage, step: null, phase: 'update', since: Date.parse(event.at) })
        this.move('pending', 'updating')
        return
      case 'host-step': {
        const host = this.inFlight.get(event.host)
        if (host) {
          host.step = event.step
          host.phase = event.phase
        } else this.inFlight.set(event.host, { stage: event.stage, step: event.step, phase: event.phase, since: Date.parse(event.at) })
        return
      }
      case 'host-finished':
        // A host we never saw start (renderer attached late) was counted as pending, not updating.
        this.move(this.inFlight.delete(event.host) ? 'updating' : 'pending', event.status)
        if (this.stages[event.stage]) this.stages[event.stage]!.finished++
        if (isFailure(event.status)) this.recordFailure(event, event.status)
        return
      case 'stage-finished': {
        const stage = this.stages[event.stage]
        if (stage) stage.status = event.halted ? 'halted' : stage.finished < stage.size ? 'stopped' : 'done'
        return
      }
      case 'stage-delay':
        return
      case 'rollout-stopping':
        // A second Ctrl-C escalates; nothing de-escalates.
        if (this.stopping !== 'abort') this.stopping = event.reason
        return
      case 'rollout-finished':
        this.finished = event
        this.counts = { ...event.counts } // the engine's tally is the authority at the end
        this.inFlight.clear()
        if (event.state === 'completed') for (const s of this.stages) if (s.status === 'pending') s.status = 'done'
        return
    }
  }

  private move(from: HostStatus, to: HostStatus): void {
    this.counts[from] = Math.max(0, this.counts[from] - 1)
    this.counts[to]++
  }

  private recordFailure(event: HostFinished, status: FailureStatus): void {
    const error = errorTail(event.error)
    this.recentFailures.push({ host: event.host, stage: event.stage, status, failedStep: event.failedStep, error })
    if (this.recentFailures.length > RECENT_FAILURES) this.recentFailures.shift() // bounded: O(RECENT_FAILURES)
    const list = status === 'rollback_failed' ? this.critical : this.otherFailures
    if (list.length < MAX_STORED_OUTCOMES)
      list.push({
        host: event.host,
        stage: event.stage,
        status,
        failedStep: event.failedStep,
        error: error[0] ?? null,
        previousVersion: event.previousVersion,
        newVersion: event.newVersion,
      })
  }

  get done(): number {
    const c = this.counts
    return c.success + c.skipped + c.failed + c.rolled_back + c.rollback_failed
  }

  get failures(): number {
    return this.counts.failed + this.counts.rolled_back + this.counts.rollback_failed
  }
}

// ---------------------------------------------------------------------------------------------
// Pure rendering

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
  const at = `at ${f.failedStep ?? 'unknown step'} (stage ${f.stage + 1})`
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
      ? c.yellow('aborting: rolling back hosts in flight')
      : state.stopping === 'signal'
        ? c.yellow('stopping: hosts in flight finish (Ctrl-C again to abort)')
        : c.cyan('running')
  lines.push(`${spinner} rollout ${state.rolloutId} ${mode}  ${where}`)
  lines.push(`  stages   ${renderStageBar(state.stages, c)}`)
  lines.push(...renderCounts(state, c))

  if (state.inFlight.size > 0 && maxInFlight > 0) {
    lines.push(`  in flight (${state.inFlight.size})`)
    let shown = 0
    for (const [host, f] of state.inFlight) {
      if (shown++ === maxInFlight) break // Map iteration: O(maxInFlight), never O(hosts)
      const step = f.step ? (f.phase === 'rollback' ? c.yellow(`rollback › ${f.step}`) : f.step) : c.gray('starting')
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

// ---------------------------------------------------------------------------------------------
// Terminal driver

export interface LiveRendererOptions {
  readonly stream: NodeJS.WritableStream & { columns?: number; rows?: number }
  readonly color: boolean
  readonly now?: () => number
  /** Minimum time between two redraws. */
  readonly intervalMs?: number
}

const HIDE_CURSOR = '\x1b[?25l'
const SHOW_CURSOR = '\x1b[?25h'
/** Up n rows, to column 0, erase to the end of the screen: the previous frame is gone. */
const eraseRows = (n: number): string => (n > 0 ? `\x1b[${n}A\r\x1b[0J` : '')

/**
 * Rows the drawn lines take now: after the terminal got narrower, a line cut
 * to the old width wraps, and moving up by the line count would leave the top
 * of the old frame on screen.
 */
const rowsOf = (lines: readonly string[], columns: number | undefined): number =>
  lines.reduce((rows, line) => rows + Math.max(1, Math.ceil(visibleLength(line) / Math.max(1, columns ?? 80))), 0)

/**
 * Redraws the frame in place with plain ANSI cursor moves. Not ora: its own timer rewrites the
 * frame every 80 ms whether or not anything changed, its stdin discarder puts the terminal in raw
 * mode (competing with the command's own SIGINT handling), and it only redraws on a real TTY,
 * which left the driver untestable. Failures and Ctrl-C notices are written above the frame, so
 * they stay in scrollback; the frame itself is redrawn at most every intervalMs, and only when its
 * text changed.
 */
export function createLiveRenderer(options: LiveRendererOptions): { listener: RolloutListener; done(): void } {
  const { stream, color } = options
  const now = options.now ?? Date.now
  const c = palette(color)
  const state = new LiveState()
  let drawn: string[] = [] // the frame's lines currently on screen, below which the cursor sits
  let lastFrame = ''
  let above: string[] = [] // persistent lines waiting to be written above the frame
  let cursorHidden = false
  let closed = false

  const frameLines = (finalFrame: boolean): string[] => {
    if (state.startedAt === null && !finalFrame) return []
    const width = Math.max(20, (stream.columns ?? 80) - 1) // one spare column: no auto-wrap at the edge
    // maxFailures 0: each failure is already written above the frame; the frame keeps only the count.
    const lines = renderLive(state, { color, width, now: now(), maxFailures: 0 }).split('\n')
    // A frame taller than the screen cannot be erased by moving up; keep its top (the summary lines).
    return stream.rows && !finalFrame ? lines.slice(0, Math.max(1, stream.rows - 1)) : lines
  }

  const draw = (): void => {
    const lines = frameLines(false)
    const frame = lines.join('\n')
    if (frame === lastFrame && above.length === 0) return
    let out = eraseRows(rowsOf(drawn, stream.columns)) + above.map((l) => `${l}\n`).join('')
    if (lines.length > 0) {
      if (!cursorHidden) out = HIDE_CURSOR + out
      cursorHidden = true
      out += `${frame}\n`
    }
    stream.write(out)
    drawn = lines
    lastFrame = frame
    above = []
  }

  const restoreCursor = (): void => {
    if (cursorHidden) stream.write(SHOW_CURSOR)
    cursorHidden = false
  }

  // Unref'd: the view must never be what keeps the process alive.
  const timer = setInterval(draw, options.intervalMs ?? 100)
  timer.unref()
  // A resize changes every line's fit: redraw at once, at the new width.
  const onResize = (): void => {
    lastFrame = ''
    draw()
  }
  stream.on?.('resize', onResize)
  // If anything exits the process without done(), the terminal still gets its cursor back.
  process.once('exit', restoreCursor)

  /** Replace the live frame by its final, persistent form followed by `tail`, and stop. */
  const close = (tail: string): void => {
    if (closed) return
    closed = true
    clearInterval(timer)
    stream.off?.('resize', onResize)
    process.off('exit', restoreCursor)
    const final = state.startedAt === null ? '' : `${frameLines(true).join('\n')}\n`
    stream.write(eraseRows(rowsOf(drawn, stream.columns)) + above.map((l) => `${l}\n`).join('') + final + tail + (cursorHidden ? SHOW_CURSOR : ''))
    cursorHidden = false
    drawn = []
    above = []
  }

  const listener: RolloutListener = (event) => {
    if (closed) return
    state.apply(event)
    switch (event.type) {
      case 'host-finished': {
        const failure = state.recentFailures.at(-1)
        if (isFailure(event.status) && failure) above.push(formatFailure(failure, c, true))
        return
      }
      case 'rollout-stopping':
      case 'store-unavailable':
      case 'store-recovered':
        above.push(formatPlainEvent(event, { color, verbose: false, timestamps: false }) ?? event.type)
        return draw() // the operator just pressed Ctrl-C, or the database went away: say so now, not on the next tick
      case 'rollout-finished':
        return close(`${summaryFromState(state, { color, width: (stream.columns ?? 80) - 1 }) ?? ''}\n`)
      default:
        return
    }
  }

  return { listener, done: () => close('') }
}
