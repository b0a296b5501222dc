import type { Kysely, Selectable } from 'kysely'

import { fenced, type Fence } from './lease.js'

import type { RolloutState } from '../types.js'
import { ROLLOUT_HOST, type RolloutHostRecord } from './rollout-hosts.js'
import { subset, toColumns, toDate, toRecord } from './rows.js'
import type { Schema } from './schema.js'

export interface RolloutRecord {
  readonly id: string
  readonly state: RolloutState
  readonly ref: string
  readonly sha: string
  readonly stages: readonly number[]
  readonly seed: string
  readonly currentStage: number
  readonly settings: Record<string, unknown>
  readonly owner: string
  readonly startedAt: Date
  readonly finishedAt: Date | null
  readonly heartbeatAt: Date
  readonly exitCode: number | null
  readonly error: string | null
  /** The lease epoch of its current owner: the fence every write of it names. */
  readonly epoch: number
}

export type RolloutPatch = Partial<Pick<RolloutRecord, 'state' | 'currentStage' | 'finishedAt' | 'heartbeatAt' | 'exitCode' | 'error' | 'settings'>>

const ROLLOUT = {
  id: 'id',
  state: 'state',
  ref: 'ref',
  sha: 'sha',
  stages: 'stages',
  seed: 'seed',
  currentStage: 'current_stage',
  settings: 'settings',
  owner: 'owner',
  startedAt: 'started_at',
  finishedAt: 'finished_at',
  heartbeatAt: 'heartbeat_at',
  exitCode: 'exit_code',
  error: 'error',
  epoch: 'epoch',
} as const satisfies Record<keyof RolloutRecord, keyof Schema['fleet_rollouts']>

const ROLLOUT_PATCH = subset(ROLLOUT, 'state', 'currentStage', 'finishedAt', 'heartbeatAt', 'exitCode', 'error')

/** stages and settings are stored as JSON text. */
const toRollout = (row: Selectable<Schema['fleet_rollouts']>): RolloutRecord => ({
  ...toRecord(ROLLOUT, row),
  state: row.state as RolloutState,
  stages: JSON.parse(row.stages) as number[],
  settings: JSON.parse(row.settings) as Record<string, unknown>,
  startedAt: new Date(row.started_at),
  finishedAt: toDate(row.finished_at),
  heartbeatAt: new Date(row.heartbeat_at),
  epoch: Number(row.epoch),
})

/** The rollouts (fleet_rollouts), created together with their hosts. */
export class Rollouts {
  constructor(private readonly db: Kysely<Schema>) {}

  /** A new rollout and its hosts, owned by the fence's holder at its epoch (the lease was taken for its id). */
  async createRollout(fence: Fence, rollout: Omit<RolloutRecord, 'epoch'>, hosts: readonly RolloutHostRecord[]): Promise<void> {
    await fenced(this.db, fence, async (tx) => {
      await tx
        .insertInto('fleet_rollouts')
        .values(toColumns(ROLLOUT, { ...rollout, id: fence.leaseId, epoch: fence.epoch, stages: JSON.stringify(rollout.stages), settings: JSON.stringify(rollout.settings) }))
        .execute()
      for (let i = 0; i < hosts.length; i += 500) {
        await tx
          .insertInto('fleet_rollout_hosts')
          .values(hosts.slice(i, i + 500).map((h) => ({ rollout_id: rollout.id, ...toColumns(ROLLOUT_HOST, h) })))
          .execute()
      }
    })
  }

  async updateRollout(fence: Fence, patch: RolloutPatch): Promise<void> {
    const { settings, ...rest } = patch
    const columns = { ...toColumns(ROLLOUT_PATCH, rest), ...(settings ? { settings: JSON.stringify(settings) } : {}) }
    await fenced(this.db, fence, (tx) => tx.updateTable('fleet_rollouts').set(columns).where('id', '=', fence.leaseId).execute())
  }

  /** The given rollout, or the most recently started one. */
  async getRollout(id?: string): Promise<RolloutRecord | null> {
    let query = this.db.selectFrom('fleet_rollouts').selectAll()
    query = id ? query.where('id', '=', id) : query.orderBy('started_at', 'desc').orderBy('id', 'desc').limit(1)
    const row = await query.executeTakeFirst()
    return row ? toRollout(row) : null
  }

  async listRollouts(limit: number): Promise<RolloutRecord[]> {
    const rows = await this.db
      .selectFrom('fleet_rollouts')
      .selectAll()
      .orderBy('started_at', 'desc')
      .orderBy('id', 'desc')
      .limit(limit)
      .execute()
    return rows.map(toRollout)
  }
}
