import { sql, type Kysely, type Transaction } from 'kysely'

import type { HostStatus, RolloutState } from '../types.js'
import type { Database, StoreKind } from './database.js'
import type { Schema } from './schema.js'

export interface HostRow {
  readonly name: string
  readonly address: string
  readonly port: number | null
  readonly user: string | null
  readonly appDir: string | null
  readonly active: boolean
  readonly currentVersion: string | null
  readonly previousVersion: string | null
  readonly status: string | null
  readonly updatedAt: Date | null
}

export interface NewHost {
  readonly name: string
  readonly address: string
  readonly port?: number | null
  readonly user?: string | null
  readonly appDir?: string | null
  readonly active?: boolean
}

/** A change to one hosts-table row: undefined keeps a field, null sends it back to the config default. */
export interface HostPatch {
  readonly name: string
  readonly address?: string
  readonly port?: number | null
  readonly user?: string | null
  readonly appDir?: string | null
  readonly active?: boolean
}

const patchColumns = (p: Omit<HostPatch, 'name'>) => ({
  ...(p.address !== undefined ? { address: p.address } : {}),
  ...(p.port !== undefined ? { port: p.port } : {}),
  ...(p.user !== undefined ? { ssh_user: p.user } : {}),
  ...(p.appDir !== undefined ? { app_dir: p.appDir } : {}),
  ...(p.active !== undefined ? { active: p.active } : {}),
})

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
}

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

export type LeaseResult =
  | { readonly acquired: true }
  | { readonly acquired: false; readonly rolloutId: string | null; readonly holder: string; readonly since: Date; readonly heartbeatAt: Date }

/** A patch's absent fields are left alone; null is a value and is written. */
const definedOnly = <T extends Record<string, unknown>>(values: T): { [K in keyof T]?: Exclude<T[K], undefined> } =>
  Object.fromEntries(Object.entries(values).filter(([, v]) => v !== undefined)) as { [K in keyof T]?: Exclude<T[K], undefined> }

const toDate = (value: Date | string | null): Date | null => (value === null ? null : new Date(value))

/** fleet's own tables: the built-in inventory, rollouts, per-host results, events, pinned host keys, the lock. */
export class Store {
  readonly db: Kysely<Schema>
  readonly kind: StoreKind

  constructor(database: Database) {
    this.db = database.db
    this.kind = database.kind
  }

  // ---- built-in inventory -------------------------------------------------

  async listHosts(options: { activeOnly?: boolean } = {}): Promise<HostRow[]> {
    let query = this.db.selectFrom('fleet_hosts').selectAll().orderBy('name')
    if (options.activeOnly) query = query.where('active', '=', true)
    const rows = await query.execute()
    return rows.map((r) => ({
      name: r.name,
      address: r.address,
      port: r.port,
      user: r.ssh_user,
      appDir: r.app_dir,
      active: r.active,
      currentVersion: r.current_version,
      previousVersion: r.previous_version,
      status: r.status,
      updatedAt: toDate(r.updated_at),
    }))
  }

  /** Inserts hosts (all or nothing); an existing name is updated in place. */
  async upsertHosts(hosts: readonly NewHost[]): Promise<void> {
    if (hosts.length === 0) return
    await this.db.transaction().execute(async (tx) => {
      for (let i = 0; i < hosts.length; i += 500) {
        const values = hosts.slice(i, i + 500).map((h) => ({
          name: h.name,
          address: h.address,
          port: h.port ?? null,
          ssh_user: h.user ?? null,
          app_dir: h.appDir ?? null,
          active: h.active ?? true,
          current_version: null,
          previous_version: null,
          status: null,
          updated_at: null,
        }))
        await tx
          .insertInto('fleet_hosts')
          .values(values)
          .onConflict((oc) =>
            oc.column('name').doUpdateSet((eb) => ({
              address: eb.ref('excluded.address'),
              port: eb.ref('excluded.port'),
              ssh_user: eb.ref('excluded.ssh_user'),
              app_dir: eb.ref('excluded.app_dir'),
              active: eb.ref('excluded.active'),
            })),
          )
          .execute()
      }
    })
  }

  /** Inserts one host unless its name exists; false (and nothing changed) when it does. */
  async addHost(host: NewHost): Promise<boolean> {
    const result = await this.db
      .insertInto('fleet_hosts')
      .values({
        name: host.name,
        address: host.address,
        port: host.port ?? null,
        ssh_user: host.user ?? null,
        app_dir: host.appDir ?? null,
        active: host.active ?? true,
      })
      .onConflict((oc) => oc.column('name').doNothing())
      .executeTakeFirst()
    return (result.numInsertedOrUpdatedRows ?? 0n) > 0n
  }

  /** Changes only the fields the patch carries (null: back to the config's default); false if no such host. */
  async updateHost(name: string, patch: Omit<HostPatch, 'name'>): Promise<boolean> {
    const set = patchColumns(patch)
    if (Object.keys(set).length === 0) return (await this.db.selectFrom('fleet_hosts').select('name').where('name', '=', name).executeTakeFirst()) !== undefined
    const result = await this.db.updateTable('fleet_hosts').set(set).where('name', '=', name).executeTakeFirst()
    return result.numUpdatedRows > 0n
  }

  /**
   * An import, in one transaction: a new name is inserted (what its patch leaves out follows the
   * config), an existing host changes only the fields its patch carries. With deactivateMissing,
   * the active hosts the import does not name are disabled.
   */
  async importHosts(
    patches: readonly HostPatch[],
    options: { readonly deactivateMissing?: boolean } = {},
  ): Promise<{ added: string[]; updated: string[]; deactivated: string[] }> {
    return this.db.transaction().execute(async (tx) => {
      // FOR UPDATE: a concurrent `hosts update` waits instead of being overwritten by the merge.
      const rows = await tx.selectFrom('fleet_hosts').select(['name', 'address', 'port', 'ssh_user', 'app_dir', 'active']).forUpdate().execute()
      const existing = new Map(rows.map((r) => [r.name, r]))
      const named = new Set(patches.map((p) => p.name))
      const merged = patches.map((p) => {
        const old = existing.get(p.name)
        if (!old && p.address === undefined) throw new Error(`importHosts: new host ${p.name} needs an address`)
        return { ...(old ?? { name: p.name, port: null, ssh_user: null, app_dir: null, active: true }), ...patchColumns(p), name: p.name } as typeof rows[number]
      })
      const deactivated = options.deactivateMissing ? rows.filter((r) => r.active && !named.has(r.name)).map((r) => ({ ...r, active: false })) : []
      const all = [...merged, ...deactivated]
      for (let i = 0; i < all.length; i += 500)
        await tx
          .insertInto('fleet_hosts')
          .values(all.slice(i, i + 500))
          .onConflict((oc) =>
            oc.column('name').doUpdateSet((eb) => ({
              address: eb.ref('excluded.address'),
              port: eb.ref('excluded.port'),
              ssh_user: eb.ref('excluded.ssh_user'),
              app_dir: eb.ref('excluded.app_dir'),
              active: eb.ref('excluded.active'),
            })),
          )
          .execute()
      return {
        added: patches.filter((p) => !existing.has(p.name)).map((p) => p.name),
        updated: patches.filter((p) => existing.has(p.name)).map((p) => p.name),
        deactivated: deactivated.map((r) => r.name),
      }
    })
  }

  async setHostActive(name: string, active: boolean): Promise<boolean> {
    const result = await this.db.updateTable('fleet_hosts').set({ active }).where('name', '=', name).executeTakeFirst()
    return result.numUpdatedRows > 0n
  }

  /** Mirrors a host's outcome into the built-in inventory row, if the host has one. */
  async recordHostState(
    name: string,
    state: { status: HostStatus; currentVersion?: string | null; previousVersion?: string | null },
  ): Promise<void> {
    await this.db
      .updateTable('fleet_hosts')
      .set({
        status: state.status,
        updated_at: new Date(),
        ...(state.currentVersion !== undefined ? { current_version: state.currentVersion } : {}),
        ...(state.previousVersion !== undefined ? { previous_version: state.previousVersion } : {}),
      })
      .where('name', '=', name)
      .execute()
  }

  /** The operator's inventory query, in a read-only transaction so it can never write. */
  async runReadOnlyQuery(query: string): Promise<Record<string, unknown>[]> {
    return this.db.transaction().execute(async (tx) => {
      await sql`SET TRANSACTION READ ONLY`.execute(tx)
      const result = await sql.raw<Record<string, unknown>>(query).execute(tx)
      return result.rows
    })
  }

  // ---- rollouts ------------------------------------------------------------

  async createRollout(rollout: RolloutRecord, hosts: readonly RolloutHostRecord[]): Promise<void> {
    await this.db.transaction().execute(async (tx) => {
      await tx
        .insertInto('fleet_rollouts')
        .values({
          id: rollout.id,
          state: rollout.state,
          ref: rollout.ref,
          sha: rollout.sha,
          stages: JSON.stringify(rollout.stages),
          seed: rollout.seed,
          current_stage: rollout.currentStage,
          settings: JSON.stringify(rollout.settings),
          owner: rollout.owner,
          started_at: rollout.startedAt,
          finished_at: rollout.finishedAt,
          heartbeat_at: rollout.heartbeatAt,
          exit_code: rollout.exitCode,
          error: rollout.error,
        })
        .execute()
      for (let i = 0; i < hosts.length; i += 500) {
        await tx
          .insertInto('fleet_rollout_hosts')
          .values(
            hosts.slice(i, i + 500).map((h) => ({
              rollout_id: rollout.id,
              name: h.name,
              address: h.address,
              port: h.port,
              ssh_user: h.user,
              app_dir: h.appDir,
              position: h.position,
              stage: h.stage,
              status: h.status,
              step: h.step,
              previous_version: h.previousVersion,
              new_version: h.newVersion,
              error: h.error,
              started_at: h.startedAt,
              finished_at: h.finishedAt,
            })),
          )
          .execute()
      }
    })
  }

  async updateRollout(
    id: string,
    patch: Partial<Pick<RolloutRecord, 'state' | 'currentStage' | 'finishedAt' | 'heartbeatAt' | 'exitCode' | 'error'>>,
  ): Promise<void> {
    await this.db
      .updateTable('fleet_rollouts')
      .set(
        definedOnly({
          state: patch.state,
          current_stage: patch.currentStage,
          finished_at: patch.finishedAt,
          heartbeat_at: patch.heartbeatAt,
          exit_code: patch.exitCode,
          error: patch.error,
        }),
      )
      .where('id', '=', id)
      .execute()
  }

  async updateRolloutHost(id: string, name: string, patch: RolloutHostPatch): Promise<void> {
    await this.db
      .updateTable('fleet_rollout_hosts')
      .set(
        definedOnly({
          status: patch.status,
          step: patch.step,
          previous_version: patch.previousVersion,
          new_version: patch.newVersion,
          error: patch.error,
          started_at: patch.startedAt,
          finished_at: patch.finishedAt,
        }),
      )
      .where('rollout_id', '=', id)
      .where('name', '=', name)
      .execute()
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

  async listRolloutHosts(id: string): Promise<RolloutHostRecord[]> {
    const rows = await this.db
      .selectFrom('fleet_rollout_hosts')
      .selectAll()
      .where('rollout_id', '=', id)
      .orderBy('position')
      .execute()
    return rows.map((r) => ({
      name: r.name,
      address: r.address,
      port: r.port,
      user: r.ssh_user,
      appDir: r.app_dir,
      position: r.position,
      stage: r.stage,
      status: r.status as HostStatus,
      step: r.step,
      previousVersion: r.previous_version,
      newVersion: r.new_version,
      error: r.error,
      startedAt: toDate(r.started_at),
      finishedAt: toDate(r.finished_at),
    }))
  }

  async listRolloutHostStates(id: string): Promise<RolloutHostState[]> {
    const rows = await this.db
      .selectFrom('fleet_rollout_hosts')
      .select(['name', 'address', 'port', 'stage', 'status', 'step', 'previous_version', 'new_version', 'error'])
      .where('rollout_id', '=', id)
      .orderBy('position')
      .execute()
    return rows.map((r) => ({
      name: r.name,
      address: r.address,
      port: r.port,
      stage: r.stage,
      status: r.status as HostStatus,
      step: r.step,
      previousVersion: r.previous_version,
      newVersion: r.new_version,
      error: r.error,
    }))
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

  // ---- events --------------------------------------------------------------

  async appendEvent(event: { rolloutId: string | null; type: string; host?: string | null; data: unknown; at?: Date }): Promise<void> {
    await this.db
      .insertInto('fleet_events')
      .values({
        rollout_id: event.rolloutId,
        at: event.at ?? new Date(),
        type: event.type,
        host: event.host ?? null,
        data: JSON.stringify(event.data),
      })
      .execute()
  }

  /** Several events in one INSERT, in order. */
  async appendEvents(events: readonly { rolloutId: string | null; type: string; host?: string | null; data: unknown; at: Date }[]): Promise<void> {
    for (let i = 0; i < events.length; i += 500)
      await this.db
        .insertInto('fleet_events')
        .values(
          events.slice(i, i + 500).map((e) => ({ rollout_id: e.rolloutId, at: e.at, type: e.type, host: e.host ?? null, data: JSON.stringify(e.data) })),
        )
        .execute()
  }

  /** The rollout's log in order; only the given event types when `types` is passed. */
  async listEvents(rolloutId: string, types?: readonly string[]): Promise<{ at: Date; type: string; host: string | null; data: unknown }[]> {
    let query = this.db.selectFrom('fleet_events').selectAll().where('rollout_id', '=', rolloutId)
    if (types) query = query.where('type', 'in', [...types])
    const rows = await query.orderBy('id').execute()
    return rows.map((r) => ({ at: new Date(r.at), type: r.type, host: r.host, data: JSON.parse(r.data) as unknown }))
  }

  // ---- pinned host keys ----------------------------------------------------

  async getHostKey(hostId: string): Promise<{ keyType: string; key: string } | null> {
    const row = await this.db.selectFrom('fleet_host_keys').selectAll().where('host_id', '=', hostId).executeTakeFirst()
    return row ? { keyType: row.key_type, key: row.key } : null
  }

  /** Pins a key on first use; never overwrites an existing pin (returns false then). */
  async pinHostKey(hostId: string, keyType: string, key: string): Promise<boolean> {
    const result = await this.db
      .insertInto('fleet_host_keys')
      .values({ host_id: hostId, key_type: keyType, key, pinned_at: new Date() })
      .onConflict((oc) => oc.column('host_id').doNothing())
      .executeTakeFirst()
    return (result.numInsertedOrUpdatedRows ?? 0n) > 0n
  }

  async forgetHostKey(hostId: string): Promise<boolean> {
    const result = await this.db.deleteFrom('fleet_host_keys').where('host_id', '=', hostId).executeTakeFirst()
    return result.numDeletedRows > 0n
  }

  // ---- the one-rollout-at-a-time lease -------------------------------------

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
    const row = await this.db.selectFrom('fleet_lock').selectAll().where('id', '=', 1).executeTakeFirstOrThrow()
    return {
      acquired: false,
      rolloutId: row.rollout_id,
      holder: row.holder ?? 'unknown',
      since: toDate(row.acquired_at) ?? now,
      heartbeatAt: toDate(row.heartbeat_at) ?? now,
    }
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

  async leaseState(): Promise<{ rolloutId: string | null; holder: string | null; since: Date | null; heartbeatAt: Date | null }> {
    const row = await this.db.selectFrom('fleet_lock').selectAll().where('id', '=', 1).executeTakeFirstOrThrow()
    return { rolloutId: row.rollout_id, holder: row.holder, since: toDate(row.acquired_at), heartbeatAt: toDate(row.heartbeat_at) }
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
}

function toRollout(row: Schema['fleet_rollouts'] extends infer T ? { [K in keyof T]: any } : never): RolloutRecord {
  return {
    id: row.id,
    state: row.state as RolloutState,
    ref: row.ref,
    sha: row.sha,
    stages: JSON.parse(row.stages) as number[],
    seed: row.seed,
    currentStage: row.current_stage,
    settings: JSON.parse(row.settings) as Record<string, unknown>,
    owner: row.owner,
    startedAt: new Date(row.started_at),
    finishedAt: toDate(row.finished_at),
    heartbeatAt: new Date(row.heartbeat_at),
    exitCode: row.exit_code,
    error: row.error,
  }
}
