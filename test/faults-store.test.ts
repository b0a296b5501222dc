/**
 * The database away mid-rollout (a private PostgreSQL server this file starts, stops and
 * restarts): the engine retries its writes, starts no host blind, survives a write in flight, and
 * gives up resumable when the outage outlasts storeRetryMs.
 */
import { spawn } from 'node:child_process'
import { rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import pg from 'pg'
import { afterAll, afterEach, describe, expect, it } from 'vitest'

import { makeExecutor } from '../src/cli/context.js'
import { systemClock } from '../src/rollout/clock.js'
import { resumeRollout, type RolloutResult } from '../src/rollout/engine.js'
import { canaryOrder } from '../src/rollout/plan.js'
import { expectOn, killSpawned, runCleanups, spawnFleet, until, workdir } from './support/fault-kit.js'
import { expectNothingLost, isStep, rolloutWith, statusesOf } from './support/faults.js'
import { fleetConfigOverrides, openTestStore, registerHosts, testConfig, type TestStore } from './support/harness.js'
import { startPrivatePostgres, type PrivatePostgres } from './support/private-postgres.js'
import { startTestFleet, type TestFleet } from './support/test-fleet.js'

let fleet: TestFleet | null = null
let testStore: TestStore | null = null
/** One private server for the file, a fresh database on it per test. */
let privatePg: PrivatePostgres | null = null
let privateDb: string | null = null

afterEach(async () => {
  killSpawned()
  await testStore?.close().catch(() => {})
  await runCleanups()
  if (privatePg && privateDb) {
    // A test that failed with the server down leaves it down: the next one needs it up.
    if (!privatePg.running) await privatePg.start().catch(() => {})
    await privateAdmin(`DROP DATABASE IF EXISTS ${privateDb} WITH (FORCE)`).catch(() => {})
  }
  await fleet?.stop()
  fleet = testStore = privateDb = null
})

afterAll(async () => {
  await privatePg?.destroy()
  privatePg = null
})

async function privateAdmin(statement: string): Promise<void> {
  const client = new pg.Client({ connectionString: privatePg!.url })
  await client.connect()
  try {
    await client.query(statement)
  } finally {
    await client.end().catch(() => {})
  }
}

describe('Postgres restarted mid-rollout (a private server)', () => {
  /** The private server (started once for the file) with a fresh database on it, and a fleet of `hosts`. */
  async function setUpPrivate(hosts: number) {
    privatePg ??= await startPrivatePostgres()
    if (!privatePg) return null
    privateDb = `fleet_test_${Date.now().toString(36)}`
    await privateAdmin(`CREATE DATABASE ${privateDb}`)
    const url = new URL(privatePg.url)
    url.pathname = `/${privateDb}`
    fleet = await startTestFleet({ hosts })
    testStore = await openTestStore('postgres', url.toString())
    await registerHosts(testStore.store, fleet)
    return { f: fleet, pg: privatePg, url: url.toString(), store: testStore.store, dbConfig: testStore.databaseConfig }
  }

  it('server killed when the 2nd host starts, back 3 s later → the rollout finishes, every host success and really on v2', async (t) => {
    const env = await setUpPrivate(3)
    if (!env) return t.skip()
    const { f, pg, store } = env
    const { v2 } = f.origin.shas
    const config = testConfig(f, env.dbConfig, { verify: { delay: '1s' }, rollout: { stages: [100], concurrency: 2 } })
    const starts = new Set<string>()
    let outage: Promise<void> | null = null
    const result = await rolloutWith(store, config, {
      listener: (e) => {
        if (e.type !== 'host-started') return
        starts.add(e.host)
        if (starts.size === 2 && !outage) {
          pg.crashSync() // down right now: the next store write fails
          outage = sleep(3_000).then(() => pg.start())
        }
      },
    })
    expect(outage).not.toBeNull()
    await outage

    expect(result.state).toBe('completed')
    expect(result.exitCode).toBe(0)
    const names = f.hosts.map((h) => h.name)
    expect(await statusesOf(store, result.rolloutId)).toEqual(Object.fromEntries(names.map((n) => [n, 'success'])))
    for (const name of names) await expectOn(f, name, v2)
    expect(await store.getRollout(result.rolloutId)).toMatchObject({ state: 'completed', exitCode: 0 })
    const stored = (await store.listEvents(result.rolloutId)).map((e) => e.type)
    expect(stored.at(-1)).toBe('rollout-finished')
    expect(stored.filter((t) => t === 'host-finished')).toHaveLength(3)
    expect((await store.leaseState()).holder).toBeNull()
    // The operator was told at once that writes were being retried (and until when), then that the database was back.
    const seen = result.events.map((e) => e.type)
    expect(seen.indexOf('store-unavailable')).toBeGreaterThan(-1)
    expect(seen.indexOf('store-recovered')).toBeGreaterThan(seen.indexOf('store-unavailable'))
    const away = result.events.find((e) => e.type === 'store-unavailable')!
    expect(away).toMatchObject({ error: expect.stringMatching(/connection refused|terminat|shutting down/) })
    expect(stored).not.toContain('store-unavailable')
  })

  it('a host queued behind the outage is started once the store is back, not silently left pending', async (t) => {
    // h01 and h02 run, h03 waits for a slot. h01's install is held (an operator step waiting on a
    // file) through the whole outage; h02 hits the outage and retries with backoff; the server comes
    // back, h01 finishes while h02 still waits for its next retry → h03 takes h01's slot.
    // Timing: h02's store retries come ~0.25/0.75/1.75/3.75/7.75 s after its first failure (persist's
    // backoff), so with the server back after ~4.5 s there is a ~3 s window in which h01 finishes
    // (verify delay 300 ms) while h02 is still "in store trouble".
    const env = await setUpPrivate(3)
    if (!env) return t.skip()
    const { f, pg, store } = env
    const { v2 } = f.origin.shas
    const hold = (h: string) => path.join(f.host(h).dir, 'faults', 'hold')
    await writeFile(hold('h01'), '')
    await writeFile(hold('h02'), '')
    const config = testConfig(f, env.dbConfig, {
      steps: { install: 'while [ -e "$FLEET_SIM_HOST/faults/hold" ]; do sleep 0.05; done; bun install' },
      rollout: { stages: [100], concurrency: 2 },
    })
    const installing = new Set<string>()
    let bothInstalling: () => void
    const bothHeld = new Promise<void>((resolve) => (bothInstalling = resolve))
    let crashed: () => void
    const crashedAt = new Promise<void>((resolve) => (crashed = resolve))
    let armed = false
    // A seed that orders h01, h02 first (the canary order is a hash of seed and name).
    const seed = Array.from({ length: 1000 }, (_, i) => `s${i}`).find((s) =>
      canaryOrder(f.hosts, s).map((h) => h.name).join() === 'h01,h02,h03',
    )!
    const run = rolloutWith(store, config, {
      seed,
      listener: (e) => {
        if (e.type === 'host-step' && e.step === 'install' && e.phase === 'update') {
          installing.add(e.host)
          if (installing.has('h01') && installing.has('h02')) bothInstalling()
        }
        if (armed && e.type === 'host-step' && e.host === 'h02' && e.step === 'verify') {
          armed = false
          pg.crashSync()
          crashed()
        }
      },
    })
    await bothHeld
    armed = true
    await rm(hold('h02'))
    await crashedAt
    await sleep(4_500)
    await pg.start()
    await rm(hold('h01'))
    const result = await run

    const names = f.hosts.map((h) => h.name)
    await expectNothingLost(store, result.rolloutId, names)
    expect({ exitCode: result.exitCode, statuses: await statusesOf(store, result.rolloutId) }).toEqual({
      exitCode: 0,
      statuses: { h01: 'success', h02: 'success', h03: 'success' },
    })
    for (const name of names) await expectOn(f, name, v2)
  })

  it('server killed while a store write is in flight: the orchestrator (the built binary) survives and finishes → exit 0', async (t) => {
    const env = await setUpPrivate(2)
    if (!env) return t.skip()
    const { f, pg: server, store } = env
    const { v2 } = f.origin.shas
    const cwd = await workdir(fleetConfigOverrides(f, { verify: { delay: '1s' }, rollout: { stages: [100], concurrency: 2 } }))
    const child = spawnFleet(['rollout', 'start', '--json'], { cwd, env: { FLEET_DATABASE_URL: env.url } })
    const started = await child.waitFor((e) => e.type === 'rollout-started')
    await child.waitFor(isStep(null, 'verify'))
    // Hold the host table so fleet's next write to it waits inside the server, then kill the server.
    const admin = new pg.Client({ connectionString: env.url })
    admin.on('error', () => {})
    await admin.connect()
    await admin.query('BEGIN')
    await admin.query('LOCK TABLE fleet_rollout_hosts IN ACCESS EXCLUSIVE MODE')
    await until('a fleet write blocked on the lock', async () => {
      const r = await admin.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND pid <> pg_backend_pid()`)
      return (r.rows[0] as { n: number }).n > 0
    })
    await server.stop({ mode: 'immediate' })
    await admin.end().catch(() => {})
    await sleep(2_000)
    await server.start()
    const run = await child.exited

    expect({ code: run.code, stderr: run.stderr }).toEqual({ code: 0, stderr: '' })
    const rolloutId = started.rolloutId as string
    expect(await statusesOf(store, rolloutId)).toEqual({ h01: 'success', h02: 'success' })
    for (const name of ['h01', 'h02']) await expectOn(f, name, v2)
    expect(await store.getRollout(rolloutId)).toMatchObject({ state: 'completed', exitCode: 0 })
  })

  it('store down past storeRetryMs → the run gives up, resumable; nothing half-done; resume finishes it', async (t) => {
    const env = await setUpPrivate(3)
    if (!env) return t.skip()
    const { f, pg, store } = env
    const { v1, v2 } = f.origin.shas
    const config = testConfig(f, env.dbConfig, { rollout: { stages: [100], concurrency: 1 } })
    // The owner of a process that is gone, as after `fleet rollout start` gave up and exited.
    const gone = spawn(process.execPath, ['-e', '0'])
    await new Promise((resolve) => gone.on('close', resolve))
    const owner = `${os.userInfo().username}@${os.hostname()} pid ${gone.pid}`
    let firstDone: string | null = null
    const attempt = rolloutWith(store, config, {
      owner,
      storeRetryMs: 2_000,
      listener: (e) => {
        if (e.type === 'host-finished' && !firstDone) {
          firstDone = e.host
          pg.crashSync()
        }
      },
    })
    await expect(attempt).rejects.toThrow(/database stayed unreachable.*fleet rollout resume/)
    await pg.start()

    const rollout = (await store.getRollout())!
    expect(rollout.state).toBe('running')
    const rows = await store.listRolloutHosts(rollout.id)
    expect(rows.find((r) => r.name === firstDone)).toMatchObject({ status: 'success' })
    // No host was started blind: the others were never touched.
    for (const row of rows.filter((r) => r.name !== firstDone)) {
      expect(['pending', 'updating']).toContain(row.status)
      await expectOn(f, row.name, v1)
      expect(f.acceptedConnections(row.name)).toBe(0)
    }

    const resumed = (await resumeRollout({ store, executor: makeExecutor(config, store), clock: systemClock, listeners: [] }, 'test-resume')) as RolloutResult
    expect(resumed.exitCode).toBe(0)
    expect(resumed.state).toBe('completed')
    expect(await statusesOf(store, rollout.id)).toEqual({ h01: 'success', h02: 'success', h03: 'success' })
    for (const name of f.hosts.map((h) => h.name)) await expectOn(f, name, v2)
  })
})
