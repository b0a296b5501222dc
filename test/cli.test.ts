/**
 * `fleet` as operators and cron run it: the built binary, a config file in the
 * working directory, exit codes and output checked from the outside. Rollouts run on a fresh
 * database on the real Postgres (fast); status while a rollout holds the embedded store, on PGlite.
 */
import { existsSync } from 'node:fs'
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import pg from 'pg'
import { afterEach, describe, expect, it } from 'vitest'

import { spawn } from 'node:child_process'

import { cliStore, FLEET_BIN, pgliteCopy, runFleet, type CliStore } from './support/cli.js'
import { heldStep, hold } from './support/fault-kit.js'
import { fleetConfigOverrides } from './support/harness.js'
import { createTestDatabase, type TestDatabase } from './support/postgres.js'
import { startTestFleet, type TestFleet } from './support/test-fleet.js'

let fleet: TestFleet | null = null
let database: TestDatabase | null = null
let cwd: string | null = null
let store: CliStore | null = null

afterEach(async () => {
  await database?.drop()
  await store?.drop()
  await fleet?.stop()
  if (cwd) await rm(cwd, { recursive: true, force: true })
  fleet = database = store = cwd = null
})

async function workdir(config: object | null): Promise<string> {
  cwd = await mkdtemp(path.join(os.tmpdir(), 'fleet-cli-'))
  if (config) await writeFile(path.join(cwd, 'rollout.config.json'), JSON.stringify(config, null, 2))
  return cwd
}

/** A working directory for a rollout on `f`, its store a fresh Postgres database. */
async function rolloutWorkdir(f: TestFleet): Promise<string> {
  store = await cliStore()
  return workdir({ ...fleetConfigOverrides(f), database: store.database })
}

/** Every fleet host into the hosts table, in one `hosts import` (one store open, not one per host). */
const addHosts = async (dir: string, f: TestFleet) => {
  const rows = f.hosts.map((h) => ({ name: h.name, address: h.address, port: h.port, user: h.user, app_dir: h.appDir }))
  await writeFile(path.join(dir, 'fleet-hosts.json'), JSON.stringify(rows))
  const run = await runFleet(['hosts', 'import', 'fleet-hosts.json'], { cwd: dir })
  expect(run.stderr).toBe('')
  expect(run.code).toBe(0)
  expect(run.stdout).toBe(`imported ${rows.length} host${rows.length === 1 ? '' : 's'} (${rows.length} added, 0 updated)\n`)
}

describe('bad configuration → exit 2, a message naming the problem, nothing written', () => {
  it.each([
    [{ rollout: { stages: [10, 50] } }, /rollout\.stages/],
    [{ rollout: { failureThreshold: 1.5 } }, /rollout\.failureThreshold/],
    [{ rollout: { concurency: 3 } }, /unknown key "rollout\.concurency" \(did you mean "rollout\.concurrency"\?\)/],
    [{ app: { branch: 'main;reboot' } }, /app\.branch/],
  ])('%j', async (config, message) => {
    const dir = await workdir(config)
    const run = await runFleet(['rollout', 'start'], { cwd: dir })
    expect(run.code).toBe(2)
    expect(run.stderr).toMatch(message)
    expect(run.stderr).toMatch(/rollout\.config\.json/)
    expect(await readdir(dir)).toEqual(['rollout.config.json'])
  })

  it('refuses bad flags the same way', async () => {
    const dir = await workdir(null)
    const run = await runFleet(['rollout', 'start', '--stages', '50,10,100'], { cwd: dir })
    expect(run.code).toBe(2)
    expect(run.stderr).toMatch(/stages/)
    expect(existsSync(path.join(dir, '.fleet'))).toBe(false)
  })

  it('refuses an invalid host without adding it', async () => {
    const dir = await workdir({})
    const run = await runFleet(['hosts', 'add', 'evil', '127.0.0.1;rm -rf ~'], { cwd: dir })
    expect(run.code).toBe(2)
    expect(run.stderr).toMatch(/address "127\.0\.0\.1;rm -rf ~" must be a host name or an IP address/)
    const list = await runFleet(['hosts', 'list', '--json'], { cwd: dir })
    expect(JSON.parse(list.stdout).hosts).toEqual([])
  })
})

describe('rollout start / status through the binary', () => {
  it('dry-run prints the plan and changes nothing; a real run exits 0; status --json has the design shape', async () => {
    fleet = await startTestFleet({ hosts: 4 })
    const dir = await rolloutWorkdir(fleet)
    await addHosts(dir, fleet)

    const dry = await runFleet(['rollout', 'start', '--dry-run', '--json', '--seed', 's1'], { cwd: dir })
    expect(dry.code).toBe(0)
    const plan = JSON.parse(dry.stdout)
    expect(plan.target).toEqual({ ref: 'main', sha: fleet.origin.shas.v2 })
    expect(plan.stages.map((s: { hosts: string[] }) => s.hosts.length)).toEqual([1, 1, 2])
    for (const h of fleet.hosts) expect(await fleet.head(h.name)).toBe(fleet.origin.shas.v1)

    const run = await runFleet(['rollout', 'start', '--json', '--seed', 's1'], { cwd: dir })
    expect(run.code).toBe(0)
    const events = run.stdout.trim().split('\n').map((l) => JSON.parse(l))
    expect(events[0]).toMatchObject({ type: 'rollout-started', sha: fleet.origin.shas.v2, hosts: 4 })
    expect(events.at(-1)).toMatchObject({ type: 'rollout-finished', state: 'completed', exitCode: 0 })
    // The dry run's canaries are the real run's canaries (same seed).
    expect(events.filter((e) => e.type === 'stage-started').map((e) => e.hosts)).toEqual(plan.stages.map((s: { hosts: string[] }) => s.hosts))

    const status = await runFleet(['rollout', 'status', '--json'], { cwd: dir })
    expect(status.code).toBe(0)
    const s = JSON.parse(status.stdout)
    expect(s).toMatchObject({
      id: events[0].rolloutId,
      state: 'completed',
      target: { ref: 'main', sha: fleet.origin.shas.v2 },
      stages: [10, 50, 100],
      currentStage: 2,
      counts: { success: 4, failed: 0, rolled_back: 0, rollback_failed: 0, skipped: 0, pending: 0, updating: 0 },
    })
    expect(s.hosts).toHaveLength(4)
    expect(s.hosts[0]).toEqual(
      expect.objectContaining({ status: 'success', previousVersion: fleet.origin.shas.v1, newVersion: fleet.origin.shas.v2, error: null }),
    )
    expect(typeof s.startedAt).toBe('string')
    expect(typeof s.finishedAt).toBe('string')
  })

  it('a crashing release halts the rollout → exit 3, plain lines without a TTY', async () => {
    fleet = await startTestFleet({ hosts: 3 })
    const dir = await rolloutWorkdir(fleet)
    await addHosts(dir, fleet)
    const run = await runFleet(['rollout', 'start', '--ref', 'crash'], { cwd: dir })
    expect(run.code).toBe(3)
    expect(run.stdout).toMatch(/rolled_back/)
    expect(run.stdout).toMatch(/HALTED/)
    expect(run.stdout).toMatch(/ exit 3: halted/)
    expect(run.stdout).not.toMatch(/\x1b\[/)
  })

  it('an unknown ref is bad input → exit 2, no rollout recorded', async () => {
    fleet = await startTestFleet({ hosts: 1 })
    const dir = await rolloutWorkdir(fleet)
    await addHosts(dir, fleet)
    const run = await runFleet(['rollout', 'start', '--ref', 'no-such-branch'], { cwd: dir })
    expect(run.code).toBe(2)
    expect(run.stderr).toMatch(/ref "no-such-branch" was not found/)
    const status = await runFleet(['rollout', 'status'], { cwd: dir })
    expect(status.code).toBe(0)
    expect(status.stdout).toBe('no rollouts yet\n')
  })
})

describe('a host that was really reinstalled', () => {
  it('fails on its changed key until the operator forgets the pin, then rolls out', async () => {
    fleet = await startTestFleet({ hosts: 1 })
    store = await cliStore()
    const dir = await workdir({ ...fleetConfigOverrides(fleet, { ssh: { knownHosts: 'known_hosts' } }), database: store.database })
    await writeFile(path.join(dir, 'known_hosts'), '')
    await addHosts(dir, fleet)
    expect((await runFleet(['rollout', 'start'], { cwd: dir })).code).toBe(0) // pins the key
    await fleet.rotateHostKey('h01')
    // Even a commit SHA is first proven to exist on a canary: the only host refuses the connection,
    // so nothing can be resolved and nothing changes (exit 1), naming the mismatch and the way out.
    const refused = await runFleet(['rollout', 'start', '--ref', fleet.origin.shas.v3], { cwd: dir })
    expect(refused.code).toBe(1)
    expect(refused.stderr).toMatch(/HOST KEY MISMATCH.*fleet hosts forget-key <host>.*nothing was changed/)
    expect(await fleet.head('h01')).toBe(fleet.origin.shas.v2)

    const forget = await runFleet(['hosts', 'forget-key', 'h01'], { cwd: dir })
    expect(forget.code).toBe(0)
    expect(forget.stdout).toMatch(/forgot the pinned key of h01/)
    expect((await runFleet(['rollout', 'start', '--ref', 'v3'], { cwd: dir })).code).toBe(0)
    expect(await fleet.head('h01')).toBe(fleet.origin.shas.v3)
  })
})

describe('status from another shell while a rollout holds the embedded store', () => {
  it('reads the snapshot the running rollout keeps next to PGlite', async () => {
    fleet = await startTestFleet({ hosts: 3 })
    // The default embedded store (./.fleet), a migrated copy rather than an initdb here; every install waits (heldStep) until status has been asked.
    const dir = await workdir(fleetConfigOverrides(fleet, { steps: { install: heldStep('bun install') }, rollout: { stages: [100] } }))
    await pgliteCopy(path.join(dir, '.fleet'))
    await addHosts(dir, fleet)
    await hold(fleet, true)
    const child = spawn(process.execPath, [FLEET_BIN, 'rollout', 'start', '--json'], { cwd: dir, env: { PATH: process.env.PATH, HOME: process.env.HOME } })
    let out = ''
    const finished = new Promise<number | null>((resolve) => child.on('close', resolve))
    // Wait until every host is in its (held) install, then ask from "another shell".
    await new Promise<void>((resolve) => {
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString()
        if ((out.match(/"step":"install"/g) ?? []).length === 3) resolve()
      })
    })
    await new Promise((r) => setTimeout(r, 1_200)) // the snapshot is refreshed every second
    const status = await runFleet(['rollout', 'status', '--json'], { cwd: dir })
    expect(status.code).toBe(0)
    expect(status.stderr).toMatch(/snapshot/)
    const s = JSON.parse(status.stdout)
    expect(s.state).toBe('running')
    expect(s.counts.updating).toBe(3)
    await hold(fleet, false)
    expect(await finished).toBe(0)
    const after = JSON.parse((await runFleet(['rollout', 'status', '--json'], { cwd: dir })).stdout)
    expect(after).toMatchObject({ id: s.id, state: 'completed', counts: { success: 3 } })
  })
})

describe('inventory from the operator’s own tables (inventory.query on real Postgres)', () => {
  it('rolls out to active, provisioned customers only; reports a malformed row by name', async (t) => {
    database = await createTestDatabase()
    if (!database) return t.skip()
    fleet = await startTestFleet({ hosts: 5 })
    const client = new pg.Client({ connectionString: database.url })
    await client.connect()
    try {
      await client.query(`
        CREATE TABLE users (id serial PRIMARY KEY, email text NOT NULL, status text NOT NULL);
        CREATE TABLE subscriptions (
          id serial PRIMARY KEY, user_id int REFERENCES users(id), status text NOT NULL,
          provisioned boolean NOT NULL, vps_hostname text, vps_ip text, ssh_port int, app_path text);`)
      const rows: [string, string, string, boolean][] = [
        ['h01', 'active', 'active', true],
        ['h02', 'active', 'canceled', true], // subscription canceled: never touched
        ['h03', 'active', 'active', true],
        ['h04', 'active', 'active', false], // not provisioned yet: never touched
        ['h05', 'suspended', 'active', true], // user suspended: never touched
      ]
      for (const [name, userStatus, subStatus, provisioned] of rows) {
        const h = fleet.host(name)
        const user = await client.query('INSERT INTO users (email, status) VALUES ($1, $2) RETURNING id', [`${name}@example.com`, userStatus])
        await client.query(
          'INSERT INTO subscriptions (user_id, status, provisioned, vps_hostname, vps_ip, ssh_port, app_path) VALUES ($1,$2,$3,$4,$5,$6,$7)',
          [user.rows[0].id, subStatus, provisioned, name, h.address, h.port, h.appDir],
        )
      }
      const evil = await client.query(`INSERT INTO users (email, status) VALUES ('evil@example.com', 'active') RETURNING id`)
      await client.query(
        `INSERT INTO subscriptions (user_id, status, provisioned, vps_hostname, vps_ip, ssh_port, app_path) VALUES ($1, 'active', true, 'evil', '127.0.0.1; touch /tmp/fleet-pwned', 22, '/tmp')`,
        [evil.rows[0].id],
      )
    } finally {
      await client.end()
    }
    const query = `SELECT s.vps_hostname AS name, s.vps_ip AS address, s.ssh_port AS port, s.app_path AS app_dir
      FROM subscriptions s JOIN users u ON u.id = s.user_id
      WHERE u.status = 'active' AND s.status = 'active' AND s.provisioned ORDER BY s.id`
    const dir = await workdir({ ...fleetConfigOverrides(fleet), inventory: { query } })
    const env = { FLEET_DATABASE_URL: database.url }

    const list = await runFleet(['hosts', 'list', '--json'], { cwd: dir, env })
    expect(list.code).toBe(0)
    const listed = JSON.parse(list.stdout)
    expect(listed.hosts.map((h: { name: string }) => h.name)).toEqual(['h01', 'h03'])
    expect(listed.rejected).toEqual([{ name: 'evil', reason: expect.stringMatching(/address .* must be a host name or an IP address/) }])

    const run = await runFleet(['rollout', 'start', '--stages', '100'], { cwd: dir, env })
    expect(run.stdout + run.stderr).toMatch(/inventory row evil left out: address/)
    expect(run.code).toBe(0)
    expect(existsSync('/tmp/fleet-pwned')).toBe(false)
    for (const name of ['h01', 'h03']) expect(await fleet.head(name)).toBe(fleet.origin.shas.v2)
    for (const name of ['h02', 'h04', 'h05']) {
      expect(await fleet.head(name)).toBe(fleet.origin.shas.v1)
      expect(fleet.acceptedConnections(name)).toBe(0)
    }
  })

  it('refuses a query that tries to write', async (t) => {
    database = await createTestDatabase()
    if (!database) return t.skip()
    const dir = await workdir({ inventory: { query: 'WITH x AS (DELETE FROM fleet_hosts RETURNING *) SELECT name, address FROM x' } })
    const run = await runFleet(['hosts', 'list'], { cwd: dir, env: { FLEET_DATABASE_URL: database.url } })
    expect(run.code).toBe(2)
    expect(run.stderr).toMatch(/read-only transaction/)
  })
})
