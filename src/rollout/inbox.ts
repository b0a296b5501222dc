import { CONTROL_POLL_MS, type ControlChannel, type ControlRequest } from './control.js'

/**
 * Where a running rollout receives pause and promote requests from other
 * shells: polled every CONTROL_POLL_MS, turned into facts for the decision
 * core (`pause`) and a signal that cuts a wait short (`wake`).
 */
export class Inbox {
  /** Why a person asked to pause; null while nobody did. */
  pause: string | null = null
  private waker = new AbortController()

  constructor(private readonly channel: ControlChannel | undefined) {}

  /** Aborts when a request arrives: a bake or stage-delay wait ends early and the next decision sees it. */
  get wake(): AbortSignal {
    return this.waker.signal
  }

  /** Starts polling; returns the function that stops it. `promote` is called with each promote request. */
  listen(rolloutId: string, promote: (request: Extract<ControlRequest, { kind: 'promote' }>) => void): () => void {
    if (!this.channel) return () => {}
    const timer = setInterval(() => void this.poll(rolloutId, promote), CONTROL_POLL_MS)
    timer.unref()
    return () => clearInterval(timer)
  }

  private async poll(rolloutId: string, promote: (request: Extract<ControlRequest, { kind: 'promote' }>) => void): Promise<void> {
    let requests
    try {
      requests = await this.channel!.poll(rolloutId)
    } catch {
      return // the next poll tries again; a request is never acted on half-way
    }
    for (const request of requests) {
      if (request.kind === 'pause') this.pause ??= `paused by ${request.actor}${request.reason ? `: ${request.reason}` : ''}`
      else promote(request)
      this.waker.abort()
      this.waker = new AbortController()
    }
  }
}
