import type { RolloutListener } from '../rollout/events.js'
import { buildStatus } from '../rollout/status.js'
import { writeStatusSnapshot } from '../store/snapshot.js'
import type { Store } from '../store/store.js'

const INTERVAL_MS = 1_000

/**
 * For the embedded store only: keeps `<dir>/status.json` current (at most once
 * a second, and at the end) so other shells can see the rollout. A no-op with Postgres,
 * where any process can read the tables.
 */
export function snapshotListener(store: Store, dir: string): { listener: RolloutListener; done(): Promise<void> } {
  if (store.kind !== 'pglite') return { listener: () => {}, done: async () => {} }
  let rolloutId: string | null = null
  let dirty = false
  let writing: Promise<void> = Promise.resolve()
  const write = () => {
    if (!rolloutId || !dirty) return writing
    dirty = false
    const id = rolloutId
    writing = writing.then(async () => {
      const rollout = await store.getRollout(id)
      if (rollout) writeStatusSnapshot(dir, buildStatus(rollout, await store.listRolloutHostStates(id)))
    }).catch(() => {})
    return writing
  }
  const timer = setInterval(() => void write(), INTERVAL_MS)
  timer.unref()
  return {
    listener: (event) => {
      if (event.rolloutId) rolloutId = event.rolloutId
      dirty = true
      if (event.type === 'rollout-started' || event.type === 'rollout-finished') void write()
    },
    done: async () => {
      clearInterval(timer)
      dirty = true
      await write()
    },
  }
}
