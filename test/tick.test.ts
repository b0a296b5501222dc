/**
 * Unattended rollouts: `fleet rollout tick` run from a cron-like loop (the built binary, real
 * sshd, PGlite), `start --detach`, overlapping ticks, a tick SIGKILLed mid-stage, pause between
 * ticks, and gates in error. Gates here are local checks whose verdict the test sets through a
 * file (the Prometheus side of gates is tested in gates.test.ts).
 */
import { writeFile, rm } from 'node:fs/promises'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterEach, describe, expect, it } from 'vitest'

import { runFleet } from './support/cli.js'
import { cleanUp, lastJson, setUp, tick, withDb } from './support/cron.js'
import { expectOn, hungInstalls, spawnFleet, until } from './support/fault-kit.js'

afterEach(cleanUp)

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
      if (state !== 'completed') await sleep(300)
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
      if (state !== 'completed') await sleep(300)
    }
    expect(state).toBe('completed')
    const trail = await runFleet(['rollout', 'events'], { cwd })
    expect(trail.code, trail.stderr).toBe(0)
    expect(trail.stdout).toMatch(/\S+@\S+ +\* rollout paused — db migration/)
    expect(trail.stdout).toMatch(/\* rollout resumed at stage 1 — migration done/)
  })
})
