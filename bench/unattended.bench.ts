/**
 * Issues 11 and 12: what health gates add to a rollout, and what a cron tick costs.
 *
 * - Gates: a 20-host rollout (3 stages, concurrency 5) against the real test fleet, once without
 *   gates and once with a 5 s bake per stage (one local check measured every second). The gates
 *   should add their bakes (3 × 5 s) and nothing else of note.
 * - Idle tick: `fleet rollout tick` with nothing due (no rollout in progress), spawned as cron runs
 *   it, on PGlite and on Postgres: median wall and peak RSS of BENCH_TICK_RUNS (default 7) runs.
 */
import { writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { mkdtemp, rm } from 'node:fs/promises'
import { afterAll, describe, expect, it } from 'vitest'

import { openTestStore, registerHosts, rollout, testConfig, type TestStore } from '../test/support/harness.js'
import { createTestDatabase, pgAvailable } from '../test/support/postgres.js'
import { startTestFleet, type TestFleet } from '../test/support/test-fleet.js'
import { fleetConfigOverrides } from '../test/support/harness.js'
import { median, mb, ms, runCli } from './support/measure.js'
import { record } from './support/results.js'

const HOSTS = 20
const BAKE_MS = 5_000
const TICK_RUNS = Number(process.env.BENCH_TICK_RUNS ?? 7)

let fleet: TestFleet | null = null
let store: TestStore | null = null
afterAll(async () => {
  await store?.close()
  await fleet?.stop()
})

describe('health gates and cron ticks', () => {
  it(`${HOSTS} hosts, 3 stages: a ${BAKE_MS / 1000} s bake per stage adds the bakes and little else`, async () => {
    fleet = await startTestFleet({ hosts: HOSTS })
    store = await openTestStore('pglite')
    await registerHosts(store.store, fleet)
    const base = { rollout: { stages: [10, 50, 100], concurrency: 5, stageDelay: '0s' }, verify: { delay: '1s' } }
    const plain = testConfig(fleet, store.databaseConfig, base)
    const gated = testConfig(fleet, store.databaseConfig, { ...base, gates: { bake: `${BAKE_MS}ms`, interval: '1s', checks: [{ name: 'ok', command: 'true' }] } })
    // Each run moves every host to another commit, so both do the same work.
    const t0 = performance.now()
    const first = await rollout(store.store, plain, { ref: 'main' })
    const plainMs = performance.now() - t0
    const t1 = performance.now()
    const second = await rollout(store.store, gated, { ref: fleet.origin.shas.v3 })
    const gatedMs = performance.now() - t1
    expect([first.exitCode, second.exitCode]).toEqual([0, 0])
    const bakes = 3 * BAKE_MS
    const extra = gatedMs - plainMs - bakes
    record({
      id: 'gates',
      title: 'Health gates: what a bake costs (issue 11)',
      order: 40,
      summary: [{ metric: `gated rollout − plain rollout − 3 bakes (${HOSTS} hosts)`, target: 'small next to the bakes', value: ms(extra), ok: Math.abs(extra) < bakes / 5 }],
      tables: {
        'One rollout each, real sshd fleet, PGlite': {
          header: ['rollout', 'wall'],
          rows: { plain: ['no gates', ms(plainMs)], gated: [`bake ${BAKE_MS / 1000} s per stage, 1 check every 1 s`, ms(gatedMs)], bakes: ['sum of the bakes', ms(bakes)] },
        },
      },
      notes: 'The bake after the last stage counts too (the design bakes every stage, the last included).',
      data: { plainMs, gatedMs, bakes },
    })
    console.log(`gates: plain ${ms(plainMs)}, gated ${ms(gatedMs)}, bakes ${ms(bakes)}, extra ${ms(extra)}`)
  })

  it(`an idle tick (nothing due), ${TICK_RUNS} spawns each on PGlite and Postgres`, async () => {
    const rows: Record<string, string[]> = {}
    const data: Record<string, unknown> = {}
    const f = fleet ?? (fleet = await startTestFleet({ hosts: 1 }))
    for (const kind of ['pglite', 'postgres'] as const) {
      if (kind === 'postgres' && !(await pgAvailable())) continue
      const dir = await mkdtemp(path.join(os.tmpdir(), 'fleet-bench-tick-'))
      const database = kind === 'postgres' ? await createTestDatabase() : null
      const db = database ? { url: database.url } : { dir: path.join(dir, 'store') }
      await writeFile(path.join(dir, 'rollout.config.json'), JSON.stringify({ ...fleetConfigOverrides(f), database: db }))
      // The first run creates and migrates the store; cron meets an existing one.
      await runCli(['rollout', 'tick'], { cwd: dir })
      const runs = []
      for (let i = 0; i < TICK_RUNS; i++) runs.push(await runCli(['rollout', 'tick'], { cwd: dir }))
      expect(runs.every((r) => r.code === 0)).toBe(true)
      const wall = median(runs.map((r) => r.wallMs))
      const rss = median(runs.map((r) => (r.maxRssKb ?? 0) * 1024))
      rows[kind] = [kind, ms(wall), rss ? mb(rss) : 'n/a']
      data[kind] = { wallMs: runs.map((r) => r.wallMs), maxRssKb: runs.map((r) => r.maxRssKb) }
      await database?.drop()
      await rm(dir, { recursive: true, force: true })
    }
    record({
      id: 'tick',
      title: 'An idle cron tick (issue 12)',
      order: 41,
      tables: { [`Median of ${TICK_RUNS} spawns of \`fleet rollout tick\` with nothing due`]: { header: ['store', 'median wall', 'median peak RSS'], rows } },
      notes:
        'A tick acts on what is due when it runs, so a bake that ends between two ticks is promoted by the next one: at most one cron period (plus one tick) late.',
      data,
    })
    console.log(`idle tick: ${Object.values(rows).map((r) => r.join(' ')).join('; ')}`)
  })
})
