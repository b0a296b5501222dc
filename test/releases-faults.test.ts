/**
 * Release directories under faults, for real on the sshd fleet (issue 18): the orchestrator (the
 * built binary) SIGKILLed while a host prepares (its own update, then a later stage's prepare-ahead)
 * and while it switches (the symlink renamed, the restart not run), then `fleet rollout resume`; a
 * disk full during the install (a real ENOSPC, from /dev/full); a kept release removed by hand before
 * a rollback and before an update; a plain checkout in a releases fleet; retention under an
 * unfinished rollout; the in-place guard, and a host moved back to in place by following docs/config.md.
 * Every case ends with every host on one recorded release that is what really runs: the app dir's
 * symlink (or checkout) and the service's commit.
 */
import { existsSync, readFileSync } from 'node:fs'
import { lstat, readFile, readlink, rm, stat, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { sql } from 'kysely'
import { afterEach, describe, expect, it } from 'vitest'

import { makeExecutor } from '../src/cli/context.js'
import type { FleetConfig } from '../src/config/types.js'
import { systemClock } from '../src/rollout/clock.js'
import type { RolloutEvent } from '../src/rollout/events.js'
import { hostSettings } from '../src/rollout/from-config.js'
import { formatPlainEvent } from '../src/render/plain.js'
import { rollbackOneHost } from '../src/rollout/rollback.js'
import type { Store } from '../src/store/store.js'
import { runFleet } from './support/cli.js'
import { killSpawned, runCleanups, spawnFleet, until, workdir } from './support/fault-kit.js'
import { fleetConfigOverrides, openTestStore, registerHosts, rollout, testConfig, type TestStore } from './support/harness.js'
import { createTestDatabase, type TestDatabase } from './support/postgres.js'
import { startTestFleet, type TestFleet } from './support/test-fleet.js'

let fleet: TestFleet | null = null
let testStore: TestStore | null = null
let database: TestDatabase | null = null

afterEach(async () => {
  killSpawned()
  await testStore?.close().catch(() => {})
  await runCleanups()
  await database?.drop()
  await fleet?.stop()
  fleet = testStore = database = null
})

/** A fresh Postgres database and a store on it; null when there is no Postgres (the test skips). */
async function postgres(): Promise<Store | null> {
  database = await createTestDatabase()
  if (!database) return null
  testStore = await openTestStore('postgres', database.url)
  return testStore.store
}

/** A 2-host sshd fleet and a fresh Postgres store, the hosts registered unless told otherwise (null: no Postgres, outside CI). */
async function releasesFleet(register = true): Promise<{ store: Store; f: TestFleet } | null> {
  const store = await postgres()
  if (!store) return null
  fleet = await startTestFleet({ hosts: 2 })
  if (register) await registerHosts(store, fleet)
  return { store, f: fleet }
}

/** A config directory for the built binary: the fleet on release directories, the file's Postgres store. */
const releasesWorkdir = (f: TestFleet, extra: Parameters<typeof fleetConfigOverrides>[1]) =>
  workdir({ ...fleetConfigOverrides(f, { ...extra, app: { layout: 'releases', keepReleases: 2 } }), database: { url: database!.url } })

/**
 * A step held while the host's faults/hold-<name> file exists (its pid in hold-<name>.pid while it
 * waits), then `command`. Unlike fault-kit's heldStep it gives up once its SSH session is gone, so a
 * step orphaned by a SIGKILLed orchestrator never runs later beside the resumed one.
 */
const held = (name: string, command: string): string =>
  `f="$FLEET_SIM_HOST/faults/hold-${name}"; p=$PPID; echo $$ > "$f.pid"; ` +
  `while [ -e "$f" ]; do s=$(sed 's/^.*) //' /proc/$p/stat 2>/dev/null | cut -c1); if [ -z "$s" ] || [ "$s" = Z ]; then rm -f "$f.pid"; exit 1; fi; sleep 0.05; done; ` +
  `rm -f "$f.pid"; ${command}`
const holdFile = (f: TestFleet, host: string, name: string) => path.join(f.host(host).dir, 'faults', `hold-${name}`)
const setHold = async (f: TestFleet, host: string, name: string, on: boolean) =>
  on ? writeFile(holdFile(f, host, name), '') : rm(holdFile(f, host, name), { force: true })
const waitingIn = (f: TestFleet, host: string, name: string) => existsSync(`${holdFile(f, host, name)}.pid`)
/** The orphaned held step noticed its session is gone and left (or never waited). */
async function orphanGone(f: TestFleet, host: string, name: string): Promise<void> {
  await until(`the orphaned ${name} step on ${host} to give up`, () => {
    try {
      const pid = Number(readFileSync(`${holdFile(f, host, name)}.pid`, 'utf8').trim())
      process.kill(pid, 0)
      return false
    } catch {
      return true
    }
  })
}

const liveOf = async (f: TestFleet, name: string) => path.basename(await readlink(f.host(name).appDir))
const servicePid = async (f: TestFleet, name: string) => (await readFile(path.join(f.host(name).dir, 'run', 'service.pid'), 'utf8')).trim()
const releasesOf = (f: TestFleet, name: string) => `${f.host(name).appDir}.releases`

/** Every host of the rollout terminal, on one recorded release that is the one live (symlink) and running, in both tables. */
async function expectSettled(f: TestFleet, store: Store, rolloutId: string): Promise<void> {
  const inventory = await store.listHosts()
  for (const row of await store.listRolloutHosts(rolloutId)) {
    expect(['success', 'failed', 'rolled_back', 'skipped'], `${row.name} is ${row.status}`).toContain(row.status)
    const live = await liveOf(f, row.name)
    expect(row.newVersion, `${row.name}: recorded vs live`).toBe(live)
    expect(await f.service(row.name), `${row.name}: the service`).toEqual({ running: true, sha: live })
    expect(inventory.find((h) => h.name === row.name)?.currentVersion, `${row.name}: hosts table`).toBe(live)
  }
}

describe('a note on a step', () => {
  it('is shown without --verbose, sanitised; a step without one is not', () => {
    const step = { type: 'host-step', rolloutId: 'r1', stage: 0, host: 'h01', step: 'fetch', phase: 'rollback', at: '2026-01-01T00:00:00Z' } as const
    expect(formatPlainEvent(step, { color: false, verbose: false, timestamps: false })).toBeNull()
    expect(formatPlainEvent({ ...step, note: 'release abc is not kept on this host\u001b[2J: preparing it again' }, { color: false, verbose: false, timestamps: false })).toBe(
      '  h01 rollback fetch: release abc is not kept on this host: preparing it again',
    )
  })
})

describe('the orchestrator SIGKILLed with release directories (the built binary, Postgres)', () => {
  it('during prepare (a host’s own update, then a later stage’s prepare-ahead): nothing live changes; resume settles every host on the target', async (t) => {
    const env = await releasesFleet()
    if (!env) return t.skip()
    const { store, f } = env
    const { v1, v2 } = f.origin.shas
    const cwd = await releasesWorkdir(f, { rollout: { stages: [50, 100], concurrency: 2, stageDelay: '3s' }, steps: { install: held('install', 'bun install') } })
    const pids = { h01: await servicePid(f, 'h01'), h02: await servicePid(f, 'h02') }
    for (const h of ['h01', 'h02']) await setHold(f, h, 'install', true)

    // 1. Killed while the canary's own update installs the new release.
    const first = spawnFleet(['rollout', 'start', '--json'], { cwd })
    const rolloutId = (await first.waitFor((e) => e.type === 'rollout-started')).rolloutId as string
    const [canary] = (await first.waitFor((e) => e.type === 'stage-started' && e.stage === 0)).hosts as string[]
    const later = canary === 'h01' ? 'h02' : 'h01'
    await until('the canary’s install to wait', () => waitingIn(f, canary!, 'install'))
    first.kill('SIGKILL')
    expect((await first.exited).signal).toBe('SIGKILL')
    await orphanGone(f, canary!, 'install')
    expect((await store.listRolloutHosts(rolloutId)).find((r) => r.name === canary)).toMatchObject({ status: 'updating', previousVersion: v1 })
    for (const h of ['h01', 'h02'] as const) expect(await servicePid(f, h)).toBe(pids[h]) // nothing restarted
    expect(await liveOf(f, canary!)).toBe(v1) // migrated (a rename) and still live; the new release unfinished beside it
    expect(existsSync(`${releasesOf(f, canary!)}/${v2}.ready`)).toBe(false)

    // 2. Resumed: the canary is found untouched and updated again; killed while the later host prepares ahead.
    await setHold(f, canary!, 'install', false)
    const second = spawnFleet(['rollout', 'resume', '--json'], { cwd })
    await second.waitFor((e) => e.type === 'host-finished' && e.host === canary && e.status === 'success')
    await until('the later stage’s preparation to wait', () => waitingIn(f, later, 'install'))
    second.kill('SIGKILL')
    await second.exited
    await orphanGone(f, later, 'install')
    expect((await store.listRolloutHosts(rolloutId)).find((r) => r.name === later)).toMatchObject({ status: 'pending' })
    expect(await servicePid(f, later)).toBe(pids[later as 'h01' | 'h02'])
    expect(await liveOf(f, later)).toBe(v1)
    expect((await stat(`${releasesOf(f, later)}/${v2}`)).isDirectory()).toBe(true) // half-prepared, not ready
    expect(existsSync(`${releasesOf(f, later)}/${v2}.ready`)).toBe(false)

    // 3. Resumed again: the half-made preparation is made again, then activated.
    await setHold(f, later, 'install', false)
    const third = await runFleet(['rollout', 'resume', '--json'], { cwd })
    expect(third.stderr).toBe('')
    expect(third.code).toBe(0)
    expect(await store.getRollout(rolloutId)).toMatchObject({ state: 'completed', exitCode: 0 })
    for (const row of await store.listRolloutHosts(rolloutId)) expect(row).toMatchObject({ status: 'success', previousVersion: v1, newVersion: v2 })
    await expectSettled(f, store, rolloutId)
    for (const h of ['h01', 'h02']) expect(existsSync(`${releasesOf(f, h)}/${v2}.ready`)).toBe(true)
  }, 60_000)

  it('during the switch (the symlink already on the new release, the restart not run): resume restarts and verifies it', async (t) => {
    const env = await releasesFleet()
    if (!env) return t.skip()
    const { store, f } = env
    const { v1, v2 } = f.origin.shas
    const cwd = await releasesWorkdir(f, { rollout: { stages: [100], concurrency: 2 }, steps: { restart: held('restart', 'sudo systemctl restart {service}') } })
    await setHold(f, 'h01', 'restart', true)
    const child = spawnFleet(['rollout', 'start', '--json'], { cwd })
    const rolloutId = (await child.waitFor((e) => e.type === 'rollout-started')).rolloutId as string
    await child.waitFor((e) => e.type === 'host-finished' && e.host === 'h02')
    await until('h01’s restart to wait', () => waitingIn(f, 'h01', 'restart'))
    child.kill('SIGKILL')
    await child.exited
    await orphanGone(f, 'h01', 'restart')
    // What the crash left: switched, not restarted (the old release still runs).
    expect(await liveOf(f, 'h01')).toBe(v2)
    expect(await f.service('h01')).toEqual({ running: true, sha: v1 })
    expect((await store.listRolloutHosts(rolloutId)).find((r) => r.name === 'h01')).toMatchObject({ status: 'updating', previousVersion: v1 })

    await setHold(f, 'h01', 'restart', false)
    const resume = await runFleet(['rollout', 'resume', '--json'], { cwd })
    expect(resume.stderr).toBe('')
    expect(resume.code).toBe(0)
    expect(await store.listRolloutHosts(rolloutId)).toEqual(expect.arrayContaining([expect.objectContaining({ name: 'h01', status: 'success', newVersion: v2 })]))
    await expectSettled(f, store, rolloutId)
  }, 60_000)
})

describe('one releases fleet through disk full, releases removed by hand, retention under an unfinished rollout, and back to in place', () => {
  it('each host ends on one recorded release that is what runs', async (t) => {
    const env = await releasesFleet(false)
    if (!env) return t.skip()
    const { store, f } = env
    const { v1, v2, v3, slow } = f.origin.shas
    const diskFull = `if [ -e "$FLEET_SIM_HOST/faults/disk-full" ]; then cat package.json > /dev/full; fi && bun install`
    const config = testConfig(f, testStore!.databaseConfig, {
      rollout: { stages: [100] },
      app: { layout: 'releases', keepReleases: 2, shared: ['.env'] },
      steps: { install: diskFull },
    })
    const run = async (ref: string, c: FleetConfig = config) => {
      const result = await rollout(store, c, { ref })
      return { ...result, row: async (name: string) => (await store.listRolloutHosts(result.rolloutId)).find((r) => r.name === name)! }
    }
    const rollbackH02 = async (to: string) => {
      const events: RolloutEvent[] = []
      const h = f.host('h02')
      const result = await rollbackOneHost(
        { store, executor: makeExecutor(config, store), clock: systemClock, listeners: [(e) => events.push(e)] },
        { host: { name: 'h02', address: h.address, port: h.port, user: h.user, appDir: h.appDir }, to, settings: hostSettings(config), connectTimeoutMs: 5_000, owner: 'test' },
      )
      return { result, events }
    }

    // A plain checkout in a releases fleet: h01 moved to releases first, h02 still in place; one rollout migrates h02.
    await writeFile(path.join(f.host('h01').appDir, '.env'), 'SECRET=1\n')
    await registerHosts(store, f, ['h01'])
    expect((await run('v2')).exitCode).toBe(0)
    await registerHosts(store, f)
    await writeFile(path.join(f.host('h02').appDir, '.env'), 'SECRET=2\n')
    const mixed = await run('v3')
    expect(mixed.exitCode).toBe(0)
    expect(await liveOf(f, 'h02')).toBe(v3)
    expect(existsSync(`${releasesOf(f, 'h02')}/${v1}.ready`)).toBe(true) // the old checkout, kept as a release
    await expectSettled(f, store, mixed.rolloutId)

    // Disk full while h01 installs the new release: failed there, nothing live changed; h02 goes on.
    await writeFile(path.join(f.host('h01').dir, 'faults', 'disk-full'), '')
    const pid = await servicePid(f, 'h01')
    const full = await run('unhealthy/slow')
    const h01 = await full.row('h01')
    expect(h01).toMatchObject({ status: 'failed', step: 'install', previousVersion: v3, newVersion: v3 })
    expect(h01.error).toMatch(/No space left on device/)
    expect(await servicePid(f, 'h01')).toBe(pid)
    expect(existsSync(`${releasesOf(f, 'h01')}/${slow}`)).toBe(false)
    expect(await full.row('h02')).toMatchObject({ status: 'success', newVersion: slow })
    await expectSettled(f, store, full.rolloutId)
    await rm(path.join(f.host('h01').dir, 'faults', 'disk-full'))

    // Retention under an unfinished rollout: while it is stopped (interrupted), `fleet rollback h02 --to v2`
    // keeps v3, which an `abort --rollback` of that rollout would switch h02 back to (keepReleases 2 alone would not).
    await sql`UPDATE fleet_rollouts SET state = 'interrupted' WHERE id = ${full.rolloutId}`.execute(store.db)
    expect((await rollbackH02(v2)).result.outcome.status).toBe('success')
    expect(await liveOf(f, 'h02')).toBe(v2)
    expect(existsSync(`${releasesOf(f, 'h02')}/${v3}.ready`)).toBe(true)
    expect(existsSync(`${releasesOf(f, 'h02')}/${slow}.ready`)).toBe(true)
    await sql`UPDATE fleet_rollouts SET state = 'failed' WHERE id = ${full.rolloutId}`.execute(store.db)

    // A kept release removed by hand, then a rollback to it: prepared again, and said so.
    await rm(`${releasesOf(f, 'h02')}/${v3}`, { recursive: true })
    const back = await rollbackH02(v3)
    expect(back.result.outcome.status).toBe('success')
    const notes = back.events.filter((e) => e.type === 'host-rollback-step' && e.note).map((e) => (e as { note: string }).note)
    expect(notes).toEqual([expect.stringMatching(/release [0-9a-f]{12} was prepared on this host but its directory is gone .*removed by hand.*preparing it again/)])
    expect(await liveOf(f, 'h02')).toBe(v3)
    expect(await f.service('h02')).toEqual({ running: true, sha: v3 })
    expect(await readFile(path.join(f.host('h02').appDir, '.env'), 'utf8')).toBe('SECRET=2\n')

    // A kept release removed by hand, then an update to it: prepared again, and said so (only there).
    await rm(`${releasesOf(f, 'h01')}/${v2}`, { recursive: true })
    const again = await run('v2')
    expect(again.exitCode).toBe(0)
    const noted = again.events.filter((e) => e.type === 'host-step' && e.note) as { host: string; step: string; note: string }[]
    expect(noted.map((e) => [e.host, e.step])).toEqual([['h01', 'fetch']])
    expect(noted[0]!.note).toMatch(/removed by hand/)
    await expectSettled(f, store, again.rolloutId)

    // app.layout back to "in-place" while the hosts are release symlinks: each is refused, nothing changed.
    const inPlace = testConfig(f, testStore!.databaseConfig, { rollout: { stages: [100] } })
    const pids = { h01: await servicePid(f, 'h01'), h02: await servicePid(f, 'h02') }
    const refused = await run('v3', inPlace)
    expect(refused.exitCode).not.toBe(0)
    for (const name of ['h01', 'h02'] as const) {
      const row = await refused.row(name)
      expect(row).toMatchObject({ status: 'failed', step: 'version', previousVersion: v2, newVersion: v2 })
      expect(row.error).toMatch(/is a symlink to a release directory .*app\.layout to "releases", or move the host back to a plain checkout/)
      expect(await liveOf(f, name)).toBe(v2)
      expect(await servicePid(f, name)).toBe(pids[name])
      expect(await f.service(name)).toEqual({ running: true, sha: v2 })
    }
    expect(refused.events.filter((e) => e.type === 'host-step' && e.step !== 'connect' && e.step !== 'version')).toEqual([])

    // h01 moved back to in place by following docs/config.md, run on the host over SSH; then its releases removed.
    const docs = await readFile(new URL('../docs/config.md', import.meta.url), 'utf8')
    const block = /\*\*Moving a host back to `in-place`\*\*[\s\S]*?```sh\n([\s\S]*?)```/.exec(docs)![1]!
    const A = f.host('h01').appDir
    const script = block.replace(/^A=.*$/m, `A='${A}'`).replace(/^shared=.*$/m, 'shared=".env"')
    const h = f.host('h01')
    expect(await readlink(`/proc/${pids.h01}/cwd`)).toBe(`${A}.releases/${v2}`) // the service runs from the live release
    const session = await makeExecutor(inPlace, store).connect({ name: 'h01', address: h.address, port: h.port, user: h.user, appDir: A }, { timeoutMs: 5_000 })
    try {
      const moved = await session.run(`set -e\n${script}`, { timeoutMs: 30_000 })
      expect(moved.stderr).toBe('')
      expect(moved.code).toBe(0)
    } finally {
      session.close()
    }
    expect((await lstat(A)).isDirectory()).toBe(true)
    await until('h01 to run its plain checkout', async () => (await f.service('h01')).sha === v2 && (await servicePid(f, 'h01')) !== pids.h01)
    expect(await readlink(`/proc/${await servicePid(f, 'h01')}/cwd`)).toBe(A)
    await rm(`${A}.releases`, { recursive: true })
    expect((await lstat(path.join(A, '.env'))).isFile()).toBe(true) // the shared file copied in place of its link
    expect(await readFile(path.join(A, '.env'), 'utf8')).toBe('SECRET=1\n')
    expect(await f.head('h01')).toBe(v2)
    const home = await run('v3', inPlace)
    expect(await home.row('h01')).toMatchObject({ status: 'success', previousVersion: v2, newVersion: v3 })
    expect(await home.row('h02')).toMatchObject({ status: 'failed', step: 'version', newVersion: v2 })
    expect(await f.head('h01')).toBe(v3)
    expect(await f.service('h01')).toEqual({ running: true, sha: v3 })
    expect(await readFile(path.join(A, '.env'), 'utf8')).toBe('SECRET=1\n')
    expect(await liveOf(f, 'h02')).toBe(v2)
    expect(await f.service('h02')).toEqual({ running: true, sha: v2 })
  }, 90_000)
})
