import { onStdoutLost } from './stdio.js'

/**
 * What ends a rollout early, all handled alike: Ctrl-C, SIGTERM, SIGHUP (the
 * operator's SSH session dropped), stdout gone, or an error nothing else
 * caught. The first stops starting hosts and lets in-flight ones finish; a
 * second signal kills in-flight commands (their hosts are rolled back). The
 * cause travels as the stop signal's reason, so it is recorded.
 */
export interface RolloutSignals {
  readonly stop: AbortSignal
  readonly kill: AbortSignal
  dispose(): void
}

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const

export function listenForStopSignals(): RolloutSignals {
  const stop = new AbortController()
  const kill = new AbortController()
  const onSignal = (signal: NodeJS.Signals) => {
    if (!stop.signal.aborted) stop.abort(signal)
    else if (!kill.signal.aborted) kill.abort(signal)
  }
  // Output trouble or a stray error stops the run safely but never escalates to killing commands.
  const stopOnly = (cause: string) => {
    if (!stop.signal.aborted) stop.abort(cause)
  }
  const onUnexpected = (error: unknown) => {
    const text = error instanceof Error ? (error.stack ?? error.message) : String(error)
    try {
      process.stderr.write(`fleet: internal error during the rollout, stopping safely (hosts in flight finish): ${text}\n`)
    } catch {
      /* stderr may be gone too */
    }
    stopOnly('internal error')
  }
  for (const signal of SIGNALS) process.on(signal, onSignal)
  const unsubscribe = onStdoutLost(stopOnly)
  process.on('uncaughtException', onUnexpected)
  process.on('unhandledRejection', onUnexpected)
  return {
    stop: stop.signal,
    kill: kill.signal,
    dispose: () => {
      for (const signal of SIGNALS) process.off(signal, onSignal)
      unsubscribe()
      process.off('uncaughtException', onUnexpected)
      process.off('unhandledRejection', onUnexpected)
    },
  }
}
