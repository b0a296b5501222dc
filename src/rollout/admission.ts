import type { HoldReader } from '../store/store.js'
import type { PlannedHost } from './plan.js'
import type { RolloutSettings } from './request.js'
import { isOpen, nextChange } from './window.js'

/** How often a running rollout looks for holds placed after it began. */
const HOLDS_EVERY_MS = 5_000

/**
 * Which hosts may start now, as facts for the decision core: the deploy windows (per host time zone
 * with `"timezone": "host"`) and the holds placed since the rollout began (`fleet hosts hold`).
 * Windows are pure arithmetic on the clock; holds are read from the store every few seconds.
 */
export class Admission {
  private heldNow = new Set<string>()
  private lastHolds = 0
  private readonly zoneOf: ReadonlyMap<string, string | null>

  constructor(
    private readonly store: HoldReader,
    private readonly settings: RolloutSettings,
    hosts: readonly PlannedHost[],
  ) {
    this.zoneOf = new Map(hosts.map((h) => [h.name, h.timezone ?? null]))
  }

  private get windows() {
    return this.settings.ignoreWindow ? [] : (this.settings.windows ?? [])
  }

  /** Of these hosts, the ones outside their window at `now`, and when the first of them may start. */
  closed(names: Iterable<string>, now: number): { closed: Set<string>; opensAt: number | null } {
    const closed = new Set<string>()
    if (this.windows.length === 0) return { closed, opensAt: null }
    // Per time zone, not per host: a thousand hosts in three zones are three look-ups.
    const zones = new Map<string, { open: boolean; next: number | null }>()
    let opensAt: number | null = null
    for (const name of names) {
      const zone = this.zoneOf.get(name) ?? null
      let state = zones.get(zone ?? '')
      if (!state) {
        const open = isOpen(this.windows, now, zone)
        state = { open, next: open ? now : nextChange(this.windows, now, true, zone) }
        zones.set(zone ?? '', state)
      }
      if (state.open) continue
      closed.add(name)
      if (state.next !== null && (opensAt === null || state.next < opensAt)) opensAt = state.next
    }
    return { closed, opensAt }
  }

  /** Holds in force now, by name (refreshed at most every HOLDS_EVERY_MS; a failed read keeps the last). */
  async held(now: number): Promise<ReadonlySet<string>> {
    if (now - this.lastHolds < HOLDS_EVERY_MS) return this.heldNow
    this.lastHolds = now
    try {
      const holds = await this.store.listHolds()
      this.heldNow = new Set(holds.filter((h) => h.until === null || h.until.getTime() > now).map((h) => h.name))
    } catch {
      // The store's own retries report an outage; a hold is picked up by the next read.
    }
    return this.heldNow
  }
}
