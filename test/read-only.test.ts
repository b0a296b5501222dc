/**
 * Read-only commands (`hosts list`, `history`, `rollout status`) on the embedded store, through the
 * built binary: they never create a store; they work from another shell while a real rollout holds
 * PGlite (from the snapshot it keeps, saying when and by which pid it was written); they wait for a
 * short holder; and a snapshot left at close is used only while the store was not opened since.
 */
import { existsSync } from 'node:fs'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { sql } from 'kysely'
import { afterEach, describe, expect, it } from 'vitest'

import { pgliteCopy, runFleet } from './support/cli.js'
import { heldStep, hold, killSpawned, spawnFleet, withPglite } from './support/fault-kit.js'
import { fleetConfigOverrides, seedRollout } from './support/harness.js'
import { startTestFleet, type TestFleet } from './support/test-fleet.js'

let fleet: TestFleet | null = null
const dirs: string[] = []
afterEach(async () => {
  killSpawned()
  await fleet?.stop()
  fleet = null
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true })
})

const tempDir = async (prefix: string) => {
  const d = await mkdtemp(path.join(os.tmpdir(), prefix))
  dirs.push(d)
  return d
}

describe('no store yet', () => {
  it('read-only commands create nothing, say where they looked, and print an empty result (exit 0)', async () => {
    const configDir = await tempDir('fleet-ro-config-')
    const elsewhere = await tempDir('fleet-ro-cwd-')
    const store = path.join(configDir, 'state', '.fleet')
    const config = path.join(configDir, 'rollout.config.json')
    await writeFile(config, JSON.stringify({ database: { dir: store } }))
    const fleet = (...args: string[]) => runFleet(['--config', config, ...args], { cwd: elsewhere })

    // At once: none of them may create the store, so none waits for another.
    const [hosts, hostsJson, history, historyJson, status, statusJson] = await Promise.all([
      fleet('hosts', 'list'),
      fleet('hosts', 'list', '--json'),
      fleet('history'),
      fleet('history', '--json'),
      fleet('rollout', 'status'),
      fleet('rollout', 'status', '--json'),
    ])
    const runs = { hosts: hosts!, hostsJson: hostsJson!, history: history!, historyJson: historyJson!, status: status!, statusJson: statusJson! }
    for (const [name, run] of Object.entries(runs)) {
      expect(run.code, `${name}: ${run.stderr}`).toBe(0)
      expect(run.stderr, name).toContain(`no fleet store at ${store} yet (nothing has run here)`)
    }
    expect(runs.hosts.stdout).toBe('0 host(s) in the fleet hosts table\n')
    expect(JSON.parse(runs.hostsJson.stdout)).toEqual({ source: 'hosts-table', hosts: [] })
    expect(runs.history.stdout).toBe('no rollouts yet\n')
    expect(JSON.parse(runs.historyJson.stdout)).toEqual([])
    expect(runs.status.stdout).toBe('no rollouts yet\n')
    expect(runs.statusJson.stdout).toBe('null\n')
    expect(existsSync(path.join(configDir, 'state'))).toBe(false)
    expect(existsSync(path.join(elsewhere, '.fleet'))).toBe(false)

    // An unknown id is still bad input.
    const unknown = await fleet('rollout', 'status', 'no-such-id')
    expect(unknown.code).toBe(2)
    expect(unknown.stderr).toMatch(/no rollout with id no-such-id/)
  })
})

describe('while a real rollout holds the embedded store', () => {
  it('hosts list, history and rollout status answer from its snapshot, naming the pid and the time', async () => {
    fleet = await startTestFleet({ hosts: 3 })
    const f = fleet
    const cwd = await tempDir('fleet-ro-')
    const storeDir = await pgliteCopy(path.join(cwd, '.fleet')) // a migrated copy: no initdb here
    await writeFile(
      path.join(cwd, 'rollout.config.json'),
      // Every host's install waits (heldStep) until the reads below are done: the rollout holds the store meanwhile, however loaded the machine.
      JSON.stringify({ ...fleetConfigOverrides(f, { steps: { install: heldStep('bun install') }, rollout: { stages: [100] } }), database: { dir: storeDir } }),
    )
    const rows = f.hosts.map((h) => ({ name: h.name, address: h.address, port: h.port, user: h.user, app_dir: h.appDir }))
    await writeFile(path.join(cwd, 'hosts.json'), JSON.stringify(rows))
    const add = await runFleet(['hosts', 'import', 'hosts.json'], { cwd })
    expect(add.code, add.stderr).toBe(0)
    expect(add.stdout).toBe('imported 3 hosts (3 added, 0 updated)\n')
    // An older rollout, written behind fleet's back (no snapshot): the next read must not trust the old one.
    await withPglite(storeDir, (store) =>
      seedRollout(
        store,
        { id: 'older', state: 'completed', ref: 'main', sha: f.origin.shas.v1, stages: [100], seed: 's', currentStage: 0, settings: {}, owner: 'ops@x pid 1', startedAt: new Date(Date.now() - 86_400_000), finishedAt: new Date(Date.now() - 86_000_000), heartbeatAt: new Date(Date.now() - 86_000_000), exitCode: 0, error: null },
        [],
      ),
    )

    await hold(f, true)
    const rollout = spawnFleet(['rollout', 'start', '--json'], { cwd })
    const installing = new Set<string>()
    await rollout.waitFor((e) => {
      if (e.type === 'host-step' && e.step === 'install') installing.add(String(e.host))
      return installing.size === 3
    })
    await new Promise((r) => setTimeout(r, 1_200)) // the holder's snapshot is refreshed every second

    const held = new RegExp(`embedded store ${storeDir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is in use by pid ${rollout.pid} on ${os.hostname()} \\(fleet rollout start --json\\); showing the snapshot it wrote at \\S+Z \\(\\S+ ago\\)`)
    const hosts = await runFleet(['hosts', 'list', '--json'], { cwd })
    expect(hosts.code, hosts.stderr).toBe(0)
    expect(hosts.stderr).toMatch(held)
    expect(JSON.parse(hosts.stdout).hosts.map((h: { name: string }) => h.name)).toEqual(f.hosts.map((h) => h.name))

    const human = await runFleet(['hosts', 'list'], { cwd })
    expect(human.code, human.stderr).toBe(0)
    expect(human.stdout).toMatch(/^3 host\(s\) in the fleet hosts table$/m)

    const history = await runFleet(['history', '--json'], { cwd })
    expect(history.code, history.stderr).toBe(0)
    expect(history.stderr).toMatch(held)
    const entries = JSON.parse(history.stdout) as { id: string; state: string; counts: Record<string, number> }[]
    expect(entries.map((e) => e.state)).toEqual(['running', 'completed'])
    expect(entries[0]!.counts.updating).toBe(3)
    expect(entries[1]!.id).toBe('older')

    const status = await runFleet(['rollout', 'status', '--json'], { cwd })
    expect(status.code, status.stderr).toBe(0)
    expect(status.stderr).toMatch(held)
    const running = JSON.parse(status.stdout)
    expect(running).toMatchObject({ id: entries[0]!.id, state: 'running', counts: { updating: 3 }, orchestrator: 'live' })

    // A holder frozen (SIGSTOP) past the lease's TTL writes no more snapshots: its status is `gone`, and ages keep growing.
    rollout.kill('SIGSTOP')
    const file = path.join(storeDir, 'snapshot.json')
    const snap = JSON.parse(await readFile(file, 'utf8')) as { writtenAt: string }
    await writeFile(file, JSON.stringify({ ...snap, writtenAt: new Date(Date.now() - 40_000).toISOString() }))
    const frozen = await runFleet(['rollout', 'status', '--json'], { cwd })
    rollout.kill('SIGCONT')
    expect(frozen.code, frozen.stderr).toBe(0)
    const gone = JSON.parse(frozen.stdout) as { orchestrator: string; readAt: string }
    expect(gone.orchestrator).toBe('gone')
    expect(Date.parse(gone.readAt)).toBeGreaterThan(Date.parse(snap.writtenAt))

    // Only the latest rollout is in the snapshot: an older one waits for the store (exit 6, saying why).
    const older = await runFleet(['rollout', 'status', 'older'], { cwd })
    expect(older.code).toBe(6)
    expect(older.stderr).toMatch(new RegExp(`in use by pid ${rollout.pid}.*only the latest rollout \\(${running.id}\\) can be shown`))

    await hold(f, false)
    expect((await rollout.exited).code).toBe(0)
    // Once it is done: exact data, no note (the snapshot left at close, or the store itself).
    const after = await runFleet(['history', '--json'], { cwd })
    expect(after.stderr).toBe('')
    expect((JSON.parse(after.stdout) as { state: string }[]).map((e) => e.state)).toEqual(['completed', 'completed'])
    const olderAfter = await runFleet(['rollout', 'status', 'older', '--json'], { cwd })
    expect(olderAfter.code, olderAfter.stderr).toBe(0)
    expect(JSON.parse(olderAfter.stdout)).toMatchObject({ id: 'older', state: 'completed' })
  })
})

describe('the snapshot left at close', () => {
  it('is used only while the store was not opened since; a short holder is waited for', async () => {
    const cwd = await tempDir('fleet-ro-')
    const storeDir = await pgliteCopy(path.join(cwd, '.fleet'))
    await writeFile(path.join(cwd, 'rollout.config.json'), JSON.stringify({ database: { dir: storeDir } }))
    const fleet = (...args: string[]) => runFleet(args, { cwd })
    expect(existsSync(path.join(storeDir, 'snapshot.json'))).toBe(false)
    expect((await fleet('hosts', 'add', 'web-1', '10.0.0.1')).code).toBe(0)
    expect(existsSync(path.join(storeDir, 'snapshot.json'))).toBe(true)
    const names = async () => (JSON.parse((await fleet('hosts', 'list', '--json')).stdout).hosts as { name: string }[]).map((h) => h.name)
    expect(await names()).toEqual(['web-1'])

    // Changed by a process that leaves no snapshot (the tests' own store access): the old one is not trusted.
    await withPglite(storeDir, (store) => store.upsertHosts([{ name: 'web-2', address: '10.0.0.2' }]))
    expect(await names()).toEqual(['web-1', 'web-2'])
    expect(await names()).toEqual(['web-1', 'web-2'])

    // A holder without a snapshot that has opened the store (a short command) is waited for, not refused.
    let released = 0
    let inserted: () => void = () => {}
    const changed = new Promise<void>((resolve) => (inserted = resolve))
    const holder = withPglite(storeDir, async (store) => {
      await store.upsertHosts([{ name: 'web-3', address: '10.0.0.3' }])
      inserted()
      await new Promise((r) => setTimeout(r, 1_500))
      released = Date.now()
    })
    await changed
    const run = await fleet('hosts', 'list', '--json')
    const answered = Date.now()
    await holder
    expect(run.code, run.stderr).toBe(0)
    expect(answered).toBeGreaterThanOrEqual(released)
    expect(JSON.parse(run.stdout).hosts).toHaveLength(3)
  })
})

describe('hosts list with inventory.query on the embedded store', () => {
  it('answers from the snapshot exactly as from the store, and only for the same query', async () => {
    const cwd = await tempDir('fleet-ro-query-')
    const storeDir = await pgliteCopy(path.join(cwd, '.fleet'))
    await withPglite(storeDir, async (store) => {
      await sql`create table vps (id serial primary key, label text not null, ip text not null, ssh_port int)`.execute(store.db)
      await sql`insert into vps (label, ip, ssh_port) values ('alice@example.com', '10.0.0.1', 2222), ('bad row', '1:2', 22)`.execute(store.db)
    })
    const query = 'select label as name, ip as address, ssh_port as port from vps order by id'
    const config = (q: string) => writeFile(path.join(cwd, 'rollout.config.json'), JSON.stringify({ database: { dir: storeDir }, inventory: { query: q } }))
    await config(query)
    const first = await runFleet(['hosts', 'list', '--json'], { cwd }) // opens the store, leaves a snapshot
    const second = await runFleet(['hosts', 'list', '--json'], { cwd }) // from the snapshot
    expect(first.code, first.stderr).toBe(0)
    expect(second).toMatchObject({ code: 0, stdout: first.stdout, stderr: '' })
    const listed = JSON.parse(first.stdout) as { source: string; hosts: { name: string; port: number }[]; rejected: { name: string }[] }
    expect(listed.source).toBe('query')
    expect(listed.hosts.map((h) => [h.name, h.port])).toEqual([['alice@example.com', 2222]])
    expect(listed.rejected.map((r) => r.name)).toEqual(['bad row'])

    // Another query: the snapshot does not hold its result, so the store answers it.
    await config('select label as name, ip as address from vps where ssh_port = 22')
    const other = await runFleet(['hosts', 'list', '--json'], { cwd })
    expect(other.code, other.stderr).toBe(0)
    expect(JSON.parse(other.stdout).hosts).toEqual([])
    expect(JSON.parse(other.stdout).rejected.map((r: { name: string }) => r.name)).toEqual(['bad row'])
  })
})
