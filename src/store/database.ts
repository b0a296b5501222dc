import { mkdirSync } from 'node:fs'
import { Kysely, PostgresDialect } from 'kysely'

import { FleetError, ExitCode, errorMessage } from '../errors.js'
import { migrateToLatest } from './migrations.js'
import type { Schema } from './schema.js'
import { acquireDirLock, type DirLock } from './dir-lock.js'

export type StoreKind = 'postgres' | 'pglite'

export interface DatabaseConfig {
  readonly url: string | null
  readonly dir: string
}

export interface Database {
  readonly db: Kysely<Schema>
  readonly kind: StoreKind
  close(): Promise<void>
}

/**
 * Opens fleet's store: Postgres when a URL is configured, else the embedded
 * PGlite in `dir`. Heavy drivers are imported lazily so `fleet --help` stays fast.
 */
export async function openDatabase(config: DatabaseConfig): Promise<Database> {
  if (config.url) return openPostgres(config.url)
  return openPglite(config.dir)
}

async function openPostgres(url: string): Promise<Database> {
  const { default: pg } = await import('pg')
  // Enough connections that hosts in flight rarely queue for one; writes are short.
  const pool = new pg.Pool({ connectionString: url, max: 10, connectionTimeoutMillis: 10_000 })
  // A client losing its server (idle or mid-query) must not crash the process with an
  // unhandled 'error' event: the failing query rejects, and the engine retries it.
  pool.on('error', () => {})
  pool.on('connect', (client) => client.on('error', () => {}))
  const db = new Kysely<Schema>({ dialect: new PostgresDialect({ pool }) })
  try {
    await migrateToLatest(db)
  } catch (error) {
    await db.destroy()
    if (error instanceof FleetError) throw error
    throw new FleetError(`cannot open the database: ${redactSecrets(errorMessage(error))}`, ExitCode.internal)
  }
  return { db, kind: 'postgres', close: () => db.destroy() }
}

async function openPglite(dir: string): Promise<Database> {
  mkdirSync(dir, { recursive: true })
  // PGlite is single-process: a second process opening the same directory would corrupt it.
  const lock: DirLock = acquireDirLock(dir)
  try {
    const [{ PGlite }, { PGliteDialect }] = await Promise.all([
      import('@electric-sql/pglite'),
      import('kysely-pglite-dialect'),
    ])
    const pglite = new PGlite(dir)
    const db = new Kysely<Schema>({ dialect: new PGliteDialect(pglite) })
    await migrateToLatest(db)
    return {
      db,
      kind: 'pglite',
      close: async () => {
        await db.destroy()
        lock.release()
      },
    }
  } catch (error) {
    lock.release()
    throw error
  }
}

/** Connection strings in driver errors must never reach the terminal with a password. */
export const redactSecrets = (text: string): string =>
  text.replace(/(postgres(?:ql)?:\/\/[^:/@\s]+:)[^@\s]+@/g, '$1***@')
