import { sql, type Kysely, type Transaction } from 'kysely'

import { LockedError } from '../errors.js'
import { toDate } from './rows.js'
import type { Schema } from './schema.js'

/**
 * The fencing token of one acquisition of the lease. Every acquisition (a
 * start, a takeover, a pause between ticks, a `fleet rollback`) increments the
 * epoch, and every write a holder makes names its epoch: once someone else
 * acquired the lease, the late holder's writes find another epoch and fail.
 */
export interface Fence {
  /** The rollout id (or a `fleet rollback` lease id) the lease was taken for. */
  readonly leaseId: string
  readonly epoch: number
  /** This store's identity: hosts compare epochs of one store only. */
  readonly storeId: string
}

/** The lease row, read with the database's clock (`now`): staleness is never judged by a machine's own clock. */
export interface LeaseState {
  readonly rolloutId: string | null
  readonly holder: string | null
  readonly since: Date | null
  readonly heartbeatAt: Date | null
  readonly epoch: number
  readonly storeId: string
  /** The database's clock when the row was read. */
  readonly now: Date
}

export type LeaseResult =
  | { readonly acquired: true; readonly fence: Fence }
  | { readonly acquired: false; readonly held: LeaseState }

/** A write was refused because another process acquired the lease since: this one no longer drives anything. */
export class LostLeaseError extends LockedError {
  constructor(
    readonly fence: Fence,
    readonly holder: string | null,
    readonly epoch: number,
    /** Nobody holds the lease any more: who last owned the rollout (fleet_rollouts.owner), the process that took it over. */
    readonly owner: string | null = null,
  ) {
    const to = holder ?? `${owner ?? 'another fleet process'}, which has released it since`
    super(`lost ${fence.leaseId} to ${to} (it took the lease over: epoch ${epoch}, ours was ${fence.epoch}); nothing more was recorded by this process`)
  }
}

/** Why `fence` writes no more: who holds the lease now or, once it was released, who last owned the rollout. */
async function lostLease(db: Kysely<Schema>, fence: Fence, holder: string | null, epoch: number): Promise<LostLeaseError> {
  const owned = holder === null ? await db.selectFrom('fleet_rollouts').select('owner').where('id', '=', fence.leaseId).executeTakeFirst() : undefined
  return new LostLeaseError(fence, holder, epoch, owned?.owner ?? null)
}

/** A lease not renewed for this long (on the database's clock) belongs to a stopped or frozen orchestrator. */
export const LEASE_TTL_MS = 30_000

/**
 * Runs `write` in a transaction that first checks, under a share lock on the
 * lease row, that the lease is still at the writer's epoch. The share lock
 * makes a concurrent takeover wait for this write (or this write wait for the
 * takeover and then fail): a late holder can never write after a takeover.
 */
export async function fenced<T>(db: Kysely<Schema>, fence: Fence, write: (tx: Transaction<Schema>) => Promise<T>): Promise<T> {
  return db.transaction().execute(async (tx) => {
    const row = await tx.selectFrom('fleet_lock').select(['epoch', 'holder']).where('id', '=', 1).forShare().executeTakeFirstOrThrow()
    if (row.epoch !== fence.epoch) throw await lostLease(tx, fence, row.holder, row.epoch)
    return write(tx)
  })
}

/** The one-rollout-at-a-time lease: the single row of fleet_lock. Every timestamp is the database's `now()`. */
export class Lease {
  constructor(private readonly db: Kysely<Schema>) {}

  /**
   * Takes the lease if nobody holds it. A single conditional UPDATE is atomic
   * on Postgres, so two machines racing for it cannot both win. A rollout
   * that exists becomes owned by `holder` at the new epoch in the same transaction.
   */
  async acquireLease(leaseId: string, holder: string): Promise<LeaseResult> {
    const taken = await this.db.transaction().execute(async (tx) => {
      const row = await tx
        .updateTable('fleet_lock')
        .set({ rollout_id: leaseId, holder, acquired_at: sql`now()`, heartbeat_at: sql`now()`, epoch: sql`epoch + 1` })
        .where('id', '=', 1)
        .where('holder', 'is', null)
        .returning(['epoch', 'store_id'])
        .executeTakeFirst()
      if (row) await own(tx, leaseId, holder, row.epoch)
      return row
    })
    if (taken) return { acquired: true, fence: { leaseId, epoch: taken.epoch, storeId: taken.store_id ?? '' } }
    return { acquired: false, held: await this.leaseState() }
  }

  /**
   * Hands a held lease to a new holder at a new epoch, only if it is still
   * `seen` (same epoch) and its holder is stale by the database's clock, or
   * `holderDead` (its process is known gone): a holder that renewed since
   * keeps it. The rollout's owner becomes `holder` in the same transaction.
   */
  async takeOverLease(seen: { leaseId: string; epoch: number }, holder: string, holderDead: boolean): Promise<Fence | null> {
    return this.db.transaction().execute(async (tx) => {
      // A frozen holder may sit inside a write holding the row's share lock; the server ends its
      // session after idle_in_transaction_session_timeout (10 s). Wait a little longer than that, not forever.
      await sql`SET LOCAL lock_timeout = '15s'`.execute(tx)
      const row = await tx
        .updateTable('fleet_lock')
        .set({ holder, acquired_at: sql`now()`, heartbeat_at: sql`now()`, epoch: sql`epoch + 1` })
        .where('id', '=', 1)
        .where('rollout_id', '=', seen.leaseId)
        .where('epoch', '=', seen.epoch)
        .where((eb) => eb.or([eb.lit(holderDead), eb('heartbeat_at', '<', sql<Date>`now() - make_interval(secs => ${LEASE_TTL_MS / 1000})`)]))
        .returning(['epoch', 'store_id'])
        .executeTakeFirst()
      if (!row) return null
      await own(tx, seen.leaseId, holder, row.epoch)
      return { leaseId: seen.leaseId, epoch: row.epoch, storeId: row.store_id ?? '' }
    })
  }

  /** Renews the lease and the rollout's heartbeat; false once another process holds it. Returns the database's clock. */
  async heartbeat(fence: Fence): Promise<{ held: boolean; now: Date }> {
    return this.db.transaction().execute(async (tx) => {
      const row = await tx
        .updateTable('fleet_lock')
        .set({ heartbeat_at: sql`now()` })
        .where('id', '=', 1)
        .where('epoch', '=', fence.epoch)
        .where('rollout_id', '=', fence.leaseId)
        .returning(sql<Date>`now()`.as('now'))
        .executeTakeFirst()
      if (!row) return { held: false, now: (await sql<{ now: Date }>`SELECT now() AS now`.execute(tx)).rows[0]!.now }
      await tx.updateTable('fleet_rollouts').set({ heartbeat_at: sql`now()` }).where('id', '=', fence.leaseId).where('epoch', '=', fence.epoch).execute()
      return { held: true, now: new Date(row.now) }
    })
  }

  /** Lets go of the lease if it is still ours (a late holder releases nothing). */
  async releaseLease(fence: Pick<Fence, 'leaseId' | 'epoch'>): Promise<boolean> {
    const result = await this.db
      .updateTable('fleet_lock')
      .set({ rollout_id: null, holder: null, acquired_at: null, heartbeat_at: null })
      .where('id', '=', 1)
      .where('epoch', '=', fence.epoch)
      .where('rollout_id', '=', fence.leaseId)
      .executeTakeFirst()
    return result.numUpdatedRows > 0n
  }

  /** What a holder that found its lease at another epoch is told (see LostLeaseError). */
  async lost(fence: Fence): Promise<LostLeaseError> {
    const state = await this.leaseState()
    return lostLease(this.db, fence, state.holder, state.epoch)
  }

  async leaseState(): Promise<LeaseState> {
    const row = await this.db
      .selectFrom('fleet_lock')
      .select(['rollout_id', 'holder', 'acquired_at', 'heartbeat_at', 'epoch', 'store_id', sql<Date>`now()`.as('now')])
      .where('id', '=', 1)
      .executeTakeFirstOrThrow()
    return {
      rolloutId: row.rollout_id,
      holder: row.holder,
      since: toDate(row.acquired_at),
      heartbeatAt: toDate(row.heartbeat_at),
      epoch: row.epoch,
      storeId: row.store_id ?? '',
      now: new Date(row.now),
    }
  }

  /** The database's clock. */
  async now(): Promise<Date> {
    const result = await sql<{ now: Date }>`SELECT now() AS now`.execute(this.db)
    return new Date(result.rows[0]!.now)
  }
}

/** Whoever holds the lease of a rollout is its recorded owner, with a fresh heartbeat, at the lease's epoch. */
async function own(tx: Transaction<Schema>, leaseId: string, holder: string, epoch: number): Promise<void> {
  await tx.updateTable('fleet_rollouts').set({ owner: holder, epoch, heartbeat_at: sql`now()` }).where('id', '=', leaseId).execute()
}
