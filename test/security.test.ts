/**
 * Security properties, end to end against real sshd and real stores: host keys pinned on first use
 * and a changed key refused before any command runs; hostile inventory values never reach a shell;
 * secrets (database password, SSH private key) never reach the output or the store.
 */
import { randomBytes } from 'node:crypto'
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { sql } from 'kysely'
import { afterEach, describe, expect, it } from 'vitest'

import { Store } from '../src/store/store.js'
import { runFleet } from './support/cli.js'
import { expectOn, withPglite } from './support/fault-kit.js'
import { fleetConfigOverrides, openTestStore, registerHosts, rollout, testConfig, type TestStore } from './support/harness.js'
import { createTestDatabase, type TestDatabase } from './support/postgres.js'
import { startTestFleet, type TestFleet } from './support/test-fleet.js'

let fleet: TestFleet | null = null
let testStore: TestStore | null = null
let database: TestDatabase | null = null
const cleanups: (() => Promise<void>)[] = []

afterEach(async () => {
  await testStore?.close().catch(() => {})
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => {})
  await database?.drop()
  await fleet?.stop()
  fleet = testStore = database = null
})

async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix))
  cleanups.push(() => rm(dir, { recursive: true, force: true }))
  return dir
}

async function workdir(config: object | string): Promise<string> {
  const dir = await tempDir('fleet-security-')
  await writeFile(path.join(dir, 'rollout.config.json'), typeof config === 'string' ? config : JSON.stringify(config, null, 2))
  return dir
}

/** A fresh migrated PGlite dir with (some of) the fleet's hosts, closed so that a `fleet` process can open it. */
async function pgliteDir(f: TestFleet | null): Promise<string> {
  const s = await openTestStore('pglite')
  if (f) await registerHosts(s.store, f)
  await s.database.close()
  const dir = s.databaseConfig.dir
  cleanups.push(() => rm(dir, { recursive: true, force: true }))
  return dir
}



/**
 * A fresh database on the test Postgres with (some of) the fleet's hosts, for tests where the
 * store's kind does not matter (a command costs ~0.3 s there, against ~1.5 s of CPU to open
 * PGlite); the embedded store is covered by the secrets test. Null without Postgres (skip).
 */
async function postgresStore(f: TestFleet | null): Promise<{ url: string; store: Store } | null> {
  database = await createTestDatabase()
  if (!database) return null
  testStore = await openTestStore('postgres', database.url)
  if (f) await registerHosts(testStore.store, f)
  return { url: database.url, store: testStore.store }
}

/** `[127.0.0.1]:port ssh-ed25519 AAAA…` → its parts. */
const parseLine = (line: string) => {
  const [hostId, keyType, key] = line.trim().split(/\s+/) as [string, string, string]
  return { hostId, keyType, key }
}

const pins = async (store: Store) =>
  Object.fromEntries(
    (await store.db.selectFrom('fleet_host_keys').selectAll().execute()).map((r) => [r.host_id, { keyType: r.key_type, key: r.key }]),
  )

// ---- 9. host keys -----------------------------------------------------------------------------

describe('host keys', () => {
  it('pinned on first use (empty known_hosts, accept-new); a changed key is refused before any command; a fixed known_hosts wins over the pin', async (t) => {
    fleet = await startTestFleet({ hosts: 3 })
    const f = fleet
    const { v1, v2, v3 } = f.origin.shas
    const pgStore = await postgresStore(f)
    if (!pgStore) return t.skip()
    const { store } = pgStore
    const databaseConfig = { url: pgStore.url, dir: '' }
    const empty = path.join(await tempDir('fleet-kh-'), 'known_hosts')
    await writeFile(empty, '')
    const base = { ssh: { knownHosts: empty, hostKeyPolicy: 'accept-new' }, rollout: { stages: [100], failureThreshold: 0.5 } }

    const first = await rollout(store, testConfig(f, databaseConfig, base))
    expect(first.exitCode).toBe(0)
    for (const h of f.hosts) await expectOn(f, h.name, v2)
    const original = Object.fromEntries(await Promise.all(f.hosts.map(async (h) => [h.name, parseLine(await f.knownHostsLine(h.name))] as const)))
    expect(await pins(store)).toEqual(Object.fromEntries(f.hosts.map((h) => [original[h.name]!.hostId, { keyType: 'ssh-ed25519', key: original[h.name]!.key }])))
    // fleet never writes the operator's known_hosts.
    expect(await readFile(empty, 'utf8')).toBe('')

    // h02 is "reinstalled" (or impersonated): new host key.
    await f.rotateHostKey('h02')
    const h02Connections = f.acceptedConnections('h02')
    const second = await rollout(store, testConfig(f, databaseConfig, base), { ref: 'v3' })
    expect(second.exitCode).toBe(4)
    const rows = Object.fromEntries((await store.listRolloutHosts(second.rolloutId)).map((r) => [r.name, r]))
    expect(rows.h02).toMatchObject({ status: 'failed', step: 'connect', previousVersion: null })
    expect(rows.h02!.error).toMatch(new RegExp(`HOST KEY MISMATCH for \\[127\\.0\\.0\\.1\\]:${f.host('h02').port}: got ssh-ed25519 SHA256:.*fleet pinned`))
    expect(rows.h01).toMatchObject({ status: 'success' })
    expect(rows.h03).toMatchObject({ status: 'success' })
    // Nothing ran on h02: not even a login.
    expect(f.acceptedConnections('h02')).toBe(h02Connections)
    await expectOn(f, 'h02', v2)
    await expectOn(f, 'h01', v3)
    await expectOn(f, 'h03', v3)
    // The pin is not replaced by the new key.
    expect((await pins(store))[original.h02!.hostId]).toEqual({ keyType: 'ssh-ed25519', key: original.h02!.key })

    // known_hosts wins over pins: the operator vouches for h02's new key, and h03's entry is wrong.
    const rotated = parseLine(await f.knownHostsLine('h02'))
    const knownHosts = path.join(path.dirname(empty), 'known_hosts.fixed')
    await writeFile(
      knownHosts,
      [
        await f.knownHostsLine('h01'),
        `${rotated.hostId} ${rotated.keyType} ${rotated.key}`,
        `${original.h03!.hostId} ssh-ed25519 ${original.h01!.key}`,
        '',
      ].join('\n'),
    )
    const h03Connections = f.acceptedConnections('h03')
    const third = await rollout(store, testConfig(f, databaseConfig, { ...base, ssh: { knownHosts, hostKeyPolicy: 'accept-new' } }), { ref: 'v1' })
    expect(third.exitCode).toBe(4)
    const rows3 = Object.fromEntries((await store.listRolloutHosts(third.rolloutId)).map((r) => [r.name, r]))
    expect(rows3.h01).toMatchObject({ status: 'success' })
    expect(rows3.h02).toMatchObject({ status: 'success' })
    expect(rows3.h03).toMatchObject({ status: 'failed', step: 'connect' })
    expect(rows3.h03!.error).toMatch(/HOST KEY MISMATCH for .*known_hosts has a different key/)
    expect(f.acceptedConnections('h03')).toBe(h03Connections)
    await expectOn(f, 'h01', v1)
    await expectOn(f, 'h02', v1)
    await expectOn(f, 'h03', v3)
  })

  it('hostKeyPolicy strict with an empty known_hosts: no host is trusted, so nothing can even be resolved → exit 1, nothing changed, nothing pinned', async (t) => {
    fleet = await startTestFleet({ hosts: 2 })
    const f = fleet
    const { v1, v2 } = f.origin.shas
    const pgStore = await postgresStore(f)
    if (!pgStore) return t.skip()
    const cwd = await workdir({
      ...fleetConfigOverrides(f, { ssh: { knownHosts: 'empty_known_hosts', hostKeyPolicy: 'strict' }, rollout: { stages: [100] } }),
      database: { url: pgStore.url },
    })
    await writeFile(path.join(cwd, 'empty_known_hosts'), '')

    // Even a commit SHA is first proven to exist on a host, and no host's key is trusted.
    for (const args of [['rollout', 'start', '--ref', v2, '--json'], ['rollout', 'start']]) {
      const run = await runFleet(args, { cwd })
      expect(run.code, args.join(' ')).toBe(1)
      expect(run.stderr).toMatch(/cannot resolve .*: no host could answer .*unknown host key for \[127\.0\.0\.1\]:\d+ \(ssh-ed25519 SHA256:.*\) and hostKeyPolicy is strict.*nothing was changed/)
    }
    for (const h of f.hosts) {
      await expectOn(f, h.name, v1)
      expect(f.acceptedConnections(h.name)).toBe(0)
    }
    expect(await pins(pgStore.store)).toEqual({})
    expect(await pgStore.store.listRollouts(10)).toEqual([])
  })
})

// ---- 10. hostile inventory values -------------------------------------------------------------

describe('hostile values in the operator’s inventory table', () => {
  it('never reach a shell: names are labels (even hostile-looking ones roll out, each to its own host), bad rows are reported and left out, a hostile app_dir is quoted and simply does not exist', async (t) => {
    const pgStore = await postgresStore(null)
    if (!pgStore) return t.skip()
    fleet = await startTestFleet({ hosts: 7 })
    const f = fleet
    const { v1, v2 } = f.origin.shas
    const marker = `/tmp/pwned-${randomBytes(6).toString('hex')}`
    const touch = `touch ${marker}`
    const lit = (v: string | null) => (v === null ? 'NULL' : `'${v.replaceAll("'", "''")}'`)
    const h = (name: string) => f.host(name)
    // name, address, port, app_dir, user (text columns, as an operator's table might have them)
    const rows: [string, string, string | null, string | null, string | null][] = [
      ['h01', '127.0.0.1', String(h('h01').port), h('h01').appDir, null],
      ['h02', '127.0.0.1', String(h('h02').port), h('h02').appDir, null],
      // Names are labels that never reach a shell: these are valid, each is a real host of its own.
      ['a;rm -rf ~', '127.0.0.1', String(h('h04').port), h('h04').appDir, null],
      [`$(${touch})`, '127.0.0.1', String(h('h05').port), h('h05').appDir, null],
      ['`' + touch + '`', '127.0.0.1', String(h('h06').port), h('h06').appDir, null],
      ['-oProxyCommand=x', '127.0.0.1', String(h('h07').port), h('h07').appDir, null],
      ['evil-address', `127.0.0.1 -oProxyCommand=${touch}`, String(h('h01').port), h('h01').appDir, null],
      ['evil-address2', `-oProxyCommand=${touch}`, String(h('h01').port), h('h01').appDir, null],
      ['evil-port', '127.0.0.1', '22; reboot', h('h01').appDir, null],
      ['evil-user', '127.0.0.1', String(h('h01').port), h('h01').appDir, `root -oProxyCommand=${touch}`],
      ['evil-relative-dir', '127.0.0.1', String(h('h01').port), `x; ${touch}`, null],
      // A syntactically valid absolute path: accepted, quoted, and it does not exist.
      ['evil-dir', '127.0.0.1', String(h('h03').port), `/tmp/x'; ${touch}; echo '`, null],
    ]
    const values = rows.map((r) => `(${r.map(lit).join(', ')})`)
    // A name with a newline, built in SQL.
    values.push(`('new' || chr(10) || 'line', '127.0.0.1', ${lit(String(h('h01').port))}, ${lit(h('h01').appDir)}, NULL)`)
    const query = `SELECT * FROM (VALUES ${values.join(',\n')}) AS t(name, address, port, app_dir, "user")`
    const cwd = await workdir({ ...fleetConfigOverrides(f, { rollout: { stages: [100], failureThreshold: 0.5 } }), inventory: { query }, database: { url: pgStore.url } })

    const run = await runFleet(['rollout', 'start'], { cwd })
    // Each bad row is named in a warning (the newline stays escaped, never a line of its own), and left out.
    const rejected = Object.fromEntries(
      [...run.stdout.matchAll(/^warning: inventory row (.*) left out: (.*)$/gm)].map((m) => [m[1]!, m[2]!]),
    )
    expect(rejected).toEqual({
      '"new\\nline"': expect.stringMatching(/^name /),
      'evil-address': expect.stringMatching(/^address .* must be a host name or an IP address/),
      'evil-address2': expect.stringMatching(/^address .* must be a host name or an IP address/),
      'evil-port': expect.stringMatching(/^port "22; reboot" must be an integer/),
      'evil-user': expect.stringMatching(/^user .* must be a POSIX user name/),
      'evil-relative-dir': expect.stringMatching(/^app_dir .* must be an absolute path/),
    })
    expect(run.stdout.split('\n').some((line) => /^line\b/.test(line))).toBe(false)
    expect(run.code).toBe(4)
    expect(existsSync(marker)).toBe(false)
    for (const name of ['h01', 'h02', 'h04', 'h05', 'h06', 'h07']) await expectOn(f, name, v2)
    // evil-dir is h03's sshd: it logged in, the version step found no such directory, nothing else ran.
    await expectOn(f, 'h03', v1)
    expect(f.acceptedConnections('h03')).toBe(1)
    // A hostile ref on the command line: bad input, nothing touched, nothing recorded.
    const connections = f.hosts.map((x) => f.acceptedConnections(x.name))
    const ref = await runFleet(['rollout', 'start', '--ref', `main;${touch}`], { cwd })
    expect(ref.code).toBe(2)
    expect(ref.stderr).toMatch(/--ref "main;touch .*" may only contain/)
    const flagRef = await runFleet(['rollout', 'start', '--ref', `--upload-pack=${touch}`], { cwd })
    expect(flagRef.code).toBe(2)
    expect(existsSync(marker)).toBe(false)
    expect(f.hosts.map((x) => f.acceptedConnections(x.name))).toEqual(connections)
    {
      const { store } = pgStore
      // Only the one real rollout was recorded.
      const [rollout, ...others] = await store.listRollouts(10)
      expect(others).toEqual([])
      const hosts = await store.listRolloutHosts(rollout!.id)
      expect(hosts.map((x) => x.name).sort()).toEqual(['$(' + touch + ')', '-oProxyCommand=x', '`' + touch + '`', 'a;rm -rf ~', 'evil-dir', 'h01', 'h02'].sort())
      const evil = hosts.find((x) => x.name === 'evil-dir')!
      expect(evil).toMatchObject({ status: 'failed', step: 'version', previousVersion: null, appDir: `/tmp/x'; ${touch}; echo '` })
      expect(evil.error).toMatch(/No such file or directory|cannot change to/)
      expect(hosts.filter((x) => x.name !== 'evil-dir').every((x) => x.status === 'success')).toBe(true)
    }

    for (const entry of readdirSync('/tmp')) expect(entry.startsWith(path.basename(marker))).toBe(false)
  })
})

// ---- 11. secrets --------------------------------------------------------------------------------

const SECRET = 'S3cretPW'

describe('secrets never appear in output or in the store', () => {
  it('a database password in --database-url, $FLEET_DATABASE_URL, $DATABASE_URL or the config file: masked in every error, plain or --json, -v', async () => {
    const cwd = await workdir({})
    const urls = [
      `postgres://fleet:${SECRET}@127.0.0.1:1/nope`, // nothing listens on port 1
      `postgresql://fleet:${SECRET}@127.0.0.1:notaport/nope`, // unparsable
      `postgres://fleet:${SECRET}@127.0.0.1:1/nope?sslmode=disable&password=${SECRET}`,
      `postgres://fleet:x@y${SECRET}@127.0.0.1:1/nope`, // an "@" inside the password
      `mysql://fleet:${SECRET}@127.0.0.1/nope`, // refused by the config check, quoted in its message
    ]
    const runs = await Promise.all(
      urls.flatMap((url, i) => [
        runFleet(['rollout', 'start', '--database-url', url], { cwd }),
        runFleet(['--json', 'rollout', 'status', '--database-url', url], { cwd }),
        runFleet(['-v', 'hosts', 'list'], { cwd, env: { FLEET_DATABASE_URL: url } }),
        runFleet(i % 2 ? ['--json', 'history'] : ['-v', '--json', 'rollback', 'h01'], { cwd, env: { DATABASE_URL: url } }),
      ]),
    )
    for (const run of runs) {
      expect(run.code).not.toBe(0)
      expect(run.stderr.length).toBeGreaterThan(0)
      expect(run.stdout + run.stderr).not.toContain(SECRET)
    }

    // In the config file, even when the file itself is broken.
    for (const text of [
      JSON.stringify({ database: { url: urls[0] } }),
      JSON.stringify({ database: { url: urls[4] } }),
      `{ "database": { "url": "${urls[0]}", } }`,
      `{ "database": { "url": "${urls[0]}", "pasword": "${SECRET}" } }`,
    ]) {
      const dir = await workdir(text)
      const run = await runFleet(['rollout', 'start', '--json'], { cwd: dir })
      expect(run.code).not.toBe(0)
      expect(run.stdout + run.stderr).not.toContain(SECRET)
    }
  })

  it('neither the SSH private key nor the database password appears in -v --json output or in any stored row', async (t) => {
    fleet = await startTestFleet({ hosts: 2 })
    const f = fleet
    const keyLines = readFileSync(f.clientKey, 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('-----'))
    expect(keyLines.length).toBeGreaterThan(2)
    const leaks = (text: string): string[] => [...keyLines.filter((l) => text.includes(l)), ...(text.includes(SECRET) ? [SECRET] : [])]

    // Embedded store: output, every table, and every file fleet wrote.
    const dir = await pgliteDir(f)
    const cwd = await workdir({ ...fleetConfigOverrides(f, { rollout: { stages: [100] } }), database: { dir } })
    const run = await runFleet(['-v', '--json', 'rollout', 'start'], { cwd })
    expect(run.code).toBe(0)
    expect(leaks(run.stdout + run.stderr)).toEqual([])
    await withPglite(dir, async (store) => {
      for (const table of ['fleet_events', 'fleet_rollouts', 'fleet_rollout_hosts', 'fleet_hosts', 'fleet_host_keys', 'fleet_lock'] as const) {
        const rows = await sql`select * from ${sql.table(table)}`.execute(store.db)
        expect(leaks(JSON.stringify(rows.rows)), table).toEqual([])
      }
      expect((await sql`select count(*)::int as n from fleet_events`.execute(store.db)).rows).toEqual([{ n: expect.any(Number) }])
    })
    const files = (root: string): string[] =>
      readdirSync(root).flatMap((entry) => {
        const p = path.join(root, entry)
        return statSync(p).isDirectory() ? files(p) : [p]
      })
    for (const file of [...files(dir), ...files(cwd)]) {
      const bytes = readFileSync(file).toString('latin1')
      expect(leaks(bytes), file).toEqual([])
    }

    // Postgres, with a password in the URL (the test server trusts local connections, so it is unused).
    database = await createTestDatabase()
    if (!database) return t.skip()
    const url = new URL(database.url)
    url.password = SECRET
    const pgCwd = await workdir(fleetConfigOverrides(f, { rollout: { stages: [100] } }))
    const env = { FLEET_DATABASE_URL: url.toString() }
    const s = await openTestStore('postgres', database.url)
    cleanups.push(() => s.close())
    await registerHosts(s.store, f)
    const pgRun = await runFleet(['-v', '--json', 'rollout', 'start', '--ref', 'v3'], { cwd: pgCwd, env })
    expect(pgRun.code).toBe(0)
    expect(leaks(pgRun.stdout + pgRun.stderr)).toEqual([])
    for (const table of ['fleet_events', 'fleet_rollouts', 'fleet_rollout_hosts', 'fleet_hosts', 'fleet_host_keys', 'fleet_lock'] as const) {
      const rows = await sql`select * from ${sql.table(table)}`.execute(s.store.db)
      expect(leaks(JSON.stringify(rows.rows)), table).toEqual([])
    }
  })
})
