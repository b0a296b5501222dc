import { FencedError } from '../ssh/fenced-session.js'
import { LostLeaseError } from '../store/store.js'
import type { RolloutEvent } from './events.js'

/**
 * A run's hold on its rollout. Lost when another process took the lease over:
 * a renewal or a write found another epoch (LostLeaseError), or a host's fence
 * refused a command (FencedError). Then nothing more starts, commands in
 * flight end without another being run, and nothing more is recorded: the new
 * holder owns the rollout and settles its hosts from what is really on them.
 */
export class Hold {
  private readonly controller = new AbortController()

  /** The errors that mean the rollout is someone else's now. */
  static ends(error: unknown): error is LostLeaseError | FencedError {
    return error instanceof LostLeaseError || error instanceof FencedError
  }

  /** Aborted once lost: every host's next command is refused locally. */
  get signal(): AbortSignal {
    return this.controller.signal
  }

  get lost(): boolean {
    return this.controller.signal.aborted
  }

  /** Who took it over, in words. */
  get why(): string {
    return String(this.controller.signal.reason ?? '')
  }

  /** The first loss is told (never stored: this process may no longer write); later ones add nothing. */
  lose(error: LostLeaseError | FencedError, rolloutId: string, tell: (event: RolloutEvent) => void, at: string): void {
    if (this.lost) return
    const why = error instanceof LostLeaseError ? error.message : `lost rollout ${rolloutId}: a host's fence says another process took it over (${error.message.replace(/^fleet-fence: /, '')})`
    this.controller.abort(why)
    tell({ type: 'rollout-lost', rolloutId, holder: error instanceof LostLeaseError ? error.holder : null, reason: why, at })
  }
}
