import type { HostRun } from './host-run.js'
import type { PlannedHost } from './plan.js'

/**
 * Prepare ahead (design "Release directories"): while a stage bakes or waits for its delay, the hosts
 * of later stages prepare the target, at most `concurrency` at once, each once per run; promotion then
 * only activates. A host's own update waits for its preparation, so the two never overlap.
 */
export class PrepareAhead {
  private readonly preparing = new Map<string, Promise<void>>()
  private active = 0

  constructor(
    private readonly hosts: HostRun,
    private readonly enabled: boolean,
    private readonly concurrency: number,
    private readonly onError: (error: unknown) => void,
  ) {}

  /** Starts preparing the first of `candidates` not prepared yet, up to the concurrency. */
  kick(candidates: readonly PlannedHost[]): void {
    if (!this.enabled) return
    for (const host of candidates) {
      if (this.active >= this.concurrency) return
      if (this.preparing.has(host.name)) continue
      this.active++
      const work = this.hosts
        .prepareAhead(host)
        .catch(this.onError)
        .finally(() => this.active--)
      this.preparing.set(host.name, work)
    }
  }

  /** Resolves once the host's preparation (if any) has ended. */
  before(name: string): Promise<void> {
    return this.preparing.get(name) ?? Promise.resolve()
  }

  /** Every preparation ended: before the run records its end or leaves the rest to the next tick. */
  async settle(): Promise<void> {
    await Promise.allSettled([...this.preparing.values()])
  }
}
