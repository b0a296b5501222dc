import type { Fence, RequestInbox, RolloutRequestRecord } from '../store/store.js'

/** How often a running rollout looks for requests: "within seconds". */
export const REQUEST_POLL_MS = 1_000

/** What the run does with what the inbox takes in. */
export interface InboxHandlers {
  /** A promote was applied: end the current (or next) bake as passed. */
  promote(request: RolloutRequestRecord): Promise<void>
  /** Why a promote cannot be applied now (null: it can). */
  whyNotPromote(): string | null
  /** A request was consumed without effect: the audit trail says which and why. */
  notApplied(request: RolloutRequestRecord, why: string): Promise<void>
}

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
    private readonly handlers: InboxHandlers,
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
      const why = request.kind === 'promote' ? (this.pause !== null ? 'the rollout is pausing; `fleet rollout promote` continues it once it is paused' : this.handlers.whyNotPromote()) : null
      // Another holder may have consumed it (then it is theirs), or we lost the lease (the write says so).
      if (!(await this.store.settleRequest(this.fence, request.id, this.owner, why === null ? 'applied' : `not applied: ${why}`))) continue
      if (why !== null) await this.handlers.notApplied(request, why)
      else if (request.kind === 'pause') {
        if (this.pause === null) {
          this.pause = `paused by ${request.actor}${request.reason ? `: ${request.reason}` : ''}`
          this.pausedBy = { actor: request.actor, reason: request.reason }
        }
      } else await this.handlers.promote(request)
      applied ||= why === null
    }
    if (applied) {
      this.waker.abort()
      this.waker = new AbortController()
    }
    return applied
  }

  /**
   * Requests that can no longer be applied (the rollout ended, or a person's resume, promote or abort
   * took it over after they were sent): each is settled with why; the caller says so in the audit
   * trail (notApplied), outside its store retries.
   */
  async closeUnapplied(why: string, sentBefore?: Date): Promise<RolloutRequestRecord[]> {
    const closed: RolloutRequestRecord[] = []
    for (const request of await this.store.pendingRequests(this.fence.leaseId))
      if ((!sentBefore || request.requestedAt < sentBefore) && await this.store.settleRequest(this.fence, request.id, this.owner, `not applied: ${why}`)) closed.push(request)
    return closed
  }
}
