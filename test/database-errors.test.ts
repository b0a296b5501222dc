/**
 * Database failures say what failed (connect / authenticate / open / migrate) and which database,
 * with the password masked, through the built binary against real servers: the shared Postgres
 * (trust auth on 127.0.0.1, so no password can be wrong there), a port where nothing listens, and a
 * private Postgres switched to scram-sha-256 for the password and privilege cases.
 */
import { writeFile } from 'node:fs/promises'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { storeLabel } from '../src/store/database-errors.js'
import { outageReason } from '../src/store/outage.js'
import { runFleet } from './support/cli.js'
import { PG_ADMIN_URL, pgAvailable } from './support/postgres.js'
import { startPrivatePostgres, type PrivatePostgres } from './support/private-postgres.js'

const SECRET = 'pw-Sekr1t-9f3'

const fleet = (url: string, ...args: string[]) => runFleet(['--database-url', url, ...args], { cwd: os.tmpdir(), env: {} })

const withPassword = (url: string, user: string, password: string, database?: string): string => {
  const u = new URL(url)
  u.username = user
  u.password = password
  if (database) u.pathname = `/${database}`
  return u.toString()
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo
      server.close(() => resolve(port))
    })
  })
}

describe('a database URL fleet cannot use is bad configuration (exit 2), password never shown', () => {
  it.each([
    ['port out of range', `postgres://fleet:${SECRET}@127.0.0.1:99999/fleet`, /database URL postgres:\/\/fleet:\*\*\*@127\.0\.0\.1:99999\/fleet: port 99999 is out of range \(1-65535\)/],
    // (The configuration loader refuses these two first, in its own words.)
    ['unsupported scheme', `mysql://fleet:${SECRET}@127.0.0.1:3306/fleet`, /mysql:\/\/fleet:\*\*\*@127\.0\.0\.1:3306\/fleet.*|postgres:\/\/ or postgresql:\/\/.*mysql:\/\/fleet:\*\*\*@/],
    ['not a URL', 'just some words', /just some words/],
  ])('%s', async (_name, url, message) => {
    for (const args of [['history'], ['hosts', 'list'], ['rollout', 'status']]) {
      const run = await fleet(url, ...args)
      expect(run.code, args.join(' ')).toBe(2)
      expect(run.stderr).toMatch(message)
      expect(run.stderr + run.stdout).not.toContain(SECRET)
    }
  })
})

describe('connect failures (real sockets)', () => {
  it('nothing listening on the port: "cannot connect … connection refused" (exit 1), URL masked', async () => {
    const port = await freePort()
    const url = `postgres://fleet:${SECRET}@127.0.0.1:${port}/fleet`
    const run = await fleet(url, 'history')
    expect(run.code).toBe(1)
    expect(run.stderr).toBe(`fleet: cannot connect to the database at postgres://fleet:***@127.0.0.1:${port}/fleet: connection refused (is Postgres running and listening there?)\n`)
    expect(run.stderr).not.toMatch(/migration/)
  })

  it('an unknown database on the real server: "database … does not exist" (exit 2)', async (t) => {
    if (!(await pgAvailable())) return t.skip()
    const url = withPassword(PG_ADMIN_URL, 'postgres', SECRET, 'fleet_no_such_database')
    const run = await fleet(url, 'hosts', 'list')
    expect(run.code).toBe(2)
    expect(run.stderr).toMatch(/^fleet: cannot open the database at postgres:\/\/postgres:\*\*\*@127\.0\.0\.1:5432\/fleet_no_such_database: database "fleet_no_such_database" does not exist on that server\n$/)
    expect(run.stderr).not.toContain(SECRET)
  })
})

describe('authentication and migration on a private Postgres with scram-sha-256 (real server)', () => {
  let server: PrivatePostgres | null = null
  beforeAll(async () => {
    server = await startPrivatePostgres()
    if (!server) return
    const admin = new pg.Client({ connectionString: server.url })
    await admin.connect()
    try {
      await admin.query(`CREATE ROLE fleet_ok LOGIN PASSWORD 'right-${SECRET}'`)
      await admin.query(`CREATE ROLE fleet_ro LOGIN PASSWORD 'right-${SECRET}'`)
      await admin.query('CREATE DATABASE fleet_app OWNER fleet_ok')
      // fleet_ro may connect to fleet_app but not create anything in it (Postgres 15+: public is not writable by others).
      await admin.query('CREATE DATABASE fleet_locked')
    } finally {
      await admin.end()
    }
    await writeFile(path.join(server.dir, 'data', 'pg_hba.conf'), 'local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n')
    await server.restart({ mode: 'fast' })
  }, 120_000)
  afterAll(async () => {
    await server?.destroy()
  })

  const url = (user: string, password: string | null, database: string) => {
    const u = new URL(server!.url)
    u.username = user
    u.password = password ?? ''
    u.pathname = `/${database}`
    return u.toString()
  }

  it('a wrong password: "cannot authenticate … password authentication failed" (exit 2)', async (t) => {
    if (!server) return t.skip()
    const run = await fleet(url('fleet_ok', SECRET, 'fleet_app'), 'history')
    expect(run.code).toBe(2)
    expect(run.stderr).toBe(`fleet: cannot authenticate to the database at postgres://fleet_ok:***@127.0.0.1:${server.port}/fleet_app: password authentication failed for user "fleet_ok"\n`)
    // pg would leave this connection open until the server's authentication_timeout (60 s): it is cut at once.
    const began = Date.now()
    const none = await fleet(url('fleet_ok', null, 'fleet_app'), 'history')
    expect(Date.now() - began).toBeLessThan(10_000)
    expect(none.code).toBe(2)
    expect(none.stderr).toMatch(/cannot authenticate to the database at postgres:\/\/fleet_ok@127\.0\.0\.1:\d+\/fleet_app: the server asks for a password and the URL has none/)
  })

  it('no right to create fleet\'s tables: "cannot migrate … failed: permission denied" (exit 1)', async (t) => {
    if (!server) return t.skip()
    const run = await fleet(url('fleet_ro', `right-${SECRET}`, 'fleet_locked'), 'history')
    expect(run.code).toBe(1)
    expect(run.stderr).toMatch(
      new RegExp(`^fleet: cannot migrate the database at postgres://fleet_ro:\\*\\*\\*@127\\.0\\.0\\.1:${server.port}/fleet_locked: creating fleet's migration tables failed: permission denied for schema public\\n$`),
    )
    expect(run.stderr).not.toContain(SECRET)
  })

  it('the right password works', async (t) => {
    if (!server) return t.skip()
    const run = await fleet(url('fleet_ok', `right-${SECRET}`, 'fleet_app'), 'history')
    expect(run).toMatchObject({ code: 0, stdout: 'no rollouts yet\n', stderr: '' })
  })
})

describe('outageReason and storeLabel: how the engine names a store outage (store-unavailable events)', () => {
  it('a refused connection reads "connection refused"; the store is named with its password masked', async () => {
    const port = await freePort()
    const url = `postgres://fleet:${SECRET}@127.0.0.1:${port}/fleet`
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 })
    const refused = await client.connect().then(
      () => null,
      (error: unknown) => error,
    )
    expect(outageReason(refused)).toBe('connection refused')
    expect(outageReason(new Error(`boom at ${url}\nsecond line`))).toBe(`boom at postgres://fleet:***@127.0.0.1:${port}/fleet`)
    expect(storeLabel({ url, dir: '' })).toBe(`the database at postgres://fleet:***@127.0.0.1:${port}/fleet`)
    expect(storeLabel({ url: null, dir: '/srv/fleet/.fleet' })).toBe('the embedded store /srv/fleet/.fleet')
  })
})
