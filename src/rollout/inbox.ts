import type { Fence, RequestInbox, RolloutRequestRecord } from '../store/store.js'

/** How often a running rollout looks for requests: "within seconds". */
export const REQUEST_POLL_MS = 1_000

/**
 * Where the process driving a rollout receives requests (pause, promote) from
 * other shells and machines: rows of fleet_requests, consumed exactly once by
 * id under this run's fence, whether they were made before this process took
 * the rollout over or while it runs. They become facts for the decision core
 * (`pause`) and a signal that cuts a wait short (`wake`).
 */
export class Inbox {
  /** Why a person asked to pause; null while nobody did. */
  pause: string | null = null
  /** Who asked for that pause, and the reason they gave, for its event. */
  pausedBy: { readonly actor: string; readonly reason: string | null } | null = null
  private waker = new AbortController()
  private polling: Promise<void> | null = null

  constructor(
    private readonly store: RequestInbox,
    private readonly fence: Fence,
    private readonly owner: string,
    private readonly promote: (request: RolloutRequestRecord) => Promise<void>,
  ) {}

  /** Aborts when a request arrives: a bake or stage-delay wait ends early and the next decision sees it. */
  get wake(): AbortSignal {
    return this.waker.signal
  }

  /** Polls every REQUEST_POLL_MS; returns the function that stops it. */
  listen(): () => void {
    const timer = setInterval(() => void this.poll().catch(() => {}), REQUEST_POLL_MS)
    timer.unref()
    return () => clearInterval(timer)
  }

  /** Consumes every pending request once; true when one was applied. A failed poll is tried again by the next. */
  poll(): Promise<boolean> {
    const run = (this.polling ?? Promise.resolve()).then(() => this.consume())
    this.polling = run.then(
      () => {},
      () => {},
    )
    return run
  }

  private async consume(): Promise<boolean> {
    let applied = false
    for (const request of await this.store.pendingRequests(this.fence.leaseId)) {
      // Another holder may have consumed it (then it is theirs), or we lost the lease (the write says so).
      if (!(await this.store.settleRequest(this.fence, request.id, this.owner, 'applied'))) continue
      if (request.kind === 'pause' && this.pause === null) {
        this.pause = `paused by ${request.actor}${request.reason ? `: ${request.reason}` : ''}`
        this.pausedBy = { actor: request.actor, reason: request.reason }
      }
      else await this.promote(request)
      applied = true
    }
    if (applied) {
      this.waker.abort()
      this.waker = new AbortController()
    }
    return applied
  }

  /** At the end of a rollout: requests that came too late say so, and stay visible. */
  async closeUnapplied(state: string): Promise<void> {
    for (const request of await this.store.pendingRequests(this.fence.leaseId))
      await this.store.settleRequest(this.fence, request.id, this.owner, `not applied: the rollout had ended ${state}`)
  }
}
