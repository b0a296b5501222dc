/** The terminal driver of the live view: feeds events to LiveState and redraws its frame in place. */
import type { RolloutListener } from '../rollout/events.js'
import { isFailure, LiveState } from './live-state.js'
import { formatFailure, renderLive } from './live-frame.js'
import { formatPlainEvent } from './plain.js'
import { palette } from './style.js'
import { summaryFromState } from './summary.js'
import { visibleLength } from './width.js'

/** A terminal that reports 0 columns (some pseudo-terminals, `stty cols 0`) gets the usual 80. */
const columnsOf = (stream: { columns?: number }): number => (stream.columns && stream.columns > 0 ? stream.columns : 80)

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
    const width = Math.max(20, columnsOf(stream) - 1) // one spare column: no auto-wrap at the edge
    // maxFailures 0: each failure is already written above the frame; the frame keeps only the count.
    const lines = renderLive(state, { color, width, now: now(), maxFailures: 0 }).split('\n')
    // A frame taller than the screen cannot be erased by moving up; keep its top (the summary lines).
    return stream.rows && !finalFrame ? lines.slice(0, Math.max(1, stream.rows - 1)) : lines
  }

  const draw = (): void => {
    const lines = frameLines(false)
    const frame = lines.join('\n')
    if (frame === lastFrame && above.length === 0) return
    let out = eraseRows(rowsOf(drawn, columnsOf(stream))) + above.map((l) => `${l}\n`).join('')
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
    stream.write(eraseRows(rowsOf(drawn, columnsOf(stream))) + above.map((l) => `${l}\n`).join('') + final + tail + (cursorHidden ? SHOW_CURSOR : ''))
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
        return close(`${summaryFromState(state, { color, width: Math.max(20, columnsOf(stream) - 1) }) ?? ''}\n`)
      default:
        return
    }
  }

  return { listener, done: () => close('') }
}
