/**
 * The operator's output can vanish mid-rollout: `fleet … | head` closes the
 * pipe (EPIPE), a dropped SSH session leaves a dead terminal (EIO). A write
 * error must never end the process, so both streams always have an 'error'
 * listener. Losing stdout means nobody follows the run any more: rollouts
 * treat that like SIGHUP (stop safely, resumable). Losing stderr only drops
 * the human text written there.
 */
type LostHandler = (cause: string) => void

const handlers = new Set<LostHandler>()
let guarded = false
let stdoutLost: string | null = null

export function guardStdio(): void {
  if (guarded) return
  guarded = true
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (stdoutLost) return
    stdoutLost = `output closed (${error.code ?? error.message})`
    for (const handler of handlers) handler(stdoutLost)
  })
  process.stderr.on('error', () => {})
}

/** Calls `handler` once stdout is gone (at once if it already is); returns the unsubscribe. */
export function onStdoutLost(handler: LostHandler): () => void {
  if (stdoutLost) handler(stdoutLost)
  else handlers.add(handler)
  return () => handlers.delete(handler)
}
