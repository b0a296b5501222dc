import { sql, type Kysely } from 'kysely'

import { fenced, type Fence } from './lease.js'
import { toDate } from './rows.js'
import type { Schema } from './schema.js'

export type RequestKind = 'pause' | 'promote'

/** A person's request to the rollout in progress, from any shell or machine. */
export interface RolloutRequestRecord {
  readonly id: string
  readonly rolloutId: string
  readonly kind: RequestKind
  readonly actor: string
  readonly reason: string | null
  readonly skipBake: boolean
  /** On the database's clock. */
  readonly requestedAt: Date
  /** When and by whom it was consumed (null while pending), and what came of it. */
  readonly settledAt: Date | null
  readonly settledBy: string | null
  readonly outcome: string | null
}

export type NewRequest = Pick<RolloutRequestRecord, 'id' | 'rolloutId' | 'kind' | 'actor' | 'reason' | 'skipBake'>

const toRequest = (row: Record<string, unknown>): RolloutRequestRecord => ({
  id: String(row.id),
  rolloutId: String(row.rollout_id),
  kind: row.kind as RequestKind,
  actor: String(row.actor),
  reason: (row.reason as string | null) ?? null,
  skipBake: row.skip_bake === true,
  requestedAt: new Date(row.requested_at as string),
  settledAt: toDate(row.settled_at as Date | null),
  settledBy: (row.settled_by as string | null) ?? null,
  outcome: (row.outcome as string | null) ?? null,
})

/**
 * Requests (fleet_requests): written by whoever asks, consumed exactly once by
 * id, by the process that drives the rollout or by the next command that takes
 * it over. A request nobody could apply keeps its row, with why, for `status`
 * and the audit trail: nothing is dropped, nothing is matched by time.
 */
export class Requests {
  constructor(private readonly db: Kysely<Schema>) {}

  /**
   * Records a request; an id seen before (a request file imported twice) is recorded once. `settled`:
   * recorded already answered (a file whose addressee ended before taking it in).
   */
  async addRequest(request: NewRequest, settled?: { readonly by: string; readonly outcome: string }): Promise<void> {
    await this.db
      .insertInto('fleet_requests')
      .values({
        id: request.id,
        rollout_id: request.rolloutId,
        kind: request.kind,
        actor: request.actor,
        reason: request.reason,
        skip_bake: request.skipBake,
        ...(settled ? { settled_at: sql`now()`, settled_by: settled.by, outcome: settled.outcome } : {}),
      })
      .onConflict((oc) => oc.column('id').doNothing())
      .execute()
  }

  async getRequest(id: string): Promise<RolloutRequestRecord | null> {
    const row = await this.db.selectFrom('fleet_requests').selectAll().where('id', '=', id).executeTakeFirst()
    return row ? toRequest(row) : null
  }

  /** The rollout's requests nobody consumed yet, oldest first. */
  async pendingRequests(rolloutId: string): Promise<RolloutRequestRecord[]> {
    const rows = await this.db
      .selectFrom('fleet_requests')
      .selectAll()
      .where('rollout_id', '=', rolloutId)
      .where('settled_at', 'is', null)
      .orderBy('requested_at')
      .orderBy('id')
      .execute()
    return rows.map((r) => toRequest(r))
  }

  async listRequests(rolloutId: string): Promise<RolloutRequestRecord[]> {
    const rows = await this.db.selectFrom('fleet_requests').selectAll().where('rollout_id', '=', rolloutId).orderBy('requested_at').orderBy('id').execute()
    return rows.map((r) => toRequest(r))
  }

  /** Consumes a request once: false when another process consumed it first (or this one lost the lease). */
  async settleRequest(fence: Fence, id: string, settledBy: string, outcome: string): Promise<boolean> {
    return fenced(this.db, fence, async (tx) => {
      const result = await tx
        .updateTable('fleet_requests')
        .set({ settled_at: sql`now()`, settled_by: settledBy, outcome })
        .where('id', '=', id)
        .where('settled_at', 'is', null)
        .executeTakeFirst()
      return result.numUpdatedRows > 0n
    })
  }
}
