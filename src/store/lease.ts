import type { Kysely, Transaction } from 'kysely'

import { toDate, toRecord } from './rows.js'
import type { Schema } from './schema.js'

export type LeaseResult =
  | { readonly acquired: true }
  | { readonly acquired: false; readonly rolloutId: string | null; readonly holder: string; readonly since: Date; readonly heartbeatAt: Date }

export interface LeaseState {
  rolloutId: string | null
  holder: string | null
  since: Date | null
  heartbeatAt: Date | null
}

const LEASE = { rolloutId: 'rollout_id', holder: 'holder', since: 'acquired_at', heartbeatAt: 'heartbeat_at' } as const satisfies Record<keyof LeaseState, keyof Schema['fleet_lock']>

/** The one-rollout-at-a-time lease: the single row of fleet_lock. */
export class Lease {
  constructor(private readonly db: Kysely<Schema>) {}

  /**
   * Takes the lease if nobody holds it. A single conditional UPDATE is atomic
   * on Postgres, so two machines racing for it cannot both win.
   */
  async acquireLease(rolloutId: string, holder: string, now = new Date()): Promise<LeaseResult> {
    const result = await this.db
      .updateTable('fleet_lock')
      .set({ rollout_id: rolloutId, holder, acquired_at: now, heartbeat_at: now })
      .where('id', '=', 1)
      .where('holder', 'is', null)
      .executeTakeFirst()
    if (result.numUpdatedRows > 0n) return { acquired: true }
    const held = await this.leaseState()
    return { acquired: false, ...held, holder: held.holder ?? 'unknown', since: held.since ?? now, heartbeatAt: held.heartbeatAt ?? now }
  }

  /** Hands a held (possibly stale) lease to a new holder, e.g. for resume; only if it is still `rolloutId`'s. */
  async takeOverLease(rolloutId: string, holder: string, now = new Date()): Promise<boolean> {
    const result = await this.db
      .updateTable('fleet_lock')
      .set({ holder, heartbeat_at: now })
      .where('id', '=', 1)
      .where('rollout_id', '=', rolloutId)
      .executeTakeFirst()
    return result.numUpdatedRows > 0n
  }

  /** The lease and the rollout's own heartbeat move together. */
  async heartbeat(rolloutId: string, now = new Date()): Promise<void> {
    await this.db.transaction().execute(async (tx: Transaction<Schema>) => {
      await tx.updateTable('fleet_lock').set({ heartbeat_at: now }).where('id', '=', 1).where('rollout_id', '=', rolloutId).execute()
      await tx.updateTable('fleet_rollouts').set({ heartbeat_at: now }).where('id', '=', rolloutId).execute()
    })
  }

  async releaseLease(rolloutId: string): Promise<void> {
    await this.db
      .updateTable('fleet_lock')
      .set({ rollout_id: null, holder: null, acquired_at: null, heartbeat_at: null })
      .where('id', '=', 1)
      .where('rollout_id', '=', rolloutId)
      .execute()
  }

  async leaseState(): Promise<LeaseState> {
    const row = await this.db.selectFrom('fleet_lock').selectAll().where('id', '=', 1).executeTakeFirstOrThrow()
    return { ...toRecord(LEASE, row), since: toDate(row.acquired_at), heartbeatAt: toDate(row.heartbeat_at) }
  }
}
