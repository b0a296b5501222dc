import { existsSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import type { Kysely } from 'kysely'

import { FleetError, ExitCode, errorMessage } from '../errors.js'
import type { Schema } from './schema.js'
import { acquireDirLock, type DirLock } from './dir-lock.js'
import { maskSecrets, redactUrl } from '../redact.js'
import { describeConnectError, parseDatabaseUrl } from './database-errors.js'


export type StoreKind = 'postgres' | 'pglite'

/** How long the server keeps a session that sits idle inside a transaction (see openPostgres). */
export const IDLE_IN_TRANSACTION_MS = 10_000

export interface DatabaseConfig {
  readonly url: string | null
  readonly dir: string
}

export interface Database {
  readonly db: Kysely<Schema>
  readonly kind: StoreKind
  /** The embedded store's directory and the `since` of our lock on it (null on Postgres). */
  readonly dir: string | null
  readonly lockSince: string | null
  /** Closes the store; `beforeUnlock` runs after the close, while the embedded store's lock is still ours. */
  close(beforeUnlock?: () => void): Promise<void>
}

export interface OpenOptions {
  /** A read-only command: never create the embedded store (NoStoreError when it does not exist). */
  readonly mustExist?: boolean
}

/** A read-only command found no embedded store where the configuration points. */
export class NoStoreError extends FleetError {
  constructor(readonly dir: string) {
    super(`no fleet store at ${dir} yet (nothing has run here)`, ExitCode.ok)
  }
}

/** An initialised PGlite data directory (a bare or half-made directory is not a store). */
export const embeddedStoreExists = (dir: string): boolean => existsSync(join(dir, 'PG_VERSION'))

/**
 * Opens fleet's store: Postgres when a URL is configured, else the embedded
 * PGlite in `dir`. Heavy drivers are imported lazily so `fleet --help` stays fast.
 */
export async function openDatabase(config: DatabaseConfig, options: OpenOptions = {}): Promise<Database> {
  if (config.url) return openPostgres(config.url)
  if (options.mustExist && !embeddedStoreExists(config.dir)) throw new NoStoreError(config.dir)
  return openPglite(config.dir)
}

async function openPostgres(url: string): Promise<Database> {
  // A malformed URL is bad configuration: say so before any driver guesses at it.
  parseDatabaseUrl(url)
  // kysely and the drivers load only here: a read-only command served from the snapshot needs none of them.
  const [{ default: pg }, { Kysely, PostgresDialect }, { migrateToLatest }] = await Promise.all([import('pg'), import('kysely'), import('./migrations.js')])
  // Enough connections that hosts in flight rarely queue for one; writes are short.
  // fleet's transactions last milliseconds. One left open by a frozen process (a suspended laptop, SIGSTOP)
  // would hold the lease row's lock and block every takeover: the server ends such a session after 10 s.
  const pool = new pg.Pool({
    connectionString: url,
    max: 10,
    connectionTimeoutMillis: 10_000,
    idle_in_transaction_session_timeout: IDLE_IN_TRANSACTION_MS,
    Client: cutOnFailure(pg.Client),
  })
  // A client losing its server (idle or mid-query) must not crash the process with an
  // unhandled 'error' event: the failing query rejects, and the engine retries it.
  pool.on('error', () => {})
  pool.on('connect', (client) => client.on('error', () => {}))
  const db = new Kysely<Schema>({ dialect: new PostgresDialect({ pool }) })
  try {
    // Connect first, so a refused port or a wrong password is not reported as a failed migration.
    try {
      ;(await pool.connect()).release()
    } catch (error) {
      throw describeConnectError(error, url)
    }
    await migrateToLatest(db, `the database at ${redactUrl(url)}`)
  } catch (error) {
    await db.destroy()
    if (error instanceof FleetError) throw error
    throw new FleetError(`cannot open the database at ${redactUrl(url)}: ${maskSecrets(errorMessage(error))}`, ExitCode.internal)
  }
  return { db, kind: 'postgres', dir: null, lockSince: null, close: () => db.destroy() }
}

/**
 * pg's client with one fix: a connection that fails during authentication (e.g. the server asks
 * for a password the URL does not have) is cut at once; pg leaves that socket open until the
 * server's authentication_timeout (60 s), and the process could not exit meanwhile.
 */
function cutOnFailure<C extends new (...args: any[]) => object>(Base: C): C {
  const Cut = class extends Base {}
  const connect = (Base.prototype as { _connect: (this: unknown, callback: (error?: Error) => void) => void })._connect
  Object.defineProperty(Cut.prototype, '_connect', {
    value(this: { connection?: { stream?: { destroy(): void } } }, callback: (error?: Error) => void) {
      connect.call(this, (error) => {
        if (error) this.connection?.stream?.destroy()
        callback(error)
      })
    },
  })
  return Cut
}

async function openPglite(dir: string): Promise<Database> {
  mkdirSync(dir, { recursive: true })
  // PGlite is single-process: a second process opening the same directory would corrupt it.
  const lock: DirLock = acquireDirLock(dir)
  try {
    const [{ PGlite }, { PGliteDialect }, { Kysely }, { migrateToLatest }] = await Promise.all([
      import('@electric-sql/pglite'),
      import('kysely-pglite-dialect'),
      import('kysely'),
      import('./migrations.js'),
    ])
    const pglite = new PGlite(dir)
    const db = new Kysely<Schema>({ dialect: new PGliteDialect(pglite) })
    await migrateToLatest(db, `the embedded store ${dir}`)
    return {
      db,
      kind: 'pglite',
      dir,
      lockSince: lock.since,
      close: async (beforeUnlock) => {
        try {
          await db.destroy()
          beforeUnlock?.()
        } finally {
          lock.release()
        }
      },
    }
  } catch (error) {
    lock.release()
    throw error
  }
}
