import { EVENT_TYPES, PROGRESS_TYPES } from '../events.js'
import { MAX_INVENTORY_ROWS } from '../rollout/inventory.js'
import { MAX_HISTORY_LIMIT, readHistory, type HistoryEntry } from '../rollout/history.js'
import { readStatus, type RolloutStatus } from '../rollout/status.js'
import { readSnapshot, type StoreSnapshot } from '../store/snapshot.js'
import type { HoldRow, HostRow, Store } from '../store/store.js'

/** What the read-only commands need of the embedded store, kept in its snapshot (store/snapshot.ts). */
export interface SnapshotData {
  /** Every row of fleet's hosts table (updatedAt as ISO text). */
  readonly hosts: readonly SnapshotHost[]
  /** Every hold (`fleet hosts hold`), expired ones too (since/until as ISO text); absent in older snapshots. */
  readonly holds?: readonly SnapshotHold[]
  /** The configured inventory.query and its rows, when the writer had one. */
  readonly inventory: { readonly query: string; readonly rows: readonly Record<string, unknown>[] } | null
  /** Newest first, up to the largest `history --limit`. */
  readonly history: readonly HistoryEntry[]
  /** The most recently started rollout. */
  readonly latest: RolloutStatus | null
  /** Its decisions (no host progress), the last TRAIL_MAX: the dashboard's audit trail and gate plots. */
  readonly trail?: Trail | null
}

export interface Trail {
  readonly rolloutId: string
  readonly events: readonly { readonly at: string; readonly type: string; readonly host: string | null; readonly data: unknown }[]
}

/** What a trail leaves out: host progress and host outcomes (the status has those, one row per host). */
export const TRAIL_TYPES = EVENT_TYPES.filter((t) => !PROGRESS_TYPES.includes(t) && t !== 'host-finished')
const TRAIL_MAX = 2_000

/** A check's output (up to 2 KiB a gate and measurement) stays in the store: the values are what a plot needs. */
const withoutOutput = (data: unknown): unknown => {
  const gates = (data as { gates?: unknown } | null)?.gates
  if (!Array.isArray(gates)) return data
  return { ...(data as object), gates: gates.map((g: unknown) => (typeof g === 'object' && g !== null ? { ...g, output: undefined } : g)) }
}

/** The decisions of a rollout, oldest first, at most the last TRAIL_MAX. */
export async function readTrail(store: Store, rolloutId: string): Promise<Trail> {
  const events = await store.listEvents(rolloutId, TRAIL_TYPES)
  return { rolloutId, events: events.slice(-TRAIL_MAX).map((e) => ({ ...e, data: withoutOutput(e.data), at: e.at.toISOString() })) }
}

export type SnapshotHost = Omit<HostRow, 'updatedAt'> & { readonly updatedAt: string | null }
export type SnapshotHold = Omit<HoldRow, 'since' | 'until'> & { readonly since: string; readonly until: string | null }

export type ReadSnapshot = StoreSnapshot<SnapshotData>

export const readStoreSnapshot = (dir: string): ReadSnapshot | null => readSnapshot<SnapshotData>(dir)

/**
 * Reads from the store everything the read-only commands show (see snapshot.ts). On PGlite the
 * queries share the one connection in turn, so no write of this process lands halfway through one.
 */
/** The snapshot's copy of the query's rows is a convenience: a slow query is left to the readers, who run it with the configured timeout. */
const QUERY_TIMEOUT_MS = 10_000

export async function collectSnapshot(store: Store, inventoryQuery: string | null): Promise<SnapshotData> {
  const hosts = await store.listHosts()
  const holds = await store.listHolds()
  const history = await readHistory(store, MAX_HISTORY_LIMIT)
  const latest = await readStatus(store)
  let inventory: SnapshotData['inventory'] = null
  if (inventoryQuery) {
    try {
      const rows = await store.runReadOnlyQuery(inventoryQuery, { timeoutMs: QUERY_TIMEOUT_MS, maxRows: MAX_INVENTORY_ROWS })
      // Values JSON cannot carry (bigint) or would come back as other types (dates): run the query instead.
      const plain = (v: unknown) => v === null || typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean'
      inventory = rows.every((r) => Object.values(r).every(plain)) ? { query: inventoryQuery, rows } : null
    } catch {
      inventory = null // a reader runs it itself and reports the error
    }
  }
  const trail = latest ? await readTrail(store, latest.id) : null
  return {
    hosts: hosts.map((h) => ({ ...h, updatedAt: h.updatedAt?.toISOString() ?? null })),
    holds: holds.map((h) => ({ ...h, since: h.since.toISOString(), until: h.until?.toISOString() ?? null })),
    inventory,
    history,
    latest,
    trail,
  }
}

export const hostRowOf = (h: SnapshotHost): HostRow => ({ ...h, updatedAt: h.updatedAt === null ? null : new Date(h.updatedAt) })
export const holdRowOf = (h: SnapshotHold): HoldRow => ({ ...h, since: new Date(h.since), until: h.until === null ? null : new Date(h.until) })
