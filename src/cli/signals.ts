/**
 * Ctrl-C / SIGTERM during a rollout: the first stops starting hosts and lets
 * in-flight ones finish; the second aborts in-flight hosts (they are rolled back).
 */
export interface RolloutSignals {
  readonly stop: AbortSignal
  readonly abort: AbortSignal
  dispose(): void
}

export function listenForStopSignals(): RolloutSignals {
  const stop = new AbortController()
  const abort = new AbortController()
  let received = 0
  const onSignal = () => {
    received++
    ;(received === 1 ? stop : abort).abort()
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  return {
    stop: stop.signal,
    abort: abort.signal,
    dispose: () => {
      process.off('SIGINT', onSignal)
      process.off('SIGTERM', onSignal)
    },
  }
}
