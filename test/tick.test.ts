/**
 * Unattended rollouts: `fleet rollout tick` run from a cron-like loop (the built binary, real
 * sshd, PGlite), `start --detach`, overlapping ticks, a tick SIGKILLed mid-stage, pause between
 * ticks, and gates in error. Gates here are local checks whose verdict the test sets through a
 * file (the Prometheus side of gates is tested in gates.test.ts).
 */
import { readFile, writeFile, rm } from 'node:fs/promises'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterEach, describe, expect, it } from 'vitest'

import { runFleet, type FleetRun } from './support/cli.js'
import { expectOn, hungInstalls, killSpawned, pgliteDirWithHosts, runCleanups, spawnFleet, until, withPglite, workdir } from './support/fault-kit.js'
import type { Store } from '../src/store/store.js'
import { fleetConfigOverrides, openTestStore, registerHosts } from './support/harness.js'
import { createTestDatabase, type TestDatabase } from './support/postgres.js'
import { startTestFleet, type TestFleet } from './support/test-fleet.js'

let fleet: TestFleet | null = null
let database: TestDatabase | null = null
afterEach(async () => {
  killSpawned()
  await runCleanups()
  await database?.drop()
  await fleet?.stop()
  fleet = database = null
})

/** The store a test's `fleet` processes use: the embedded one (cron's default) or a real Postgres database. */
type Db = { readonly dir: string; readonly url: string | null }

async function withDb<T>(db: Db, fn: (store: Store) => Promise<T>): Promise<T> {
  if (!db.url) return withPglite(db.dir, fn)
  const s = await openTestStore('postgres', db.url)
  try {
    return await fn(s.store)
  } finally {
    await s.close()
  }
}

/**
 * 4 hosts in stages of 1, 1, 2; each stage bakes 2 s with one check; `gates-down` in the work dir
 * makes it error, `gates-held` makes a measurement wait until the file is removed.
 */
async function setUp(kind: 'pglite' | 'postgres' = 'postgres') {
  fleet = await startTestFleet({ hosts: 4 })
  let db: Db
  if (kind === 'pglite') db = { dir: await pgliteDirWithHosts(fleet), url: null }
  else {
    database = await createTestDatabase()
    if (!database) throw new Error('tick tests need Postgres (127.0.0.1:5432)')
    db = { dir: '', url: database.url }
    await withDb(db, (store) => registerHosts(store, fleet!))
  }
  const dir = db.dir
  const cwd = await workdir({})
  const config = {
    ...fleetConfigOverrides(fleet, { rollout: { stages: [25, 50, 100], stageDelay: '0s' } }),
    gates: {
      bake: '1s',
      interval: '500ms',
      checks: [{ name: 'smoke', command: `while [ -e ${path.join(cwd, 'gates-held')} ]; do sleep 0.05; done; [ ! -e ${path.join(cwd, 'gates-down')} ] || exit 2` }],
      errorTimeout: '1h',
    },
    database: db.url ? { url: db.url } : { dir },
  }
  await writeFile(path.join(cwd, 'rollout.config.json'), JSON.stringify(config, null, 2))
  return { f: fleet, db, cwd }
}

const tick = (cwd: string, ...args: string[]): Promise<FleetRun> => runFleet(['rollout', 'tick', '--json', ...args], { cwd })
const lastJson = (run: FleetRun): Record<string, unknown> => JSON.parse(run.stdout.trim().split('\n').at(-1) ?? '{}') as Record<string, unknown>

describe('fleet rollout tick (cron; the embedded store for the cron loop, Postgres for the rest)', () => {
  it('a cron loop (embedded store) takes a 3-stage rollout with bakes to completed; every tick exits 0; no stage starts before its bake passed', async () => {
    const { f, db, cwd } = await setUp('pglite')
    const codes: number[] = []
    let state = ''
    for (let i = 0; i < 40 && state !== 'completed'; i++) {
      const run = await tick(cwd, '--ref', 'main')
      codes.push(run.code ?? -1)
      expect(run.stderr, `tick ${i + 1}`).toBe('')
      // As a cron job's operator would look: `rollout status` (from the snapshot the tick left, no store to open).
      const status = await runFleet(['rollout', 'status', '--json'], { cwd })
      expect(status.code, status.stderr).toBe(0)
      state = (JSON.parse(status.stdout) as { state?: string } | null)?.state ?? ''
      await sleep(100)
    }
    console.log(`cron simulation: ${codes.length} ticks to completed`)
    expect(state).toBe('completed')
    expect(codes.every((c) => c === 0)).toBe(true)
    for (const h of f.hosts) await expectOn(f, h.name, f.origin.shas.v2)
    await withDb(db, async (s) => {
      const id = (await s.getRollout())!.id
      const events = await s.listEvents(id)
      // Every stage baked and passed before the next one started.
      for (const stage of [1, 2]) {
        const started = events.findIndex((e) => e.type === 'stage-started' && (e.data as { stage: number }).stage === stage)
        const passed = events.findIndex((e) => e.type === 'gates-passed' && (e.data as { stage: number }).stage === stage - 1)
        expect(passed).toBeGreaterThan(-1)
        expect(started).toBeGreaterThan(passed)
      }
      expect(events.filter((e) => e.type === 'stage-started')).toHaveLength(3)
    })
    // Nothing new to ship: the next tick does nothing.
    const idle = await tick(cwd, '--ref', 'main')
    expect(idle.code).toBe(0)
    expect(lastJson(idle)).toMatchObject({ action: 'none' })
  })

  it('start --detach returns after the first stage (baking); overlapping ticks: one acts, the other exits 0 naming the holder', async () => {
    const { cwd, db } = await setUp()
    const started = await runFleet(['rollout', 'start', '--detach', '--json'], { cwd })
    expect(started.code).toBe(0)
    expect(await withDb(db, async (s) => (await s.getRollout())?.state)).toBe('baking')
    // A tick whose measurement is held (until the second tick is done) holds the rollout; a second tick meanwhile has nothing to do.
    await writeFile(path.join(cwd, 'gates-held'), '')
    await sleep(1_000)
    const first = spawnFleet(['rollout', 'tick', '--json'], { cwd })
    await until('the first tick to hold the rollout', async () => ((await withDb(db, (s) => s.leaseState())).holder ?? '').endsWith(`pid ${first.pid}`), 10_000)
    const second = await tick(cwd)
    expect(second.code).toBe(0)
    expect(lastJson(second)).toMatchObject({ action: 'none', holder: expect.stringContaining(`pid ${first.pid}`) })
    await rm(path.join(cwd, 'gates-held'))
    expect((await first.exited).code).toBe(0)
  })

  it('a tick SIGKILLed mid-stage: the next tick settles its host and goes on to the end', async () => {
    const { f, db, cwd } = await setUp()
    // The second stage's host hangs in install; the tick running it is killed there.
    const order = await (async () => {
      const run = await runFleet(['rollout', 'start', '--dry-run', '--json'], { cwd })
      const dry = JSON.parse(run.stdout) as { stages: { hosts: string[] }[]; gates: { measurement: { verdict: string } } }
      // The dry run prints the gate plan and measures every gate once (here: the smoke check passes).
      expect(dry.gates).toMatchObject({ bake: 1000, interval: 500, measurement: { verdict: 'pass' } })
      return dry.stages.map((s) => s.hosts)
    })()
    const second = order[1]![0]!
    await f.setFault(second, 'install-hangs', true)
    expect((await runFleet(['rollout', 'start', '--detach'], { cwd })).code).toBe(0)
    let killed = false
    for (let i = 0; i < 10 && !killed; i++) {
      const child = spawnFleet(['rollout', 'tick', '--json'], { cwd })
      const hung = await Promise.race([until(`install on ${second}`, () => hungInstalls(f, second).length > 0, 8_000).then(() => true, () => false), child.exited.then(() => false)])
      if (hung) {
        child.kill('SIGKILL')
        await child.exited
        killed = true
      } else await sleep(1_000)
    }
    expect(killed).toBe(true)
    await f.setFault(second, 'install-hangs', false)
    const left = await withDb(db, async (s) => (await s.listRolloutHosts((await s.getRollout())!.id)).find((r) => r.name === second)?.status)
    expect(left).toBe('updating')
    let state = ''
    for (let i = 0; i < 30 && state !== 'completed'; i++) {
      const run = await tick(cwd)
      expect(run.code, run.stderr).toBe(0)
      state = await withDb(db, async (s) => (await s.getRollout())?.state ?? '')
      await sleep(1_000)
    }
    expect(state).toBe('completed')
    for (const h of f.hosts) await expectOn(f, h.name, f.origin.shas.v2)
  })

  it('paused between ticks: ticks exit 7 and change nothing; gates in error: ticks exit 7, nothing promoted; resume goes on', async () => {
    const { f, db, cwd } = await setUp()
    expect((await runFleet(['rollout', 'start', '--detach'], { cwd })).code).toBe(0)
    const pause = await runFleet(['rollout', 'pause', '--reason', 'db migration'], { cwd })
    expect(pause.code, pause.stderr).toBe(0)
    const heads = async () => Promise.all(f.hosts.map((h) => f.head(h.name)))
    const before = await heads()
    for (let i = 0; i < 2; i++) {
      const run = await tick(cwd)
      expect(run.code).toBe(7)
      expect(lastJson(run)).toMatchObject({ state: 'paused', reason: expect.stringMatching(/db migration/) })
    }
    expect(await heads()).toEqual(before)

    // Gates that cannot be measured: each tick measures, says so (7), and nothing moves on.
    await writeFile(path.join(cwd, 'gates-down'), '')
    // A rollout cron drives is handed back to cron by resume: it leaves once only waiting is left.
    const resumed = await runFleet(['rollout', 'resume', '--reason', 'migration done'], { cwd })
    expect(resumed.code, resumed.stderr).toBe(0)
    expect(resumed.stdout).toMatch(/is baking; `fleet rollout tick` \(from cron\) goes on/)
    await sleep(1_500)
    const inError = await tick(cwd)
    expect(inError.code).toBe(7)
    expect(await heads()).toEqual(before)

    await rm(path.join(cwd, 'gates-down'))
    let state = ''
    for (let i = 0; i < 30 && state !== 'completed'; i++) {
      // 7 until a measurement after the gates came back is due (every 500 ms), then 0.
      expect([0, 7]).toContain((await tick(cwd)).code)
      state = await withDb(db, async (s) => (await s.getRollout())?.state ?? '')
      if (state !== 'completed') await sleep(1_000)
    }
    expect(state).toBe('completed')
    const trail = await runFleet(['rollout', 'events'], { cwd })
    expect(trail.code, trail.stderr).toBe(0)
    expect(trail.stdout).toMatch(/\S+@\S+ +\* rollout paused — db migration/)
    expect(trail.stdout).toMatch(/\* rollout resumed at stage 1 — migration done/)
  })
})

describe('a pause racing a tick', () => {
  it.each(['postgres', 'pglite'] as const)('on %s: sent at the same moment as a tick, the pause is applied exactly once and never dropped; the tick does not drive past it', async (kind) => {
    const { db, cwd } = await setUp(kind)
    const config = JSON.parse(await readFile(path.join(cwd, 'rollout.config.json'), 'utf8')) as { gates: Record<string, unknown> }
    config.gates.bake = '1h' // between ticks the rollout waits; a tick measures and yields
    await writeFile(path.join(cwd, 'rollout.config.json'), JSON.stringify(config))
    const started = await runFleet(['rollout', 'start', '--detach', '--json'], { cwd })
    expect(started.code, started.stderr).toBe(0)
    const [t, pause] = await Promise.all([tick(cwd), runFleet(['rollout', 'pause', '--reason', 'racing the tick', '--json'], { cwd })])
    // On the embedded store one of them may find it held: then nothing of that one was sent or done.
    const refused = pause.code === 6 && /in use|not sent|holds the lock/.test(pause.stderr)
    expect([0, 6].includes(pause.code ?? -1), pause.stderr).toBe(true)
    expect([0, 7].includes(t.code ?? -1), t.stderr).toBe(true)
    if (refused) {
      // Sent again once the tick is gone: it is applied.
      const again = await runFleet(['rollout', 'pause', '--reason', 'racing the tick'], { cwd })
      expect(again.code, again.stderr).toBe(0)
    }
    await until('paused', () => withDb(db, async (store) => (await store.getRollout())?.state === 'paused'), 30_000)
    await withDb(db, async (store) => {
      const latest = (await store.getRollout())!
      expect((await store.listRequests(latest.id)).map((r) => [r.kind, r.outcome])).toEqual([['pause', 'applied']])
      const paused = (await store.listEvents(latest.id, ['rollout-paused'])).map((e) => (e.data as { reason?: string }).reason)
      expect(paused).toEqual([expect.stringMatching(/racing the tick/)])
    })
    // Later ticks change nothing while it is paused (exit 7).
    expect((await tick(cwd)).code).toBe(7)
  }, 120_000)
})

describe('pause and promote a rollout another process is running', () => {
  it.each(['postgres', 'pglite'] as const)('on %s: pause reaches the running process within seconds (exit 7); promote --reason ends the bake and it completes', async (kind) => {
    const { f, db, cwd } = await setUp(kind)
    // A long bake: the running `start` sits in it while the operator acts from another shell.
    const config = JSON.parse(await (await import('node:fs/promises')).readFile(path.join(cwd, 'rollout.config.json'), 'utf8')) as { gates: Record<string, unknown> }
    config.gates.bake = '60s'
    await writeFile(path.join(cwd, 'rollout.config.json'), JSON.stringify(config))
    const running = spawnFleet(['rollout', 'start', '--json'], { cwd })
    await running.waitFor((e) => e.type === 'bake-started', 30_000)
    const asked = Date.now()
    const pause = await runFleet(['rollout', 'pause', '--reason', 'looks odd'], { cwd })
    expect(pause.code, pause.stderr).toBe(0)
    expect(pause.stdout).toMatch(/pause taken in by .* \(request [0-9a-f-]+\)/)
    const ended = await running.exited
    console.log(`${kind}: pause took effect ${Date.now() - asked} ms after it was asked`)
    expect(ended.code).toBe(7)
    expect(running.events.at(-1)).toMatchObject({ type: 'rollout-finished', state: 'paused', exitCode: 7 })
    expect(running.events.find((e) => e.type === 'rollout-paused')).toMatchObject({ reason: 'looks odd', actor: expect.stringMatching(/^\S+@\S+$/), byHand: true })
    // Promote the paused rollout here: its bake counts as passed and this process goes on…
    const promoted = spawnFleet(['rollout', 'promote', '--reason', 'checked by ann', '--json'], { cwd })
    for (const stage of [1, 2]) {
      await promoted.waitFor((e) => e.type === 'bake-started' && e.stage === stage, 30_000)
      // …and each further 60 s bake is ended from yet another shell, through the running process.
      const again = await runFleet(['rollout', 'promote', '--skip-bake', '--reason', `stage ${stage + 1} reviewed`], { cwd })
      expect(again.code, again.stderr).toBe(0)
      expect(again.stdout).toMatch(/promote taken in by /)
    }
    const done = await promoted.exited
    expect(done.code, done.stderr).toBe(0)
    expect(promoted.events.at(-1)).toMatchObject({ type: 'rollout-finished', state: 'completed', exitCode: 0 })
    for (const h of f.hosts) await expectOn(f, h.name, f.origin.shas.v2)
    await withDb(db, async (s) => {
      const id = (await s.getRollout())!.id
      const types = (await s.listEvents(id)).map((e) => e.type)
      expect(types.filter((t) => t === 'gates-passed')).toHaveLength(3)
      expect(types).toContain('rollout-promoted')
    })
  }, 150_000)
})
