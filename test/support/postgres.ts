/**
 * Throwaway databases on a real Postgres server for tests.
 *
 * Server: FLEET_TEST_PG_URL, default postgres://postgres@127.0.0.1:5432/postgres (trust auth on the
 * dev machine; CI starts one). Unreachable server: under CI that is an error (CI must fail, not
 * skip); elsewhere pgAvailable() resolves false and tests skip with pgSkipReason().
 *
 *   describe.skipIf(!(await pgAvailable()))('...', () => {
 *     let db: TestDatabase
 *     beforeAll(async () => { db = (await createTestDatabase())! })
 *     afterAll(() => db?.drop())
 *   })
 */
import { randomBytes } from 'node:crypto'
import pg from 'pg'

export const PG_ADMIN_URL = process.env.FLEET_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'

export interface TestDatabase {
  /** Connection URL of the fresh, empty database. */
  url: string
  name: string
  /** Drops it, closing any connection still open on it. Idempotent. */
  drop(): Promise<void>
}

let availability: Promise<string | null> | undefined

async function probe(): Promise<string | null> {
  const client = new pg.Client({ connectionString: PG_ADMIN_URL, connectionTimeoutMillis: 3000 })
  try {
    await client.connect()
    await client.query('select 1')
    return null
  } catch (err) {
    return `Postgres at ${redact(PG_ADMIN_URL)} is unreachable: ${(err as Error).message}`
  } finally {
    await client.end().catch(() => {})
  }
}

function redact(url: string): string {
  return url.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:***@')
}

/**
 * Whether the test Postgres server answers. Under CI an unreachable server throws instead, so a
 * missing Postgres fails the run.
 */
export async function pgAvailable(): Promise<boolean> {
  availability ??= probe()
  const problem = await availability
  if (problem && process.env.CI) throw new Error(`${problem} (CI requires a real Postgres server)`)
  return problem === null
}

/** Why Postgres tests are skipped (null when they are not). */
export async function pgSkipReason(): Promise<string | null> {
  availability ??= probe()
  return availability
}

/**
 * Creates a fresh, uniquely named database. Server unreachable: null outside CI (skip the test,
 * reason from pgSkipReason()), an error under CI.
 */
export async function createTestDatabase(): Promise<TestDatabase | null> {
  if (!(await pgAvailable())) return null
  const name = `fleet_test_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`
  await admin(`CREATE DATABASE ${name}`)
  const url = new URL(PG_ADMIN_URL)
  url.pathname = `/${name}`
  let dropped = false
  return {
    url: url.toString(),
    name,
    drop: async () => {
      if (dropped) return
      dropped = true
      await admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
    },
  }
}

async function admin(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: PG_ADMIN_URL, connectionTimeoutMillis: 5000 })
  await client.connect()
  try {
    await client.query(sql)
  } finally {
    await client.end().catch(() => {})
  }
}
