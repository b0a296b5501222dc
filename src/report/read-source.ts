import { setTimeout as sleep } from 'node:timers/promises'

import { formatDuration } from '../duration.js'
import { sanitize } from '../text/sanitize.js'
import type { FleetConfig } from '../config/types.js'
import { LockedError } from '../errors.js'
import { readHistory, type HistoryEntry } from '../rollout/history.js'
import { loadInventory, validateRows, type Inventory } from '../rollout/inventory.js'
import { readStatus, type RolloutStatus } from '../rollout/status.js'
import { embeddedStoreExists, NoStoreError, openDatabase } from '../store/database.js'
import { lockHolderGone, readDirLock } from '../store/dir-lock.js'
import { LEASE_TTL_MS } from '../store/lease.js'
import { storeFingerprint } from '../store/snapshot.js'
import { holdRowOf, hostRowOf, readStoreSnapshot, readTrail, type ReadSnapshot, type Trail } from './snapshot-data.js'
import type { HoldRow, HostRow, RolloutRecord, Store } from '../store/store.js'
import { keepSnapshot } from './snapshot-listener.js'

/** What the read-only commands read, wherever it comes from. */
export interface ReadSource {
  hosts(): Promise<HostRow[]>
  /** fleet's holds, expired ones too. */
  holds(): Promise<HoldRow[]>
  /** The inventory.query result, validated as a rollout would load it. */
  inventory(): Promise<Inventory>
  history(limit: number): Promise<HistoryEntry[]>
  /** The given rollout, or the latest; null when there is none. */
  status(id?: string): Promise<RolloutStatus | null>
  /** The audit trail (record and events) of the given rollout, or the latest; null when there is none. */
  events(id?: string): Promise<AuditTrail | null>
  /** A rollout's decisions without host progress (snapshot-data.ts), as the dashboard shows them. */
  trail(id: string): Promise<Trail | null>
}

export interface AuditTrail {
  readonly rollout: RolloutRecord
  readonly events: Awaited<ReturnType<Store['listEvents']>>
}

/** How long a read waits for a process holding the embedded store without a snapshot (a short command). */
const LOCK_WAIT_MS = 10_000
const POLL_MS = 100

interface Reader<T> {
  /** From a snapshot; undefined when the snapshot does not have it. */
  fromSnapshot(snapshot: ReadSnapshot): T | undefined
  fromStore(store: Store): Promise<T>
  /** Said when a running holder's snapshot cannot answer (exit 6). */
  missing(snapshot: ReadSnapshot): string
}

/**
 * Runs a read-only command. It never creates a store: where the embedded store does not exist it
 * says where it looked and reads nothing. On Postgres it reads the tables. On PGlite, which one
 * process at a time can open, each read takes, in order:
 *  - the snapshot of the process holding the store (a rollout), saying when and by which pid it
 *    was written;
 *  - the snapshot the last process left when it closed the store, if the store has not been
 *    opened since (fingerprint of its control file): exact, and far cheaper than opening PGlite;
 *  - the store itself (opened, read, closed, leaving a new snapshot).
 * A holder without a snapshot (a short command) is waited for, up to LOCK_WAIT_MS.
 */
/** What reading needs of a command: the config, where it came from, and where to say a note. */
export interface ReadContext {
  readonly config: FleetConfig
  readonly configSource: string | null
  readonly out: { readonly stderr: { write(text: string): unknown } }
}

/**
 * A live snapshot's status as of now (the embedded store is one machine's: its clock is the one
 * clock): heartbeat ages keep growing, and a holder that stopped writing snapshots for longer than
 * the lease's TTL (frozen, say) is `gone`, as a lapsed lease is on Postgres.
 */
function asOfNow(status: RolloutStatus, writtenAt: string): RolloutStatus {
  const silent = Date.now() - Date.parse(writtenAt) > LEASE_TTL_MS
  return { ...status, readAt: new Date().toISOString(), orchestrator: status.orchestrator === 'live' && silent ? 'gone' : status.orchestrator }
}

export async function withReadSource<T>(ctx: ReadContext, fn: (source: ReadSource) => Promise<T>): Promise<T> {
  const { config } = ctx
  if (config.database.url) {
    const database = await openDatabase(config.database)
    const { Store } = await import('../store/store.js')
    try {
      return await fn(storeSource(new Store(database), config))
    } finally {
      await database.close()
    }
  }
  const dir = config.database.dir
  let noted = false
  const note = (line: string): void => {
    if (!noted) ctx.out.stderr.write(`fleet: ${sanitize(line)}\n`) // may quote another process's argv
    noted = true
  }
  const read = async <R>(reader: Reader<R>, empty: R): Promise<R> => {
    if (!embeddedStoreExists(dir)) {
      note(`${new NoStoreError(dir).message}; ${ctx.configSource ? `database.dir is resolved relative to ${ctx.configSource}` : 'no config file: database.dir is resolved relative to the working directory'}`)
      return empty
    }
    let waited: LockedError | null = null
    for (const deadline = Date.now() + LOCK_WAIT_MS; ; await sleep(POLL_MS)) {
      const holder = readDirLock(dir)
      const held = holder !== null && !lockHolderGone(holder)
      const snapshot = readStoreSnapshot(dir)
      if (held && snapshot && snapshot.pid === holder.pid && snapshot.lockSince === holder.since) {
        const value = reader.fromSnapshot(snapshot)
        const age = formatDuration(Math.max(0, Date.now() - Date.parse(snapshot.writtenAt)))
        const what = `the embedded store ${dir} is in use by pid ${holder.pid} on ${holder.host} (fleet ${holder.command ?? ''})`.replace(/ \)$/, ')')
        if (value === undefined) throw new LockedError(`${what}; ${reader.missing(snapshot)}`)
        note(`${what}; showing the snapshot it wrote at ${snapshot.writtenAt} (${age} ago)`)
        return value
      }
      // The fingerprint is read after the snapshot: a match means nobody has opened the store since it was
      // written (a holder that has not opened it yet has changed nothing either).
      if (snapshot?.final && snapshot.fingerprint !== null && snapshot.fingerprint === storeFingerprint(dir)) {
        const value = reader.fromSnapshot(snapshot)
        if (value !== undefined) return value
      }
      if (!held) {
        try {
          const database = await openDatabase(config.database, { mustExist: true })
          // Loaded here, not at the top: answering from a snapshot needs no query builder.
          const { Store } = await import('../store/store.js')
          const store = new Store(database)
          const keeper = keepSnapshot(store, database, config.inventory.query)
          try {
            return await reader.fromStore(store)
          } finally {
            await keeper.close()
          }
        } catch (error) {
          if (!(error instanceof LockedError)) throw error
          waited = error
        }
      }
      if (Date.now() > deadline)
        throw held ? new LockedError(`the embedded store ${dir} is in use by pid ${holder.pid} on ${holder.host} (fleet ${holder.command ?? ''}), which keeps no snapshot for other shells yet; try again when it finishes`) : (waited ?? new LockedError(`the embedded store ${dir} is busy`))
    }
  }
  const store = (s: Store) => storeSource(s, config)
  return fn({
    hosts: () => read({ fromSnapshot: (s) => s.hosts.map(hostRowOf), fromStore: (s) => store(s).hosts(), missing: () => '' }, []),
    holds: () => read({ fromSnapshot: (s) => s.holds?.map(holdRowOf), fromStore: (s) => store(s).holds(), missing: () => 'its snapshot has no holds; try again when it finishes' }, []),
    inventory: () =>
      read(
        {
          fromSnapshot: (s) => {
            const rows = s.inventory?.query === config.inventory.query ? s.inventory?.rows : undefined
            // A result the query's own checks would refuse is left to the store path, which explains it.
            if (!config.inventory.query || !rows || (rows[0] && !('name' in rows[0] && 'address' in rows[0]))) return undefined
            return { ...validateRows(rows, config), source: 'query' as const }
          },
          fromStore: (s) => store(s).inventory(),
          missing: () => 'its snapshot has no result for this inventory.query; try again when it finishes',
        },
        { hosts: [], rejected: [], source: 'query' },
      ),
    history: (limit) => read({ fromSnapshot: (s) => s.history.slice(0, limit), fromStore: (s) => store(s).history(limit), missing: () => '' }, []),
    status: (id) =>
      read(
        {
          fromSnapshot: (s) => (!id || s.latest?.id === id ? (s.latest ? asOfNow(s.latest, s.writtenAt) : s.latest) : undefined),
          fromStore: (s) => store(s).status(id),
          missing: (s) => `until it finishes only the latest rollout${s.latest ? ` (${s.latest.id})` : ''} can be shown`,
        },
        null,
      ),
    events: (id) =>
      read(
        {
          // A live snapshot keeps no events (they can be many): the store is read once it is free.
          fromSnapshot: () => undefined,
          fromStore: (s) => store(s).events(id),
          missing: () => 'the audit trail is read from the store itself, which it holds; `fleet rollout status` shows the state now, and `fleet rollout events` works once it finishes (or on Postgres at any time)',
        },
        null,
      ),
    trail: (id) =>
      read(
        {
          fromSnapshot: (s) => (s.trail?.rolloutId === id ? s.trail : undefined),
          fromStore: (s) => store(s).trail(id),
          missing: () => 'until it finishes only the latest rollout can be shown',
        },
        null,
      ),
  })
}

export function storeSource(store: Store, config: FleetConfig): ReadSource {
  return {
    hosts: () => store.listHosts(),
    holds: () => store.listHolds(),
    inventory: () => loadInventory(store, config),
    history: (limit) => readHistory(store, limit),
    status: (id) => readStatus(store, id),
    events: async (id) => {
      const rollout = await store.getRollout(id)
      return rollout ? { rollout, events: await store.listEvents(rollout.id) } : null
    },
    trail: (id) => readTrail(store, id),
  }
}
