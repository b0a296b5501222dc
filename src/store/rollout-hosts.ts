import type { Kysely } from 'kysely'

import { fenced, type Fence } from './lease.js'

import type { HostStatus } from '../types.js'
import { columnsOf, subset, toColumns, toDate, toRecord } from './rows.js'
import type { Schema } from './schema.js'

/** What `rollout status` shows of a host: read with a narrow query, fast at 10,000 hosts. */
export interface RolloutHostState {
  readonly name: string
  readonly address: string
  readonly port: number
  readonly stage: number
  readonly status: HostStatus
  readonly step: string | null
  readonly previousVersion: string | null
  readonly newVersion: string | null
  readonly error: string | null
}

export interface RolloutHostRecord extends RolloutHostState {
  readonly port: number
  readonly user: string
  readonly appDir: string
  readonly position: number
  readonly startedAt: Date | null
  readonly finishedAt: Date | null
}

export type RolloutHostPatch = Partial<
  Pick<RolloutHostRecord, 'status' | 'step' | 'previousVersion' | 'newVersion' | 'error' | 'startedAt' | 'finishedAt'>
>

export const ROLLOUT_HOST = {
  name: 'name',
  address: 'address',
  port: 'port',
  user: 'ssh_user',
  appDir: 'app_dir',
  position: 'position',
  stage: 'stage',
  status: 'status',
  step: 'step',
  previousVersion: 'previous_version',
  newVersion: 'new_version',
  error: 'error',
  startedAt: 'started_at',
  finishedAt: 'finished_at',
} as const satisfies Record<keyof RolloutHostRecord, keyof Schema['fleet_rollout_hosts']>

const ROLLOUT_HOST_STATE = subset(ROLLOUT_HOST, 'name', 'address', 'port', 'stage', 'status', 'step', 'previousVersion', 'newVersion', 'error')
const ROLLOUT_HOST_PATCH = subset(ROLLOUT_HOST, 'status', 'step', 'previousVersion', 'newVersion', 'error', 'startedAt', 'finishedAt')

/** Writes part of a rollout's host row, inside the writer's fenced transaction. */
export async function patchRolloutHost(tx: Kysely<Schema>, rolloutId: string, name: string, patch: RolloutHostPatch): Promise<void> {
  await tx.updateTable('fleet_rollout_hosts').set(toColumns(ROLLOUT_HOST_PATCH, patch)).where('rollout_id', '=', rolloutId).where('name', '=', name).execute()
}

/** Each rollout's hosts and what happened to them (fleet_rollout_hosts); they are written with their rollout (rollouts.ts). */
export class RolloutHosts {
  constructor(private readonly db: Kysely<Schema>) {}

  async updateRolloutHost(fence: Fence, name: string, patch: RolloutHostPatch): Promise<void> {
    await fenced(this.db, fence, (tx) => patchRolloutHost(tx, fence.leaseId, name, patch))
  }

  /**
   * A `fleet rollback` of a host of a stopped (interrupted) rollout, under the rollback's own fence:
   * the row of that rollout says where the host went, unless the rollout had not touched it yet
   * (`pending`) or never will (`held`: final, the rollout left it alone).
   */
  async recordHandRollback(fence: Fence, rolloutId: string, name: string, patch: RolloutHostPatch): Promise<boolean> {
    return fenced(this.db, fence, async (tx) => {
      const result = await tx
        .updateTable('fleet_rollout_hosts')
        .set(toColumns(ROLLOUT_HOST_PATCH, patch))
        .where('rollout_id', '=', rolloutId)
        .where('name', '=', name)
        .where('status', 'not in', ['pending', 'held'])
        .executeTakeFirst()
      return result.numUpdatedRows > 0n
    })
  }

  /**
   * The write that starts work on a host: only if the host is still in the
   * state the caller read (`expected`), so it is never started twice. Records
   * the claiming epoch. False when the row had moved on.
   */
  async claimRolloutHost(fence: Fence, name: string, expected: HostStatus, patch: RolloutHostPatch): Promise<boolean> {
    return fenced(this.db, fence, async (tx) => {
      const result = await tx
        .updateTable('fleet_rollout_hosts')
        .set({ ...toColumns(ROLLOUT_HOST_PATCH, patch), epoch: fence.epoch })
        .where('rollout_id', '=', fence.leaseId)
        .where('name', '=', name)
        .where('status', '=', expected)
        .executeTakeFirst()
      return result.numUpdatedRows > 0n
    })
  }

  async listRolloutHosts(id: string): Promise<RolloutHostRecord[]> {
    const rows = await this.db.selectFrom('fleet_rollout_hosts').selectAll().where('rollout_id', '=', id).orderBy('position').execute()
    return rows.map((r) => ({ ...toRecord(ROLLOUT_HOST, r), status: r.status as HostStatus, startedAt: toDate(r.started_at), finishedAt: toDate(r.finished_at) }))
  }

  async listRolloutHostStates(id: string): Promise<RolloutHostState[]> {
    const rows = await this.db
      .selectFrom('fleet_rollout_hosts')
      .select(columnsOf(ROLLOUT_HOST_STATE))
      .where('rollout_id', '=', id)
      .orderBy('position')
      .execute()
    return rows.map((r) => ({ ...toRecord(ROLLOUT_HOST_STATE, r), status: r.status as HostStatus }))
  }

  /** Per-status host counts of each rollout, in one query (for history). */
  async countRolloutHosts(ids: readonly string[]): Promise<Map<string, Record<string, number>>> {
    const counts = new Map<string, Record<string, number>>()
    if (ids.length === 0) return counts
    const rows = await this.db
      .selectFrom('fleet_rollout_hosts')
      .select(['rollout_id', 'status', (eb) => eb.fn.countAll<string>().as('n')])
      .where('rollout_id', 'in', ids)
      .groupBy(['rollout_id', 'status'])
      .execute()
    for (const row of rows) {
      const entry = counts.get(row.rollout_id) ?? {}
      entry[row.status] = Number(row.n)
      counts.set(row.rollout_id, entry)
    }
    return counts
  }

  /** The previous version recorded for a host by the latest rollout that changed it (or failed to restore it). */
  async latestPreviousVersion(name: string): Promise<string | null> {
    const row = await this.db
      .selectFrom('fleet_rollout_hosts')
      .innerJoin('fleet_rollouts', 'fleet_rollouts.id', 'fleet_rollout_hosts.rollout_id')
      .select('fleet_rollout_hosts.previous_version')
      .where('fleet_rollout_hosts.name', '=', name)
      .where('fleet_rollout_hosts.status', 'in', ['success', 'rollback_failed'])
      .where('fleet_rollout_hosts.previous_version', 'is not', null)
      .orderBy('fleet_rollouts.started_at', 'desc')
      .limit(1)
      .executeTakeFirst()
    return row?.previous_version ?? null
  }

  /** The latest rollout that included the host (any outcome), or null. */
  async latestRolloutOf(name: string): Promise<string | null> {
    const row = await this.db
      .selectFrom('fleet_rollout_hosts')
      .innerJoin('fleet_rollouts', 'fleet_rollouts.id', 'fleet_rollout_hosts.rollout_id')
      .select('fleet_rollouts.id')
      .where('fleet_rollout_hosts.name', '=', name)
      .orderBy('fleet_rollouts.started_at', 'desc')
      .limit(1)
      .executeTakeFirst()
    return row?.id ?? null
  }

  /**
   * What fleet last recorded each named host runs (for drift): the version its latest rollout left it
   * at (success, skipped, rolled back: the commit the host ended on), or a later `fleet rollback`'s.
   * Hosts fleet never moved are absent. Two queries whatever the number of hosts.
   */
  async recordedVersions(names: readonly string[]): Promise<Map<string, string>> {
    const found = new Map<string, { version: string; at: number }>()
    for (let i = 0; i < names.length; i += 1000) {
      const chunk = names.slice(i, i + 1000)
      const rows = await this.db
        .selectFrom('fleet_rollout_hosts')
        .innerJoin('fleet_rollouts', 'fleet_rollouts.id', 'fleet_rollout_hosts.rollout_id')
        .distinctOn('fleet_rollout_hosts.name')
        .select(['fleet_rollout_hosts.name', 'fleet_rollout_hosts.new_version', 'fleet_rollout_hosts.finished_at', 'fleet_rollouts.started_at'])
        .where('fleet_rollout_hosts.name', 'in', chunk)
        .where('fleet_rollout_hosts.new_version', 'is not', null)
        .orderBy('fleet_rollout_hosts.name')
        .orderBy('fleet_rollouts.started_at', 'desc')
        .execute()
      for (const r of rows) found.set(r.name, { version: r.new_version!, at: new Date(r.finished_at ?? r.started_at).getTime() })
      // A manual `fleet rollback` writes no rollout host row; its outcome event says where the host ended.
      const events = await this.db
        .selectFrom('fleet_events')
        .distinctOn('host')
        .select(['host', 'at', 'data'])
        .where('type', '=', 'host-rollback-finished')
        .where('host', 'in', chunk)
        .orderBy('host')
        .orderBy('id', 'desc')
        .execute()
      for (const e of events) {
        const version = (JSON.parse(e.data) as { newVersion?: unknown }).newVersion
        const at = new Date(e.at).getTime()
        if (e.host && typeof version === 'string' && at >= (found.get(e.host)?.at ?? -Infinity)) found.set(e.host, { version, at })
      }
    }
    return new Map([...found].map(([name, r]) => [name, r.version]))
  }
}
