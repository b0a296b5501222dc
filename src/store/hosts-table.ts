import { sql, type Kysely, type OnConflictBuilder } from 'kysely'

import type { HostStatus } from '../types.js'
import { fenced, type Fence } from './lease.js'
import { subset, toColumns, toDate, toRecord } from './rows.js'
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
  readonly ring: string | null
  readonly timezone: string | null
}

/** A hold on a host (`fleet hosts hold`): who, why, since when, until when (null: until unheld). */
export interface HoldRow {
  readonly name: string
  readonly reason: string
  readonly actor: string
  readonly since: Date
  readonly until: Date | null
}

export interface NewHost {
  readonly name: string
  readonly address: string
  readonly port?: number | null
  readonly user?: string | null
  readonly appDir?: string | null
  readonly active?: boolean
  readonly ring?: string | null
  readonly timezone?: string | null
}

/** A change to one hosts-table row: undefined keeps a field, null sends it back to the config default. */
export interface HostPatch {
  readonly name: string
  readonly address?: string
  readonly port?: number | null
  readonly user?: string | null
  readonly appDir?: string | null
  readonly active?: boolean
  readonly ring?: string | null
  readonly timezone?: string | null
}

const HOST = {
  name: 'name',
  address: 'address',
  port: 'port',
  user: 'ssh_user',
  appDir: 'app_dir',
  active: 'active',
  currentVersion: 'current_version',
  previousVersion: 'previous_version',
  status: 'status',
  updatedAt: 'updated_at',
  ring: 'ring',
  timezone: 'timezone',
} as const satisfies Record<keyof HostRow, keyof Schema['fleet_hosts']>

/** What the operator sets of a host (null: the config's default); the rest is written by rollouts. */
const HOST_SETTINGS = subset(HOST, 'address', 'port', 'user', 'appDir', 'active', 'ring', 'timezone')

/** A new host, every setting written. */
const newHostColumns = (h: NewHost) => ({
  name: h.name,
  ...toColumns(HOST_SETTINGS, { address: h.address, port: h.port ?? null, user: h.user ?? null, appDir: h.appDir ?? null, active: h.active ?? true, ring: h.ring ?? null, timezone: h.timezone ?? null }),
})

/** A name already there takes the incoming settings. */
const replaceSettings = (oc: OnConflictBuilder<Schema, 'fleet_hosts'>) =>
  oc.column('name').doUpdateSet((eb) => ({
    address: eb.ref('excluded.address'),
    port: eb.ref('excluded.port'),
    ssh_user: eb.ref('excluded.ssh_user'),
    app_dir: eb.ref('excluded.app_dir'),
    active: eb.ref('excluded.active'),
    ring: eb.ref('excluded.ring'),
    timezone: eb.ref('excluded.timezone'),
  }))

/** What a rollout mirrors of a host into its inventory row. */
export interface HostState {
  readonly status: HostStatus
  readonly currentVersion?: string | null
  readonly previousVersion?: string | null
}

/** Mirrors a host's state into its inventory row (if it has one), inside the writer's fenced transaction. */
export async function writeHostState(tx: Kysely<Schema>, name: string, state: HostState): Promise<void> {
  await tx
    .updateTable('fleet_hosts')
    .set({ ...toColumns(subset(HOST, 'status', 'currentVersion', 'previousVersion'), state), updated_at: sql`now()` })
    .where('name', '=', name)
    .execute()
}

/** The built-in inventory (fleet_hosts). */
export class Hosts {
  constructor(private readonly db: Kysely<Schema>) {}

  async listHosts(options: { activeOnly?: boolean } = {}): Promise<HostRow[]> {
    let query = this.db.selectFrom('fleet_hosts').selectAll().orderBy('name')
    if (options.activeOnly) query = query.where('active', '=', true)
    const rows = await query.execute()
    return rows.map((r) => ({ ...toRecord(HOST, r), updatedAt: toDate(r.updated_at) }))
  }

  /** Inserts hosts (all or nothing); an existing name is updated in place. */
  async upsertHosts(hosts: readonly NewHost[]): Promise<void> {
    if (hosts.length === 0) return
    await this.db.transaction().execute(async (tx) => {
      for (let i = 0; i < hosts.length; i += 500) {
        const values = hosts.slice(i, i + 500).map((h) => ({ ...newHostColumns(h), current_version: null, previous_version: null, status: null, updated_at: null }))
        await tx.insertInto('fleet_hosts').values(values).onConflict(replaceSettings).execute()
      }
    })
  }

  /** Inserts one host unless its name exists; false (and nothing changed) when it does. */
  async addHost(host: NewHost): Promise<boolean> {
    const result = await this.db
      .insertInto('fleet_hosts')
      .values(newHostColumns(host))
      .onConflict((oc) => oc.column('name').doNothing())
      .executeTakeFirst()
    return (result.numInsertedOrUpdatedRows ?? 0n) > 0n
  }

  /** Changes only the fields the patch carries (null: back to the config's default); false if no such host. */
  async updateHost(name: string, patch: Omit<HostPatch, 'name'>): Promise<boolean> {
    const set = toColumns(HOST_SETTINGS, patch)
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
      const rows = await tx.selectFrom('fleet_hosts').select(['name', 'address', 'port', 'ssh_user', 'app_dir', 'active', 'ring', 'timezone']).forUpdate().execute()
      const existing = new Map(rows.map((r) => [r.name, r]))
      const named = new Set(patches.map((p) => p.name))
      const merged = patches.map((p) => {
        const old = existing.get(p.name)
        if (!old && p.address === undefined) throw new Error(`importHosts: new host ${p.name} needs an address`)
        return { ...(old ?? { name: p.name, port: null, ssh_user: null, app_dir: null, active: true, ring: null, timezone: null }), ...toColumns(HOST_SETTINGS, p), name: p.name } as typeof rows[number]
      })
      const deactivated = options.deactivateMissing ? rows.filter((r) => r.active && !named.has(r.name)).map((r) => ({ ...r, active: false })) : []
      const all = [...merged, ...deactivated]
      for (let i = 0; i < all.length; i += 500)
        await tx.insertInto('fleet_hosts').values(all.slice(i, i + 500)).onConflict(replaceSettings).execute()
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
  async recordHostState(fence: Fence, name: string, state: HostState): Promise<void> {
    await fenced(this.db, fence, (tx) => writeHostState(tx, name, state))
  }

  /** The operator's inventory query, in a read-only transaction so it can never write. */
  /**
   * The operator's inventory query, held to what it is for: one statement (wrapped as a subquery and
   * sent with a parameter, so the extended protocol runs exactly one), in a READ ONLY transaction
   * (a write, or a `COMMIT` to leave it, fails), under a statement timeout, at most `maxRows` rows.
   */
  async runReadOnlyQuery(query: string, options: { readonly timeoutMs: number; readonly maxRows: number }): Promise<Record<string, unknown>[]> {
    return this.db.transaction().execute(async (tx) => {
      await sql`SET TRANSACTION READ ONLY`.execute(tx)
      await sql.raw(`SET LOCAL statement_timeout = ${Math.max(1, Math.round(options.timeoutMs))}`).execute(tx)
      // Newlines around the body: a trailing `-- comment` cannot swallow the closing parenthesis.
      const body = query.trim().replace(/;\s*$/, '')
      const result = await sql<Record<string, unknown>>`SELECT * FROM (\n${sql.raw(body)}\n) AS fleet_inventory LIMIT ${options.maxRows + 1}`.execute(tx)
      if (result.rows.length > options.maxRows) throw new Error(`it returned more than ${options.maxRows} rows`)
      return result.rows
    })
  }

  /** Every hold on record, expired ones included (the reader decides what "now" is: the database's clock). */
  async listHolds(): Promise<HoldRow[]> {
    const rows = await this.db.selectFrom('fleet_holds').selectAll().orderBy('name').execute()
    return rows.map((r) => ({ name: r.name, reason: r.reason, actor: r.actor, since: new Date(r.since as unknown as string), until: toDate(r.until) }))
  }

  /** Holds a host (a new reason or end replaces the old one); by name, so it works with any inventory source. */
  async hold(hold: Omit<HoldRow, 'since'>): Promise<void> {
    await this.db
      .insertInto('fleet_holds')
      .values({ name: hold.name, reason: hold.reason, actor: hold.actor, until: hold.until })
      .onConflict((oc) => oc.column('name').doUpdateSet({ reason: hold.reason, actor: hold.actor, until: hold.until, since: sql`now()` }))
      .execute()
  }

  /** True when there was a hold to lift. */
  async unhold(name: string): Promise<boolean> {
    const result = await this.db.deleteFrom('fleet_holds').where('name', '=', name).executeTakeFirst()
    return Number(result.numDeletedRows) > 0
  }
}
