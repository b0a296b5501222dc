/**
 * Not part of the figures: where the orchestrator's CPU goes during a rollout (node:inspector
 * sampling profile of the in-process rollout), for each store. Run it alone:
 *   BENCH_PROFILE=1 npm run bench -- profile           (BENCH_SIZES=100:10 by default)
 * The .cpuprofile files land in bench/profiles/ (open them in Chrome DevTools).
 */
import { mkdirSync } from 'node:fs'
import path from 'node:path'
import { afterAll, describe, it } from 'vitest'

import { openTestStore, registerHosts, testConfig } from '../test/support/harness.js'
import { createTestDatabase, pgAvailable } from '../test/support/postgres.js'
import { startTestFleet, type TestFleet } from '../test/support/test-fleet.js'
import { countingStore } from './support/counting.js'
import { barePool, inProcessRollout, Releases } from './support/fleet-run.js'
import { REPO_ROOT } from './support/measure.js'
import { profiled } from './support/profile.js'

const [n, c] = (process.env.BENCH_SIZES ?? '100:10').split(',')[0]!.split(':').map(Number) as [number, number]
let fleet: TestFleet | null = null
afterAll(async () => fleet?.stop())

describe.runIf(process.env.BENCH_PROFILE === '1')('profile', () => {
  it(`profile N=${n} c=${c}`, async () => {
    fleet = await startTestFleet({ hosts: n, ssh: 'sshd' })
    const releases = new Releases(fleet)
    const dir = path.join(REPO_ROOT, 'bench', 'profiles')
    mkdirSync(dir, { recursive: true })
    const overrides = { verify: { delay: '1s' }, rollout: { stages: [10, 50, 100], concurrency: c, stageDelay: '0s' } }
    const bare = await profiled(() => barePool(releases, testConfig(fleet!, { url: null, dir: '' }, overrides), fleet!.hosts, 'p'), path.join(dir, 'bare-pool.cpuprofile'))
    console.log('bare pool', JSON.stringify(bare.summary, null, 1))
    for (const kind of ['pglite', 'postgres'] as const) {
      const database = kind === 'postgres' ? ((await pgAvailable()) ? await createTestDatabase() : null) : null
      if (kind === 'postgres' && !database) continue
      const ts = await openTestStore(kind, database?.url)
      try {
        await registerHosts(ts.store, fleet)
        const { store, counter } = countingStore(ts.database)
        const config = testConfig(fleet, ts.databaseConfig, overrides)
        const { result, summary } = await profiled(() => inProcessRollout(fleet!, releases, store, counter, config, fleet!.hosts, 'p'), path.join(dir, `rollout-${kind}.cpuprofile`))
        console.log(kind, Math.round(result.window.wallMs), JSON.stringify(summary, null, 1))
      } finally {
        await ts.close()
        await database?.drop()
      }
    }
  })
})
