import { type Kysely, type Migration, type MigrationProvider, Migrator, sql } from 'kysely'

import { FleetError, ExitCode } from '../errors.js'
import { maskSecrets } from '../redact.js'

/** Migrations live in code so the built CLI needs no migration folder on disk. */
const migrations: Record<string, Migration> = {
  '2026-11-22-001-initial': {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('fleet_hosts')
        .addColumn('name', 'text', (c) => c.primaryKey())
        .addColumn('address', 'text', (c) => c.notNull())
        .addColumn('port', 'integer')
        .addColumn('ssh_user', 'text')
        .addColumn('app_dir', 'text')
        .addColumn('active', 'boolean', (c) => c.notNull().defaultTo(true))
        .addColumn('current_version', 'text')
        .addColumn('previous_version', 'text')
        .addColumn('status', 'text')
        .addColumn('updated_at', 'timestamptz')
        .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
        .execute()
      await db.schema
        .createTable('fleet_rollouts')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('ref', 'text', (c) => c.notNull())
        .addColumn('sha', 'text', (c) => c.notNull())
        .addColumn('stages', 'text', (c) => c.notNull())
        .addColumn('seed', 'text', (c) => c.notNull())
        .addColumn('current_stage', 'integer', (c) => c.notNull())
        .addColumn('settings', 'text', (c) => c.notNull())
        .addColumn('owner', 'text', (c) => c.notNull())
        .addColumn('started_at', 'timestamptz', (c) => c.notNull())
        .addColumn('finished_at', 'timestamptz')
        .addColumn('heartbeat_at', 'timestamptz', (c) => c.notNull())
        .addColumn('exit_code', 'integer')
        .addColumn('error', 'text')
        .execute()
      await db.schema
        .createIndex('fleet_rollouts_started_at')
        .on('fleet_rollouts')
        .column('started_at')
        .execute()
      await db.schema
        .createTable('fleet_rollout_hosts')
        .addColumn('rollout_id', 'text', (c) => c.notNull().references('fleet_rollouts.id').onDelete('cascade'))
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('address', 'text', (c) => c.notNull())
        .addColumn('port', 'integer', (c) => c.notNull())
        .addColumn('ssh_user', 'text', (c) => c.notNull())
        .addColumn('app_dir', 'text', (c) => c.notNull())
        .addColumn('position', 'integer', (c) => c.notNull())
        .addColumn('stage', 'integer', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('step', 'text')
        .addColumn('previous_version', 'text')
        .addColumn('new_version', 'text')
        .addColumn('error', 'text')
        .addColumn('started_at', 'timestamptz')
        .addColumn('finished_at', 'timestamptz')
        .addPrimaryKeyConstraint('fleet_rollout_hosts_pk', ['rollout_id', 'name'])
        .execute()
      await db.schema
        .createTable('fleet_events')
        .addColumn('id', 'bigserial', (c) => c.primaryKey())
        .addColumn('rollout_id', 'text')
        .addColumn('at', 'timestamptz', (c) => c.notNull())
        .addColumn('type', 'text', (c) => c.notNull())
        .addColumn('host', 'text')
        .addColumn('data', 'text', (c) => c.notNull())
        .execute()
      await db.schema.createIndex('fleet_events_rollout').on('fleet_events').columns(['rollout_id', 'id']).execute()
      await db.schema
        .createTable('fleet_host_keys')
        .addColumn('host_id', 'text', (c) => c.primaryKey())
        .addColumn('key_type', 'text', (c) => c.notNull())
        .addColumn('key', 'text', (c) => c.notNull())
        .addColumn('pinned_at', 'timestamptz', (c) => c.notNull())
        .execute()
      await db.schema
        .createTable('fleet_lock')
        .addColumn('id', 'integer', (c) => c.primaryKey())
        .addColumn('rollout_id', 'text')
        .addColumn('holder', 'text')
        .addColumn('acquired_at', 'timestamptz')
        .addColumn('heartbeat_at', 'timestamptz')
        .execute()
      await db.insertInto('fleet_lock').values({ id: 1 }).execute()
    },
  },
  // Gate state in `status`, where a stage was for tick/resume, and pause/promote polling read a
  // rollout's log by event type, some every second: without this they would scan every host event.
  '2026-11-30-001-events-by-type': {
    async up(db: Kysely<any>) {
      await db.schema.createIndex('fleet_events_rollout_type').on('fleet_events').columns(['rollout_id', 'type', 'id']).execute()
    },
  },
  // The lease becomes a fence: every acquisition takes a new epoch, and every write of a rollout names
  // the epoch it holds (lease.ts, fence.ts). store_id tells hosts which store's epochs they compare.
  // Requests (pause, promote) are rows consumed once by id instead of events matched by time.
  '2026-12-07-001-fenced-lease': {
    async up(db: Kysely<any>) {
      await db.schema.alterTable('fleet_lock').addColumn('epoch', 'integer', (c) => c.notNull().defaultTo(0)).execute()
      await db.schema.alterTable('fleet_lock').addColumn('store_id', 'text').execute()
      await sql`UPDATE fleet_lock SET store_id = replace(gen_random_uuid()::text, '-', '')`.execute(db)
      await db.schema.alterTable('fleet_rollouts').addColumn('epoch', 'integer', (c) => c.notNull().defaultTo(0)).execute()
      await db.schema.alterTable('fleet_rollout_hosts').addColumn('epoch', 'integer').execute()
      await db.schema
        .createTable('fleet_requests')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('rollout_id', 'text', (c) => c.notNull())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('actor', 'text', (c) => c.notNull())
        .addColumn('reason', 'text')
        .addColumn('skip_bake', 'boolean', (c) => c.notNull().defaultTo(false))
        .addColumn('requested_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
        .addColumn('settled_at', 'timestamptz')
        .addColumn('settled_by', 'text')
        .addColumn('outcome', 'text')
        .execute()
      await db.schema.createIndex('fleet_requests_rollout').on('fleet_requests').columns(['rollout_id', 'requested_at']).execute()
    },
  },
  // The fleet's shape: a host's ring and time zone in the built-in table; holds by host name.
  '2026-12-07-002-rings-holds': {
    async up(db: Kysely<any>) {
      await db.schema.alterTable('fleet_hosts').addColumn('ring', 'text').execute()
      await db.schema.alterTable('fleet_hosts').addColumn('timezone', 'text').execute()
      await db.schema
        .createTable('fleet_holds')
        .addColumn('name', 'text', (c) => c.primaryKey())
        .addColumn('reason', 'text', (c) => c.notNull())
        .addColumn('actor', 'text', (c) => c.notNull())
        .addColumn('since', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
        .addColumn('until', 'timestamptz')
        .execute()
    },
  },
}

const provider: MigrationProvider = { getMigrations: async () => migrations }

/** One cheap query instead of the migrator's lock dance on every start: is every migration applied? */
async function upToDate(db: Kysely<any>): Promise<boolean> {
  try {
    const rows = await sql<{ name: string }>`SELECT name FROM fleet_migrations`.execute(db)
    const applied = new Set(rows.rows.map((r) => r.name))
    return Object.keys(migrations).every((name) => applied.has(name))
  } catch {
    return false // no migration table yet
  }
}

/** Brings the schema up to date; safe to run on every start and from two processes at once. */
export async function migrateToLatest(db: Kysely<any>, where = 'the database'): Promise<void> {
  if (await upToDate(db)) return
  const migrator = new Migrator({
    db,
    provider,
    migrationTableName: 'fleet_migrations',
    migrationLockTableName: 'fleet_migrations_lock',
  })
  const { error, results } = await migrator.migrateToLatest()
  if (error) {
    const failed = results?.find((r) => r.status === 'Error')?.migrationName
    throw new FleetError(
      `cannot migrate ${where}: ${failed ? `migration ${failed} failed` : "creating fleet's migration tables failed"}: ${maskSecrets(error instanceof Error ? error.message : String(error))}`,
      ExitCode.internal,
    )
  }
}
