/**
 * Pause and promote from other shells and machines (the built binary, real sshd, Postgres and
 * PGlite): a pause racing a cron tick, and requests to a rollout another process is running.
 */
import { readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'

import { runFleet } from './support/cli.js'
import { cleanUp, setUp, tick, withDb } from './support/cron.js'
import { expectOn, spawnFleet, until } from './support/fault-kit.js'

afterEach(cleanUp)

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
    const config = JSON.parse(await readFile(path.join(cwd, 'rollout.config.json'), 'utf8')) as { gates: Record<string, unknown> }
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

describe('what a sender is told', () => {
  it.each(['postgres', 'pglite'] as const)('on %s: a promote with nothing baking is not applied (exit 2, why, one JSON object); the pause after it is applied', async (kind) => {
    const { db, cwd } = await setUp(kind)
    const config = JSON.parse(await readFile(path.join(cwd, 'rollout.config.json'), 'utf8')) as Record<string, unknown> & { rollout: Record<string, unknown> }
    delete config.gates
    config.rollout.stageDelay = '60s'
    await writeFile(path.join(cwd, 'rollout.config.json'), JSON.stringify(config))
    const running = spawnFleet(['rollout', 'start', '--json'], { cwd })
    await running.waitFor((e) => e.type === 'stage-delay', 30_000)
    const promote = await runFleet(['rollout', 'promote', '--reason', 'nothing to wait for', '--json'], { cwd })
    expect(promote.code, promote.stderr).toBe(2)
    const said = JSON.parse(promote.stdout) as Record<string, unknown>
    expect(said).toMatchObject({ requested: 'promote', outcome: expect.stringMatching(/^not applied: this rollout has no gates/), rolloutId: expect.any(String) })
    const pause = await runFleet(['rollout', 'pause', '--reason', 'hold on', '--json'], { cwd })
    expect(pause.code, pause.stderr).toBe(0)
    expect(JSON.parse(pause.stdout)).toMatchObject({ requested: 'pause', outcome: 'applied', rolloutId: said.rolloutId })
    expect((await running.exited).code).toBe(7)
    await withDb(db, async (store) => {
      const id = (await store.getRollout())!.id
      expect(id).toBe(said.rolloutId)
      expect((await store.listRequests(id)).map((r) => [r.kind, r.outcome?.replace(/:.*/, '')])).toEqual([
        ['promote', 'not applied'],
        ['pause', 'applied'],
      ])
      expect((await store.listEvents(id, ['request-not-applied'])).map((e) => (e.data as { why: string }).why)).toEqual([expect.stringMatching(/no gates/)])
    })
  }, 120_000)
})

