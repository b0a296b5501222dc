/**
 * Glue between the real test fleet and fleet itself: a real store (PGlite in a
 * temp dir, or a fresh database on the real Postgres), a config pointing at
 * the fleet's keys, and a rollout run in-process with the real ssh2 executor.
 */
import { cp, mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import { sql } from 'kysely'

import { loadConfig, type RawConfigOverrides } from '../../src/config/load.js'
import type { FleetConfig } from '../../src/config/types.js'
import { makeExecutor, rolloutRequest } from '../../src/cli/context.js'
import { systemClock } from '../../src/rollout/clock.js'
import { runRollout, type RolloutResult } from '../../src/rollout/engine.js'
import type { RolloutEvent } from '../../src/rollout/events.js'
import { loadInventory } from '../../src/rollout/inventory.js'
import { openDatabase, type Database } from '../../src/store/database.js'
import { Store, type Fence, type RolloutHostRecord, type RolloutRecord } from '../../src/store/store.js'
import { pgliteTemplate } from './pglite-template.js'
import type { TestFleet } from './test-fleet.js'

export type StoreKind = 'pglite' | 'postgres'

export interface TestStore {
  readonly store: Store
  readonly database: Database
  /** What to pass as database config (url or dir) to reopen it, e.g. from the CLI. */
  readonly databaseConfig: { url: string | null; dir: string }
  close(): Promise<void>
}

export async function openTestStore(kind: StoreKind, url?: string): Promise<TestStore> {
  if (kind === 'postgres') {
    if (!url) throw new Error('postgres test store needs a URL')
    const databaseConfig = { url, dir: '' }
    const database = await openDatabase(databaseConfig)
    return { store: new Store(database), database, databaseConfig, close: () => database.close() }
  }
  const dir = await mkdtemp(path.join(os.tmpdir(), 'fleet-store-'))
  // A fresh PGlite data dir costs ~4 s of initdb; a copy of one migrated template costs ~1 s.
  await cp(await pgliteTemplate(), dir, { recursive: true })
  const databaseConfig = { url: null, dir }
  const database = await openDatabase(databaseConfig)
  return {
    store: new Store(database),
    database,
    databaseConfig,
    close: async () => {
      await database.close()
      await rm(dir, { recursive: true, force: true })
    },
  }
}

/** Raw config (file shape) aimed at the test fleet: its key, its known_hosts, short delays. */
export function fleetConfigOverrides(fleet: TestFleet, extra: RawConfigOverrides = {}): RawConfigOverrides {
  const base: RawConfigOverrides = {
    ssh: { user: fleet.hosts[0]!.user, privateKey: fleet.clientKey, knownHosts: fleet.knownHosts, connectTimeout: '10s' },
    verify: { delay: '300ms', retries: 2, interval: '300ms' },
    timeouts: { command: '30s' },
    rollout: { stageDelay: '0s', concurrency: 5 },
  }
  for (const [section, values] of Object.entries(extra)) base[section] = { ...base[section], ...values }
  return base
}

export function testConfig(fleet: TestFleet, databaseConfig: { url: string | null; dir: string }, extra: RawConfigOverrides = {}): FleetConfig {
  const overrides = fleetConfigOverrides(fleet, extra)
  overrides.database = { url: databaseConfig.url, dir: databaseConfig.dir || '.fleet' }
  return loadConfig({ env: {}, cwd: os.tmpdir(), overrides }).config
}

/** Registers every fleet host in fleet's built-in hosts table. */
export async function registerHosts(store: Store, fleet: TestFleet, names = fleet.hosts.map((h) => h.name)): Promise<void> {
  await store.upsertHosts(
    fleet.hosts
      .filter((h) => names.includes(h.name))
      .map((h) => ({ name: h.name, address: h.address, port: h.port, user: h.user, appDir: h.appDir })),
  )
}

export interface RunResult extends RolloutResult {
  readonly events: RolloutEvent[]
}

/** A whole rollout, in-process, against the real fleet and store. */
export async function rollout(store: Store, config: FleetConfig, options: { ref?: string; seed?: string; onEvent?: (event: RolloutEvent) => void } = {}): Promise<RunResult> {
  const inventory = await loadInventory(store, config)
  const events: RolloutEvent[] = []
  const request = rolloutRequest({ config, configSource: null }, inventory.hosts, { ref: options.ref, seed: options.seed ?? 'test-seed', owner: 'test' })
  const result = await runRollout(
    { store, executor: makeExecutor(config, store), clock: systemClock, listeners: [(e) => (events.push(e), options.onEvent?.(e))] },
    request,
  )
  return { ...result, events }
}

/**
 * A fence for seeding rows directly in tests: takes the next epoch of the lease row without
 * holding the lease or touching any rollout (its owner and heartbeat stay what the test wrote).
 */
export async function testFence(store: Store, leaseId: string): Promise<Fence> {
  const row = await store.db
    .updateTable('fleet_lock')
    .set((eb) => ({ epoch: eb('epoch', '+', 1) }))
    .where('id', '=', 1)
    .returning(['epoch', 'store_id'])
    .executeTakeFirstOrThrow()
  return { leaseId, epoch: row.epoch, storeId: row.store_id ?? '' }
}

/** Seeds a rollout and its hosts as a test wrote them (owner, times), under a test fence. */
export async function seedRollout(store: Store, rollout: Omit<RolloutRecord, 'epoch'>, hosts: readonly RolloutHostRecord[]): Promise<Fence> {
  const fence = await testFence(store, rollout.id)
  await store.createRollout(fence, rollout, hosts)
  return fence
}

/** Makes the lease look abandoned: its heartbeat `ms` in the past by the database's clock (a frozen or crashed holder). */
export async function ageLease(store: Store, ms: number): Promise<void> {
  await sql`UPDATE fleet_lock SET heartbeat_at = now() - make_interval(secs => ${ms / 1000})`.execute(store.db)
}
