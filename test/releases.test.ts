/**
 * Release directories (design "Release directories"): the pure builders and retention (a property
 * test over random sequences of updates), then real rollouts with `app.layout: "releases"` on the
 * sshd fleet: a good release switches the symlink and keeps the old one, a failed install changes
 * nothing live, a crashing release is switched back, a rollback works with the origin gone.
 */
import { readFile, readlink, rename, stat, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'

import { makeExecutor } from '../src/cli/context.js'
import { planPrune, releaseActivate, releaseCreate, releasePaths, type ReleaseListing } from '../src/remote/releases.js'
import { systemClock } from '../src/rollout/clock.js'
import { hostSettings } from '../src/rollout/from-config.js'
import { rollbackOneHost } from '../src/rollout/rollback.js'
import { loadConfig } from '../src/config/load.js'
import type { Sha } from '../src/types.js'
import { createTestDatabase, type TestDatabase } from './support/postgres.js'
import { openTestStore, registerHosts, rollout, testConfig, type TestStore } from './support/harness.js'
import { startTestFleet, type TestFleet } from './support/test-fleet.js'

const A = '/home/rachel/rachel'
const sha = (n: number) => n.toString(16).padStart(40, '0') as Sha

describe('release builders', () => {
  it('quote every value and refuse bad ones', () => {
    expect(releasePaths(A).root).toBe('/home/rachel/rachel.releases')
    expect(releaseActivate("/srv/it's app", sha(1))).toContain(`ln -s -- '/srv/it'\\''s app.releases/${sha(1)}' '/srv/it'\\''s app.fleet-switch'`)
    expect(releaseActivate(A, sha(1))).toContain(`mv -T -- /home/rachel/rachel.fleet-switch /home/rachel/rachel`)
    expect(() => releaseActivate(A, 'HEAD; rm -rf /' as Sha)).toThrow(/release/)
    expect(() => releaseActivate('relative/dir', sha(1))).toThrow(/absolute/)
    expect(() => releaseCreate(A, 'origin', sha(1), ['../etc'])).toThrow(/shared path/)
    expect(releaseCreate(A, 'origin', sha(1), ['.env', 'data/uploads'])).toContain(`for p in .env data/uploads; do`)
  })

  it('config: layout, keepReleases, shared, steps.build', () => {
    const load = (app: Record<string, unknown>) => loadConfig({ env: {}, cwd: '/tmp', overrides: { app } }).config
    expect(load({}).app).toMatchObject({ layout: 'in-place', keepReleases: 3, shared: [] })
    expect(load({ layout: 'releases', shared: ['.env', 'data'] }).app).toMatchObject({ layout: 'releases', shared: ['.env', 'data'] })
    expect(() => load({ layout: 'symlinks' })).toThrow(/"app.layout" must be "in-place" or "releases"/)
    expect(() => load({ shared: ['/etc/passwd'] })).toThrow(/relative/)
    expect(() => load({ shared: ['a/../../b'] })).toThrow(/\.\./)
    expect(() => load({ keepReleases: 1 })).toThrow(/keepReleases/)
  })

  it('retention never deletes the live, the previous or a protected release; failed preparations never count (random sequences)', () => {
    let seed = 42
    const random = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n)
    for (let run = 0; run < 300; run++) {
      const keep = 2 + random(4)
      const dirs = new Map<string, { ready: boolean; at: number }>()
      let live = sha(0)
      let previous: string | null = null
      dirs.set(live, { ready: true, at: 0 })
      let clock = 1
      for (let step = 0; step < 30; step++) {
        const target = sha(1 + random(12))
        const kind = random(4) // 0, 1: success; 2: failed preparation; 3: interrupted (unfinished preparation left behind)
        if (target === live) continue
        const reused = dirs.get(target)?.ready === true
        if (kind === 2 && !reused) continue // a failed preparation is removed at once (and never replaces a ready one)
        if (!reused) dirs.set(target, { ready: kind !== 3, at: clock++ })
        if (kind === 3) continue
        if (kind <= 1) {
          previous = live
          live = target
          const listing: ReleaseListing = { live, releases: [...dirs].map(([s, d]) => ({ sha: s, ...d })) }
          const extra = random(3) === 0 ? [sha(1 + random(12))] : []
          const doomed = planPrune(listing, { keep, protect: [live, previous, ...extra] })
          expect(doomed).not.toContain(live)
          expect(doomed).not.toContain(previous)
          for (const p of extra) expect(doomed).not.toContain(p)
          for (const d of doomed) dirs.delete(d)
          const ready = [...dirs.values()].filter((d) => d.ready).length
          expect(ready).toBeLessThanOrEqual(Math.max(keep, 2 + extra.length))
          expect([...dirs.values()].every((d) => d.ready) || extra.length > 0).toBe(true)
          // The newest ready releases are the ones kept (after the protected ones).
          expect(ready).toBeGreaterThanOrEqual(Math.min(keep, listing.releases.filter((r) => r.ready).length))
        }
      }
      expect(dirs.has(live)).toBe(true)
      if (previous) expect(dirs.has(previous)).toBe(true)
    }
  })
})

let fleet: TestFleet | null = null
let testStore: TestStore | null = null
let database: TestDatabase | null = null

afterEach(async () => {
  await testStore?.close()
  await database?.drop()
  await fleet?.stop()
  fleet = testStore = database = null
})

async function setUp(hosts: number) {
  fleet = await startTestFleet({ hosts })
  database = await createTestDatabase()
  testStore = await openTestStore(database ? 'postgres' : 'pglite', database?.url)
  await registerHosts(testStore.store, fleet)
  const config = testConfig(fleet, testStore.databaseConfig, { rollout: { stages: [100] }, app: { layout: 'releases', keepReleases: 2, shared: ['.env'] } })
  return { fleet, store: testStore.store, config }
}

const liveOf = async (f: TestFleet, name: string) => path.basename(await readlink(f.host(name).appDir))
const servicePid = async (f: TestFleet, name: string) => (await readFile(path.join(f.host(name).dir, 'run', 'service.pid'), 'utf8')).trim()

describe('layout "releases" on the sshd fleet', () => {
  it('prepares beside the live release, switches the symlink, keeps the old one; a failed install changes nothing live; a crash is switched back', async () => {
    const env = await setUp(2)
    const { v1, v2, crash, badInstall } = env.fleet.origin.shas
    await writeFile(path.join(env.fleet.host('h01').appDir, '.env'), 'SECRET=1\n')
    const good = await rollout(env.store, env.config)
    expect(good.exitCode).toBe(0)
    // Migrated: the untracked shared file moved once beside the releases and is linked into the new one.
    const h01Dir = env.fleet.host('h01').appDir
    expect(await readFile(`${h01Dir}.releases/shared/.env`, 'utf8')).toBe('SECRET=1\n')
    expect(await readlink(`${h01Dir}.releases/${v2}/.env`)).toBe(`${h01Dir}.releases/shared/.env`)
    expect(await readFile(path.join(h01Dir, '.env'), 'utf8')).toBe('SECRET=1\n')
    for (const h of env.fleet.hosts) {
      expect(await liveOf(env.fleet, h.name)).toBe(v2)
      expect((await stat(`${h.appDir}.releases/${v1}`)).isDirectory()).toBe(true)
      expect(await env.fleet.service(h.name)).toEqual({ running: true, sha: v2 })
    }
    expect((await env.store.listRolloutHosts(good.rolloutId)).map((h) => h.status)).toEqual(['success', 'success'])

    const pid = await servicePid(env.fleet, 'h01')
    const pkg = await readFile(path.join(env.fleet.host('h01').appDir, 'package.json'), 'utf8')
    const bad = await rollout(env.store, env.config, { ref: 'broken/bad-install' })
    expect(bad.exitCode).not.toBe(0)
    const h01 = (await env.store.listRolloutHosts(bad.rolloutId)).find((h) => h.name === 'h01')!
    expect(h01).toMatchObject({ status: 'failed', step: 'install', previousVersion: v2, newVersion: v2 })
    expect(await liveOf(env.fleet, 'h01')).toBe(v2)
    expect(await servicePid(env.fleet, 'h01')).toBe(pid) // not restarted
    expect(await readFile(path.join(env.fleet.host('h01').appDir, 'package.json'), 'utf8')).toBe(pkg)
    await expect(stat(`${env.fleet.host('h01').appDir}.releases/${badInstall}`)).rejects.toThrow() // the failed preparation is gone
    expect((bad.events.filter((e) => e.type === 'host-step') as { step: string }[]).map((e) => e.step)).not.toContain('rollback')

    const crashed = await rollout(env.store, env.config, { ref: 'broken/crash' })
    expect(crashed.exitCode).toBe(3) // both hosts failed: the stage halts
    for (const h of env.fleet.hosts) {
      expect(await liveOf(env.fleet, h.name)).toBe(v2)
      expect(await env.fleet.service(h.name)).toEqual({ running: true, sha: v2 })
    }
    const steps = (crashed.events.filter((e) => e.type === 'host-step' && e.host === 'h01') as { step: string; phase: string }[]).filter((e) => e.phase === 'rollback').map((e) => e.step)
    expect(steps).not.toContain('fetch')
    expect(steps).not.toContain('install')
    expect((await env.store.listHosts()).map((h) => [h.status, h.currentVersion])).toEqual([['rolled_back', v2], ['rolled_back', v2]])
    expect(crash).toBeTruthy()
  }, 60_000)

  it('prepares ahead: while stage 1 waits, stage 2 prepares the target; its update then only activates (no fetch, no install)', async () => {
    const env = await setUp(3)
    const config = { ...env.config, rollout: { ...env.config.rollout, stages: [33, 100], stageDelayMs: 3_000 } }
    const run = await rollout(env.store, config)
    expect(run.exitCode).toBe(0)
    const stage2 = (run.events.find((e) => e.type === 'stage-started' && e.stage === 1) as { hosts: string[] }).hosts
    expect(stage2).toHaveLength(2)
    const prepared = run.events.filter((e) => e.type === 'host-prepared') as { host: string; ok: boolean; at: string }[]
    expect(prepared.map((e) => [e.host, e.ok]).sort()).toEqual(stage2.map((h) => [h, true]).sort())
    // Prepared while the first stage waited: before the second stage began.
    const begun = Date.parse(run.events.find((e) => e.type === 'stage-started' && e.stage === 1)!.at)
    for (const e of prepared) expect(Date.parse(e.at)).toBeLessThanOrEqual(begun)
    for (const name of stage2) {
      const steps = (run.events.filter((e) => e.type === 'host-step' && e.host === name) as { step: string }[]).map((e) => e.step)
      expect(steps).toContain('activate')
      expect(steps).not.toContain('fetch')
      expect(steps).not.toContain('install')
      expect(await liveOf(env.fleet, name)).toBe(env.fleet.origin.shas.v2)
    }
  }, 60_000)

  it('rolls one host back with the origin unreachable: a switch to the kept release, no fetch, no install', async () => {
    const env = await setUp(1)
    const { v1, v2 } = env.fleet.origin.shas
    expect((await rollout(env.store, env.config)).exitCode).toBe(0)
    await rename(env.fleet.origin.path, `${env.fleet.origin.path}.moved`)
    const h = env.fleet.host('h01')
    const started = Date.now()
    const result = await rollbackOneHost(
      { store: env.store, executor: makeExecutor(env.config, env.store), clock: systemClock },
      { host: { name: 'h01', address: h.address, port: h.port, user: h.user, appDir: h.appDir }, settings: hostSettings(env.config), connectTimeoutMs: 5_000, owner: 'test' },
    )
    const ms = Date.now() - started
    expect({ status: result.outcome.status, to: result.to, exit: result.exitCode }).toEqual({ status: 'success', to: v1, exit: 0 })
    expect(await liveOf(env.fleet, 'h01')).toBe(v1)
    expect(await env.fleet.service('h01')).toEqual({ running: true, sha: v1 })
    // And forward again to the kept v2, still without the origin.
    const forward = await rollbackOneHost(
      { store: env.store, executor: makeExecutor(env.config, env.store), clock: systemClock },
      { host: { name: 'h01', address: h.address, port: h.port, user: h.user, appDir: h.appDir }, to: v2.slice(0, 10), settings: hostSettings(env.config), connectTimeoutMs: 5_000, owner: 'test' },
    )
    expect(forward.outcome.status).toBe('success')
    expect(await liveOf(env.fleet, 'h01')).toBe(v2)
    expect(ms).toBeLessThan(15_000)
  }, 60_000)
})
