/**
 * The operator's inventory query is held to what it is for, on a real Postgres and on PGlite: one
 * statement, read-only, under inventory.timeout, at most 100,000 rows. Every hostile form is bad
 * configuration (exit 2, a clear message) and nothing is written.
 */
import os from 'node:os'
import { sql } from 'kysely'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { loadConfig } from '../src/config/load.js'
import { FleetError } from '../src/errors.js'
import { loadInventory } from '../src/rollout/inventory.js'
import type { Store } from '../src/store/store.js'
import { openTestStore, testFence, type TestStore } from './support/harness.js'
import { createTestDatabase, pgAvailable, type TestDatabase } from './support/postgres.js'

const configWith = (query: string, timeout = '10s') => loadConfig({ env: {}, cwd: os.tmpdir(), overrides: { inventory: { query, timeout } } }).config

async function refusal(store: Store, query: string, timeout?: string): Promise<FleetError> {
  const error = await loadInventory(store, configWith(query, timeout)).then(
    () => null,
    (e: unknown) => e,
  )
  expect(error).toBeInstanceOf(FleetError)
  expect((error as FleetError).exitCode).toBe(2)
  return error as FleetError
}

const HOSTS = 'SELECT name, address FROM fleet_hosts'

describe.each(['postgres', 'pglite'] as const)('inventory.query on %s', (kind) => {
  let database: TestDatabase | null = null
  let t: TestStore
  beforeAll(async () => {
    if (kind === 'postgres') {
      expect(await pgAvailable()).toBe(true)
      database = (await createTestDatabase())!
    }
    t = await openTestStore(kind, database?.url)
    await t.store.upsertHosts([{ name: 'a', address: '127.0.0.1', port: 22, user: 'u', appDir: '/srv/app' }])
    // A lease on record, so a write to it would show.
    await testFence(t.store, 'r-held')
  }, 60_000)
  afterAll(async () => {
    await t?.close()
    await database?.drop()
  })

  const unchanged = async () => {
    expect((await t.store.leaseState()).holder).not.toBe('pwned')
    const tables = await sql<{ n: number }>`SELECT count(*)::int AS n FROM information_schema.tables WHERE table_name = 'pwned'`.execute(t.store.db)
    expect(tables.rows[0]!.n).toBe(0)
    expect((await t.store.listHosts()).map((h) => h.name)).toEqual(['a'])
  }

  it('a plain query works, with comments and a trailing semicolon or comment', async () => {
    for (const query of [HOSTS, `${HOSTS};`, `-- active\n${HOSTS} -- all of them`, `WITH h AS (${HOSTS}) SELECT * FROM h /* done */`]) {
      const inventory = await loadInventory(t.store, configWith(query))
      expect(inventory.hosts.map((h) => h.name)).toEqual(['a'])
    }
  })

  it('several statements (COMMIT to leave the read-only transaction, then writes) are refused; nothing is written', async () => {
    const error = await refusal(t.store, `${HOSTS}; COMMIT; CREATE TABLE pwned (x int); UPDATE fleet_lock SET holder = 'pwned'`)
    expect(error.message).toMatch(/inventory\.query failed: /)
    // Closing the wrapper's parenthesis does not help either.
    await refusal(t.store, `${HOSTS}) AS q; COMMIT; UPDATE fleet_lock SET holder = 'pwned'; SELECT * FROM (SELECT 1`)
    await unchanged()
  })

  it('writes inside one statement are refused: data-modifying WITH, switching the transaction to read-write', async () => {
    expect((await refusal(t.store, `WITH x AS (DELETE FROM fleet_hosts RETURNING *) SELECT name, address FROM x`)).message).toMatch(/tried to write/)
    await refusal(t.store, `SELECT name, address, set_config('transaction_read_only', 'off', true) FROM fleet_hosts`)
    await unchanged()
  })

  it('more than 100,000 rows is refused', async () => {
    expect((await refusal(t.store, `SELECT 'h' || g AS name, '127.0.0.1' AS address FROM generate_series(1, 100001) g`)).message).toMatch(/more than 100000 rows/)
  })

  // PGlite runs in this process: a sleeping query there would hold the test, so the timeout is proven on the server.
  if (kind === 'postgres')
    it('a slow query is cancelled at inventory.timeout, whatever it sets itself', async () => {
    const slow = await refusal(t.store, `SELECT name, address, pg_sleep(30) FROM fleet_hosts`, '300ms')
    expect(slow.message).toMatch(/ran longer than inventory\.timeout \(300ms\) and was cancelled/)
    await refusal(t.store, `SELECT name, address, set_config('statement_timeout', '0', true), pg_sleep(30) FROM fleet_hosts`, '300ms')
    })
})
