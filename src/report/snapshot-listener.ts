import type { RolloutListener } from '../rollout/events.js'
import type { Database } from '../store/database.js'
import { collectSnapshot } from './snapshot-data.js'
import { writeSnapshot } from '../store/snapshot.js'
import type { Store } from '../store/store.js'

/** A live snapshot at most this often while the store is held (and the first one after this long). */
const INTERVAL_MS = 1_000

interface Keeper {
  changed(): void
  flush(): Promise<void>
  close(): Promise<void>
}

const keepers = new WeakMap<Store, Keeper>()

/**
 * For the embedded store only (PGlite is single-process): keeps `<dir>/snapshot.json` for the
 * read-only commands of other shells (see store/snapshot.ts). A process holding the store for more
 * than a second writes a live snapshot, then at most once a second while things change; closing
 * the store writes the final one. Postgres needs none: any process can read the tables.
 */
export function keepSnapshot(store: Store, database: Database, inventoryQuery: string | null): Keeper {
  const { dir, lockSince } = database
  if (database.kind !== 'pglite' || !dir || !lockSince) return { changed: () => {}, flush: async () => {}, close: () => database.close() }
  let dirty = true
  let writing: Promise<void> = Promise.resolve()
  const live = (): Promise<void> => {
    if (!dirty) return writing
    dirty = false
    writing = writing
      .then(async () => writeSnapshot(dir, await collectSnapshot(store, inventoryQuery), { lockSince, final: false }))
      .catch(() => {}) // a failed snapshot only leaves readers an older one, with its time
    return writing
  }
  let timer: NodeJS.Timeout | null = setInterval(() => void live(), INTERVAL_MS)
  timer.unref()
  const keeper: Keeper = {
    changed: () => {
      dirty = true
    },
    flush: () => {
      dirty = true
      return live()
    },
    close: async () => {
      if (timer) clearInterval(timer)
      timer = null
      await writing
      // Read before closing, write after: the fingerprint is the closed store's.
      const data = await collectSnapshot(store, inventoryQuery).catch(() => null)
      await database.close(() => {
        if (data) writeSnapshot(dir, data, { lockSince, final: true })
      })
    },
  }
  keepers.set(store, keeper)
  return keeper
}

/** The rollout's events mark the snapshot dirty; start and end are written at once. */
export function snapshotListener(store: Store, _dir?: string): { listener: RolloutListener; done(): Promise<void> } {
  const keeper = keepers.get(store)
  if (!keeper) return { listener: () => {}, done: async () => {} }
  return {
    listener: (event) => {
      keeper.changed()
      if (event.type === 'rollout-started' || event.type === 'rollout-finished') void keeper.flush()
    },
    done: () => keeper.flush(),
  }
}
