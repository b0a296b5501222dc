/**
 * Issue 18, promotion latency: from a stage's end (its wait over: the next stage starts) to every
 * host of the next stage verified (its host-finished), in place vs release directories with
 * prepare-ahead, on one sshd fleet in one run: h01-h03 in place, h04-h06 releases (each layout in
 * its own store), stages 33% → 100% (1 host, then 2), rollout.stageDelay 5 s. Twice: with the
 * fixture's install (no dependencies) and with an install that takes 2 s more (a stand-in for real
 * dependencies). Then the disk a kept release takes (du of a release directory).
 */
import { execFileSync } from 'node:child_process'
import { afterAll, expect, it } from 'vitest'

import type { FleetConfig } from '../src/config/types.js'
import type { RolloutEvent } from '../src/rollout/events.js'
import { createTestDatabase, type TestDatabase } from '../test/support/postgres.js'
import { openTestStore, registerHosts, rollout, testConfig, type TestStore } from '../test/support/harness.js'
import { startTestFleet, type TestFleet } from '../test/support/test-fleet.js'
import { record } from './support/results.js'

let fleet: TestFleet | null = null
const stores: TestStore[] = []
const databases: TestDatabase[] = []

afterAll(async () => {
  for (const s of stores) await s.close()
  for (const d of databases) await d.drop()
  await fleet?.stop()
})

const ms = (n: number) => `${Math.round(n)} ms`
const at = (e: RolloutEvent) => Date.parse(e.at)

/** Promotion latency and what bounds it, from one rollout's events. */
function promotion(events: readonly RolloutEvent[]) {
  const promoted = events.find((e) => e.type === 'stage-started' && e.stage === 1)!
  const finished = events.filter((e) => e.type === 'host-finished' && e.stage === 1) as Extract<RolloutEvent, { type: 'host-finished' }>[]
  const hosts = finished.map((e) => e.host)
  const stepAt = (host: string, step: string) => at(events.find((e) => e.type === 'host-step' && e.host === host && e.step === step && e.phase === 'update')!)
  // Restart + verify: from the restart step to the confirm step (verify's delay and its checks between).
  const restartVerify = Math.max(...hosts.map((h) => stepAt(h, 'confirm') - stepAt(h, 'restart')))
  const steps = new Set(events.filter((e) => e.type === 'host-step' && hosts.includes(e.host) && e.phase === 'update').map((e) => (e as { step: string }).step))
  const preparedAhead = events.filter((e) => e.type === 'host-prepared' && e.ok && at(e) <= at(promoted)).length
  return {
    latencyMs: Math.max(...finished.map(at)) - at(promoted),
    restartVerifyMs: restartVerify,
    statuses: finished.map((e) => e.status),
    fetchedAfterPromotion: steps.has('fetch') || steps.has('install'),
    preparedAhead,
  }
}

const du = (dir: string): number => Number(execFileSync('du', ['-sk', dir], { encoding: 'utf8' }).split('\t')[0])

it('promotion latency: in place vs releases with prepare-ahead; disk per kept release', async () => {
  fleet = await startTestFleet({ hosts: 6 })
  const f = fleet
  const layouts = [
    { layout: 'in-place' as const, hosts: ['h01', 'h02', 'h03'] },
    { layout: 'releases' as const, hosts: ['h04', 'h05', 'h06'] },
  ]
  const setups: { layout: string; store: TestStore; config: (install: string) => FleetConfig }[] = []
  for (const l of layouts) {
    const database = await createTestDatabase()
    if (database) databases.push(database)
    const store = await openTestStore(database ? 'postgres' : 'pglite', database?.url)
    stores.push(store)
    await registerHosts(store.store, f, l.hosts)
    setups.push({
      layout: l.layout,
      store,
      config: (install) =>
        testConfig(f, store.databaseConfig, { rollout: { stages: [33, 100], stageDelay: '5s', concurrency: 5 }, app: { layout: l.layout, keepReleases: 3 }, steps: { install } }),
    })
  }
  const variants = [
    { name: 'fixture install (no dependencies)', install: 'bun install', ref: 'v2' },
    { name: 'install + 2 s (stand-in for real dependencies)', install: 'sleep 2 && bun install', ref: 'v3' },
  ]
  const rows: Record<string, (string | number)[]> = {}
  const data: Record<string, unknown> = {}
  const summary = []
  for (const v of variants) {
    for (const s of setups) {
      const run = await rollout(s.store.store, s.config(v.install), { ref: v.ref })
      expect(run.exitCode).toBe(0)
      const p = promotion(run.events)
      expect(p.statuses).toEqual(['success', 'success'])
      if (s.layout === 'releases') {
        expect(p.preparedAhead).toBe(2)
        expect(p.fetchedAfterPromotion).toBe(false)
      }
      const key = `${v.name} / ${s.layout}`
      rows[key] = [v.name, s.layout, ms(p.latencyMs), ms(p.restartVerifyMs), s.layout === 'releases' ? `${p.preparedAhead} of 2` : '—']
      data[key] = p
      if (s.layout === 'releases') {
        const bound = p.restartVerifyMs + 1_000
        summary.push({
          metric: `promotion latency, releases with prepare-ahead, ${v.name}`,
          target: '≤ slowest restart + verify + 1 s',
          value: `${ms(p.latencyMs)} (bound ${ms(bound)}; in place ${ms((data[`${v.name} / in-place`] as { latencyMs: number }).latencyMs)})`,
          ok: p.latencyMs <= bound,
        })
      }
    }
  }

  // Disk: a kept release (worktree + its small .git: objects come from repo.git), repo.git once per host, an in-place checkout.
  const app = f.host('h04').appDir
  const disk = {
    releaseKiB: du(`${app}.releases/${f.origin.shas.v3}`),
    migratedReleaseKiB: du(`${app}.releases/${f.origin.shas.v1}`),
    repoGitKiB: du(`${app}.releases/repo.git`),
    inPlaceCheckoutKiB: du(f.host('h01').appDir),
  }
  data['disk'] = disk
  summary.push({
    metric: 'disk per kept release (fixture app, no dependencies)',
    target: '—',
    value: `${disk.releaseKiB} KiB (repo.git ${disk.repoGitKiB} KiB once per host; an in-place checkout ${disk.inPlaceCheckoutKiB} KiB)`,
    ok: null,
  })
  record({
    id: 'releases-promotion',
    title: 'Release directories: promotion latency and disk (issue 18)',
    order: 48,
    summary,
    tables: {
      'stage end → every host of the next stage verified (2 hosts), same sshd fleet, same run': {
        header: ['install', 'layout', 'promotion latency', 'slowest restart + verify', 'prepared ahead'],
        rows,
      },
      'disk (du -sk, KiB), on the releases hosts': {
        header: ['what', 'KiB'],
        rows: {
          release: ['a release created by fleet (git clone --shared + install)', disk.releaseKiB],
          migrated: ['the migrated original checkout (keeps its own objects)', disk.migratedReleaseKiB],
          repo: ['<app>.releases/repo.git (once per host)', disk.repoGitKiB],
          inPlace: ['an in-place checkout, for comparison', disk.inPlaceCheckoutKiB],
        },
      },
    },
    notes:
      'Promotion latency: from the next stage\'s start (the first stage\'s rollout.stageDelay of 5 s over; with gates, the same moment is ' +
      '"gates passed") to the last host-finished of that stage, from the events\' timestamps (ms). In place each host of the stage fetches, ' +
      'checks out, installs, restarts and verifies after the promotion; with releases both hosts prepared the target during the wait ' +
      '(host-prepared before the stage started), so after it they only activate (one rename), restart, verify (verify.delay 300 ms) and ' +
      'prune. "Slowest restart + verify" is the restart step to the confirm step of the slowest host of the stage. The second pair adds ' +
      '`sleep 2` to the install: the in-place latency grows by it, the releases latency does not. Disk: the fixture app has no dependencies ' +
      '(no node_modules), so a release is its worktree and a small .git whose objects live in repo.git; with real dependencies add ' +
      'node_modules per release (bun links files from its global cache where the filesystem allows; not measured here: no registry offline).',
    data,
  })
}, 300_000)
