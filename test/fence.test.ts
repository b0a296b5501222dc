/**
 * One driver at a time, with the faults injected for real (the built binary, real sshd, real
 * Postgres): an orchestrator frozen (SIGSTOP) across a takeover, a takeover and a pause from
 * processes whose clocks are skewed (a module that shifts Date, loaded with --import), and manual
 * actions on the hosts of a rollout that waits for its next cron tick.
 */
import { existsSync } from 'node:fs'
import { readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'

import { fencePath } from '../src/remote/fence.js'
import type { Store } from '../src/store/store.js'
import { runFleet } from './support/cli.js'
import { setTimeout as sleep } from 'node:timers/promises'

import { expectOn, heldStep, hold, killSpawned, runCleanups, spawnFleet, until, workdir } from './support/fault-kit.js'
import { startPrivatePostgres, type PrivatePostgres } from './support/private-postgres.js'
import { ageLease, fleetConfigOverrides, openTestStore, registerHosts, seedRollout } from './support/harness.js'
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

async function withDb<T>(fn: (store: Store) => Promise<T>): Promise<T> {
  const s = await openTestStore('postgres', database!.url)
  try {
    return await fn(s.store)
  } finally {
    await s.close()
  }
}

async function setUp(hosts: number, extra: Record<string, unknown> = {}) {
  fleet = await startTestFleet({ hosts })
  database = await createTestDatabase()
  if (!database) throw new Error('the fence is tested on a real Postgres (127.0.0.1:5432)')
  await withDb((store) => registerHosts(store, fleet!))
  const cwd = await workdir({})
  const config = { ...fleetConfigOverrides(fleet, { verify: { delay: '300ms' }, rollout: { stages: [50, 100], stageDelay: '0s', concurrency: 1 } }), ...extra, database: { url: database.url } }
  await writeFile(path.join(cwd, 'rollout.config.json'), JSON.stringify(config, null, 2))
  // A process whose clock is off: Date (now and new Date()) shifted by $CLOCK_SHIFT_MS.
  await writeFile(
    path.join(cwd, 'skew.mjs'),
    `const shift = Number(process.env.CLOCK_SHIFT_MS ?? 0); const Real = Date; const now = Real.now;
     class Shifted extends Real { constructor(...a) { if (a.length === 0) super(now() + shift); else super(...a) } static now() { return now() + shift } }
     globalThis.Date = Shifted;\n`,
  )
  const skewed = (ms: number) => ({ NODE_OPTIONS: `--import ${pathToFileURL(path.join(cwd, 'skew.mjs')).href}`, CLOCK_SHIFT_MS: String(ms) })
  return { f: fleet, cwd, skewed }
}

/** The epochs a host's fence log recorded, in order. */
const fenceLog = async (f: TestFleet, host: string): Promise<number[]> =>
  (await readFile(`${fencePath(f.host(host).appDir)}.log`, 'utf8').catch(() => ''))
    .split('\n')
    .filter(Boolean)
    .map((line) => Number(line.split(' ')[1]))

describe('one driver at a time (real Postgres, real sshd)', () => {
  it('an orchestrator frozen across a takeover wakes up refused: it exits 6 naming who took over; hosts and store agree; one rollout-finished', async () => {
    const { f, cwd, skewed } = await setUp(4)
    const first = spawnFleet(['rollout', 'start', '--json'], { cwd })
    await first.waitFor((e) => e.type === 'host-finished')
    // Another shell whose clock runs 45 s ahead cannot take over a live owner.
    const early = await runFleet(['rollout', 'resume'], { cwd, env: skewed(45_000) })
    expect(early.code, early.stderr).toBe(6)
    expect(early.stderr).toMatch(new RegExp(`still running \\(\\S+ pid ${first.pid}`))

    first.kill('SIGSTOP') // a suspended laptop or VM
    await withDb((store) => ageLease(store, 40_000)) // its lease lapses on the database's clock
    const resume = await runFleet(['rollout', 'resume', '--json', '--reason', 'the laptop went to sleep'], { cwd })
    expect(resume.code, resume.stderr).toBe(0)
    const rolloutId = (JSON.parse(resume.stdout.split('\n')[0]!) as { rolloutId: string }).rolloutId
    expect(resume.stdout).toContain('"type":"rollout-taken-over"')

    first.kill('SIGCONT')
    const woke = await first.exited
    expect(woke.code, woke.stderr).toBe(6)
    // Told by the store (a write or a renewal found the new epoch; the new holder may have finished and
    // released it already: it is named all the same) or by a host's fence, whichever came first.
    expect(woke.stderr).toMatch(/lost (\S+ to \S+@\S+ pid \d+(, which has released it since)? \(it took the lease over|rollout \S+: a host's fence says another process took it over \(refused: epoch \d+)/)
    // A process that lost its rollout says nothing about who goes on with it.
    expect(woke.stdout + woke.stderr).not.toMatch(/goes on/)
    expect(woke.stdout).not.toContain('"type":"rollout-finished"')
    // Its loss is the last thing it tells of the rollout.
    expect(JSON.parse(woke.stdout.trim().split('\n').at(-1)!)).toMatchObject({ type: 'rollout-lost' })

    for (const h of f.hosts) await expectOn(f, h.name, f.origin.shas.v2)
    await withDb(async (store) => {
      expect((await store.listEvents(rolloutId, ['rollout-finished'])).length).toBe(1)
      const rows = await store.listRolloutHosts(rolloutId)
      // Every host moved from v1 to v2 by this rollout, and recorded so (not `skipped` on v2).
      expect(rows).toHaveLength(f.hosts.length)
      for (const r of rows) expect([r.name, r.status, r.previousVersion, r.newVersion]).toEqual([r.name, 'success', f.origin.shas.v1, f.origin.shas.v2])
      expect(await store.getRollout(rolloutId)).toMatchObject({ state: 'completed', owner: expect.not.stringContaining(`pid ${first.pid}`) })
    })
    // The host-side token log: no host was claimed by an older epoch after a newer one.
    for (const h of f.hosts) {
      const epochs = await fenceLog(f, h.name)
      expect(epochs.length, h.name).toBeGreaterThan(0)
      expect(epochs, h.name).toEqual([...epochs].sort((a, b) => a - b))
    }
  })

  it('frozen while a host installs: the takeover stops that install on the host before its own runs; the woken process exits 6', async () => {
    // The first install in the fleet sleeps (the frozen holder's); the takeover's own installs run at once.
    const slowOnce = 'if mkdir "$FLEET_SIM_HOST/../slow-once" 2>/dev/null; then sleep 120; fi; bun install'
    const { f, cwd } = await setUp(2, { rollout: { stages: [100], stageDelay: '0s', concurrency: 1 }, steps: { install: slowOnce } })
    const first = spawnFleet(['rollout', 'start', '--json'], { cwd })
    const installing = await first.waitFor((e) => e.type === 'host-step' && e.step === 'install')
    const host = installing.host as string
    await until('its install to run on the host', () => existsSync(path.join(f.host(host).dir, '..', 'slow-once')))
    first.kill('SIGSTOP')
    await withDb((store) => ageLease(store, 40_000))
    const resume = await runFleet(['rollout', 'resume', '--json'], { cwd })
    expect(resume.code, resume.stdout + resume.stderr).toBe(0)
    // The frozen holder's install was stopped by the claim, on the host itself.
    const log = await readFile(`${fencePath(f.host(host).appDir)}.log`, 'utf8')
    expect(log).toMatch(/\S+Z \d+ stopped pid \d+ of epoch \d+\n/)
    first.kill('SIGCONT')
    const woke = await first.exited
    expect(woke.code, woke.stderr).toBe(6)
    // Its stopped install told it at once that the host is someone else's: no rollback of its own, nothing after the loss.
    expect(first.events.filter((e) => e.type === 'host-step' && e.phase === 'rollback')).toEqual([])
    expect(first.events.at(-1)).toMatchObject({ type: 'rollout-lost', reason: expect.stringMatching(/fence/) })
    for (const h of f.hosts) await expectOn(f, h.name, f.origin.shas.v2)
    await withDb(async (store) => {
      const latest = (await store.getRollout())!
      expect(latest.state).toBe('completed')
      expect((await store.listEvents(latest.id, ['rollout-finished'])).length).toBe(1)
      for (const r of await store.listRolloutHosts(latest.id)) expect([r.name, r.status, r.newVersion]).toEqual([r.name, 'success', f.origin.shas.v2])
    })
  })

  it('a machine whose clock runs 2 hours ahead neither skips a cooldown nor dates its rollout in the future', async () => {
    const { cwd, skewed } = await setUp(2, { rollout: { stages: [100], stageDelay: '0s', concurrency: 2, cooldown: '1h' } })
    // A rollout halted a minute ago by the database's clock: the cooldown holds until 59 minutes from now.
    const now = await withDb((store) => store.now())
    await withDb((store) =>
      seedRollout(store, { id: 'halted-1', state: 'halted', ref: 'main', sha: 'a'.repeat(40), stages: [100], seed: 's', currentStage: 0, settings: {}, owner: 'ops@x pid 1', startedAt: new Date(now.getTime() - 120_000), finishedAt: new Date(now.getTime() - 60_000), heartbeatAt: new Date(now.getTime() - 60_000), exitCode: 3, error: null }, []),
    )
    const ahead = skewed(2 * 3_600_000)
    const start = await runFleet(['rollout', 'start'], { cwd, env: ahead })
    expect(start.code, start.stderr).toBe(6)
    expect(start.stderr).toMatch(/cooldown until/)
    // With a person's override it runs, dated by the database: it sorts after the halted one, and not in the future.
    const forced = await runFleet(['rollout', 'start', '--ignore-cooldown', '--reason', 'hotfix', '--json'], { cwd, env: ahead })
    expect(forced.code, forced.stderr).toBe(0)
    await withDb(async (store) => {
      const [latest, before] = await store.listRollouts(2)
      expect(before!.id).toBe('halted-1')
      const dbNow = (await store.now()).getTime()
      expect(latest!.startedAt.getTime()).toBeLessThanOrEqual(dbNow)
      expect(latest!.startedAt.getTime()).toBeGreaterThan(dbNow - 600_000)
      for (const e of await store.listEvents(latest!.id)) expect(e.at.getTime(), e.type).toBeLessThanOrEqual(dbNow)
    })
  })

  it('a pause from a machine whose clock is 2 minutes behind reaches the running bake (exit 7), with its reason in the trail and the request applied', async () => {
    const { cwd, skewed } = await setUp(2, { gates: { bake: '60s', interval: '500ms', checks: [{ name: 'ok', command: 'true' }] } })
    const run = spawnFleet(['rollout', 'start', '--json'], { cwd })
    await run.waitFor((e) => e.type === 'bake-started')
    const pause = await runFleet(['rollout', 'pause', '--reason', 'db migration'], { cwd, env: skewed(-120_000) })
    expect(pause.code, pause.stderr).toBe(0)
    expect(pause.stdout).toMatch(/pause taken in by .* \(request [0-9a-f-]+\)/)
    const done = await run.exited
    expect(done.code, done.stderr).toBe(7)
    expect(run.events.find((e) => e.type === 'rollout-paused')).toMatchObject({ reason: expect.stringMatching(/db migration/) })
    const trail = await runFleet(['rollout', 'events'], { cwd })
    expect(trail.stdout).toMatch(/db migration/)
    await withDb(async (store) => {
      const latest = (await store.getRollout())!
      expect(latest.state).toBe('paused')
      expect((await store.listRequests(latest.id)).map((r) => [r.kind, r.outcome])).toEqual([['pause', 'applied']])
    })
  })

  it('between cron ticks, a host of the rollout cannot be rolled back, disabled or changed by hand (exit 6, naming the rollout); pause applies at once', async () => {
    const { f, cwd } = await setUp(2, { gates: { bake: '1h', interval: '30s', checks: [{ name: 'ok', command: 'true' }] } })
    const started = await runFleet(['rollout', 'start', '--detach', '--json'], { cwd })
    expect(started.code, started.stderr).toBe(0)
    const { rolloutId, hosts } = await withDb(async (store) => {
      const latest = (await store.getRollout())!
      return { rolloutId: latest.id, hosts: await store.listRolloutHosts(latest.id) }
    })
    const updated = hosts.find((h) => h.status === 'success')!.name
    const pending = hosts.find((h) => h.status === 'pending')!.name
    const before = await withDb(async (store) => (await store.listHosts()).find((h) => h.name === pending))
    for (const args of [['rollback', updated], ['hosts', 'disable', pending], ['hosts', 'update', pending, '--port', '2222']]) {
      const refused = await runFleet(args, { cwd })
      expect(refused.code, `${args.join(' ')}: ${refused.stderr}`).toBe(6)
      expect(refused.stderr).toContain(`rollout ${rolloutId}`)
    }
    await expectOn(f, updated, f.origin.shas.v2)
    await withDb(async (store) => expect((await store.listHosts()).find((h) => h.name === pending)).toEqual(before))
    // An import that leaves the rollout's hosts as they are changes nothing of it: taken. One that changes one: refused.
    const same = f.hosts.map((h) => ({ name: h.name, address: h.address, port: h.port, user: h.user, app_dir: h.appDir }))
    await writeFile(path.join(cwd, 'same.json'), JSON.stringify(same))
    const unchanged = await runFleet(['hosts', 'import', 'same.json'], { cwd })
    expect(unchanged.code, unchanged.stderr).toBe(0)
    await writeFile(path.join(cwd, 'moved.json'), JSON.stringify(same.map((h) => (h.name === pending ? { ...h, port: 2222 } : h))))
    const moved = await runFleet(['hosts', 'import', 'moved.json'], { cwd })
    expect(moved.code, moved.stderr).toBe(6)
    expect(moved.stderr).toContain(`${pending} is part of rollout ${rolloutId}`)

    const pause = await runFleet(['rollout', 'pause', '--reason', 'freeze'], { cwd })
    expect(pause.code, pause.stderr).toBe(0)
    await until('paused', () => withDb(async (store) => (await store.getRollout(rolloutId))?.state === 'paused'))
    const abort = await runFleet(['rollout', 'abort'], { cwd })
    expect(abort.code, abort.stderr).toBe(0)
    // Once it has ended, the same manual action is allowed.
    const rollback = await runFleet(['rollback', updated], { cwd })
    expect(rollback.code, rollback.stderr).toBe(0)
    await expectOn(f, updated, f.origin.shas.v1)
  })

  it('an interrupted rollout: a host moved back by hand is recorded on its row (inventory changes refused), so resume ends true of every host', async () => {
    const { f, cwd } = await setUp(4, { rollout: { stages: [50, 100], stageDelay: '0s', concurrency: 1 } })
    const run = spawnFleet(['rollout', 'start', '--json'], { cwd })
    const second = await run.waitFor((e) => e.type === 'host-started' && e.stage === 1)
    run.kill('SIGINT')
    expect((await run.exited).code).toBe(130)
    const rolloutId = second.rolloutId as string
    const rows = await withDb((store) => store.listRolloutHosts(rolloutId))
    const updated = rows.find((r) => r.status === 'success')!.name
    const pending = rows.find((r) => r.status === 'pending')!.name

    const disable = await runFleet(['hosts', 'disable', pending], { cwd })
    expect(disable.code, disable.stderr).toBe(6)
    expect(disable.stderr).toContain(`rollout ${rolloutId}, which is interrupted`)
    const rollback = await runFleet(['rollback', updated, '--reason', 'slow after the update'], { cwd })
    expect(rollback.code, rollback.stderr).toBe(0)
    await expectOn(f, updated, f.origin.shas.v1)
    await withDb(async (store) =>
      expect((await store.listRolloutHosts(rolloutId)).find((r) => r.name === updated)).toMatchObject({
        status: 'rolled_back',
        previousVersion: f.origin.shas.v1,
        newVersion: f.origin.shas.v1,
        error: expect.stringMatching(/moved back by hand .*slow after the update/),
      }),
    )

    // The resume goes on from the truth: that host counts as rolled back, the others reach v2.
    const resume = await runFleet(['rollout', 'resume'], { cwd })
    expect(resume.code, resume.stderr).toBe(4)
    expect(resume.stdout + resume.stderr).toMatch(/1 host rolled back/)
    await withDb(async (store) => {
      for (const r of await store.listRolloutHosts(rolloutId)) {
        const expected = r.name === updated ? f.origin.shas.v1 : f.origin.shas.v2
        expect([r.name, r.newVersion]).toEqual([r.name, expected])
        await expectOn(f, r.name, expected)
      }
      expect((await store.listEvents(rolloutId, ['rollout-finished'])).length).toBe(2) // interrupted, then the end
    })
  })
})

describe('the database away mid-rollout, then a cron tick (a private Postgres)', () => {
  let server: PrivatePostgres | null = null
  afterEach(async () => {
    await server?.destroy()
    server = null
  })

  it('whoever goes on, one driver: every host claimed in epoch order, the store equal to the hosts, one rollout-finished', async (t) => {
    server = await startPrivatePostgres()
    if (!server) return t.skip()
    fleet = await startTestFleet({ hosts: 3 })
    const f = fleet
    const s = await openTestStore('postgres', server.url)
    try {
      await registerHosts(s.store, f)
    } finally {
      await s.close()
    }
    const cwd = await workdir({})
    const config = { ...fleetConfigOverrides(f, { steps: { install: heldStep('bun install') }, rollout: { stages: [100], concurrency: 1 } }), database: { url: server.url } }
    await writeFile(path.join(cwd, 'rollout.config.json'), JSON.stringify(config, null, 2))
    await hold(f, true)
    const first = spawnFleet(['rollout', 'start', '--json'], { cwd })
    await first.waitFor((e) => e.type === 'host-step' && e.step === 'install')
    // The database goes away and comes back; the outage outlasted the lease (aged: the TTL is 30 s).
    await server.stop({ mode: 'immediate' })
    await sleep(2_000)
    await server.start()
    const aged = await openTestStore('postgres', server.url)
    try {
      await ageLease(aged.store, 40_000)
    } finally {
      await aged.close()
    }
    const tick = spawnFleet(['rollout', 'tick', '--json'], { cwd })
    await Promise.race([tick.waitFor((e) => e.type === 'rollout-taken-over', 30_000).catch(() => null), tick.exited])
    await hold(f, false)
    const [a, b] = await Promise.all([first.exited, tick.exited])
    const took = tick.events.some((e) => e.type === 'rollout-taken-over')
    console.log(`the tick ${took ? 'took over' : 'found it driven'}`)
    // The tick took over (the first process is told it lost, exit 6), or the first renewed in time (the tick had nothing to do).
    expect([a.code, b.code], a.stderr + b.stderr).toEqual(took ? [6, 0] : [0, 0])
    const finisher = took ? tick : first
    expect([first, tick].filter((p) => p.events.some((e) => e.type === 'rollout-finished'))).toEqual([finisher])
    for (const h of f.hosts) await expectOn(f, h.name, f.origin.shas.v2)
    const check = await openTestStore('postgres', server.url)
    try {
      const latest = (await check.store.getRollout())!
      expect(latest).toMatchObject({ state: 'completed', owner: expect.stringContaining(`pid ${finisher.pid}`) })
      expect((await check.store.listEvents(latest.id, ['rollout-finished'])).length).toBe(1)
      for (const r of await check.store.listRolloutHosts(latest.id)) expect([r.name, r.status, r.newVersion]).toEqual([r.name, 'success', f.origin.shas.v2])
    } finally {
      await check.close()
    }
    for (const h of f.hosts) {
      const epochs = await fenceLog(f, h.name)
      expect(epochs, h.name).toEqual([...epochs].sort((x, y) => x - y))
    }
  })
})

