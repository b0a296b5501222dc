/**
 * Health gates end to end: the engine bakes every stage against a REAL Prometheus scraping the
 * simulated fleet's /metrics (real sshd, real git, a service that really serves errors). One
 * Prometheus and one 3-host fleet for the file (stages 33/100: one canary, then two); every
 * scenario starts from v1 everywhere and checks real host state and stored state.
 */
import os from 'node:os'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'

import type { RawConfigOverrides } from '../src/config/load.js'
import { makeExecutor } from '../src/cli/context.js'
import { systemClock } from '../src/rollout/clock.js'
import { abortRollout, resumeRollout, type RolloutResult } from '../src/rollout/engine.js'
import type { RolloutEvent } from '../src/rollout/events.js'
import { expectOn } from './support/fault-kit.js'
import { openTestStore, registerHosts, rollout, testConfig, type TestStore } from './support/harness.js'
import { prometheusAvailable, startTestPrometheus, type TestPrometheus } from './support/prometheus.js'
import { startTestFleet, type TestFleet } from './support/test-fleet.js'

const available = prometheusAvailable()
let prom: TestPrometheus
let fleet: TestFleet
let testStore: TestStore

const ERROR_RATE = 'sum(rate(http_requests_total{code=~"5..",commit="{sha}",host=~"{hosts}"}[5s])) / sum(rate(http_requests_total{commit="{sha}",host=~"{hosts}"}[5s]))'

beforeAll(async () => {
  if (!available) return
  ;[prom, fleet] = await Promise.all([startTestPrometheus(), startTestFleet({ hosts: 3 })])
  await prom.setTargets(fleet.hosts.map((h) => ({ host: h.name, port: h.metricsPort })))
  testStore = await openTestStore('pglite')
  await registerHosts(testStore.store, fleet)
  await prom.waitFor('count(rate(http_requests_total{code="200"}[5s]) > 0)', (r) => Number((r[0] as { value: [number, string] })?.value[1]) === 3, 30_000)
}, 90_000)

afterAll(async () => {
  await testStore?.close()
  await Promise.all([prom?.close(), fleet?.stop()])
})

/** Every host back on v1 (no gates), so each scenario starts the same; a rollout a scenario left paused is ended first. */
beforeEach(async () => {
  if (!available) return
  const latest = await testStore.store.getRollout()
  if (latest?.state === 'paused') await abortRollout({ store: testStore.store, executor: makeExecutor(testConfig(fleet, testStore.databaseConfig), testStore.store), clock: systemClock, listeners: [] }, 'test', { rollback: false })
  const back = await rollout(testStore.store, testConfig(fleet, testStore.databaseConfig, { rollout: { stages: [100] } }), { ref: fleet.origin.shas.v1 })
  expect(back.exitCode).toBe(0)
})

function gated(gates: Record<string, unknown>): ReturnType<typeof testConfig> {
  const overrides: RawConfigOverrides = {
    rollout: { stages: [33, 100], failureThreshold: 0.5 },
    gates: { bake: '3s', interval: '1s', prometheus: { url: prom.url, timeout: '2s' }, metrics: [{ name: 'error_rate', query: ERROR_RATE, max: 0.05 }], failureLimit: 0, inconclusiveLimit: 3, errorTimeout: '4s', ...gates },
  }
  return testConfig(fleet, testStore.databaseConfig, overrides)
}

const ofType = <T extends RolloutEvent['type']>(events: readonly RolloutEvent[], type: T) => events.filter((e): e is Extract<RolloutEvent, { type: T }> => e.type === type)

describe.skipIf(!available)('health gates against a real Prometheus', () => {
  it('a healthy release bakes every stage and completes → exit 0', async () => {
    // A 2 s bake: it passes once it has lasted and the latest measurement passed (an early measurement without data only makes it last longer).
    const result = await rollout(testStore.store, gated({ bake: '2s' }), { ref: 'main' })
    expect(result).toMatchObject({ state: 'completed', exitCode: 0 })
    for (const h of fleet.hosts) await expectOn(fleet, h.name, fleet.origin.shas.v2)
    expect(ofType(result.events, 'gates-passed').map((e) => e.stage)).toEqual([0, 1])
    const measured = ofType(result.events, 'gate-measured')
    expect(measured.length).toBeGreaterThanOrEqual(2)
    expect(measured.at(-1)).toMatchObject({ verdict: 'pass', gates: [{ name: 'error_rate', verdict: 'pass', max: 0.05 }] })
    // Every measurement is in the store too.
    expect((await testStore.store.listEvents(result.rolloutId, ['gate-measured'])).length).toBe(measured.length)
  })

  it('a release serving ~20% 5xx passes verify but fails its canary bake → every moved host back on v1, later stages untouched → exit 3', async () => {
    const { v1 } = fleet.origin.shas
    const result = await rollout(testStore.store, gated({ interval: '2s', bake: '6s' }), { ref: 'errors' })
    expect(result).toMatchObject({ state: 'halted', exitCode: 3 })
    const canary = ofType(result.events, 'stage-started')[0]!.hosts[0]!
    const restarted = ofType(result.events, 'host-finished').find((e) => e.host === canary)!
    const failed = ofType(result.events, 'gates-failed')[0]!
    expect(failed).toMatchObject({ stage: 0, onFail: 'revert' })
    expect(failed.reason).toMatch(/error_rate/)
    // Detection: from the canary's restart being verified to the revert decision.
    console.log(`gates: detection ${Date.parse(failed.at) - Date.parse(restarted.at)} ms after the canary finished (interval 2 s, scrape 1 s, rate window 5 s)`)
    for (const h of fleet.hosts) await expectOn(fleet, h.name, v1)
    expect(ofType(result.events, 'stage-started')).toHaveLength(1)
    const rows = await testStore.store.listRolloutHosts(result.rolloutId)
    expect(rows.find((r) => r.name === canary)).toMatchObject({ status: 'rolled_back' })
    expect(rows.find((r) => r.name === canary)!.error).toMatch(/gates failed at stage 1/)
    expect(rows.filter((r) => r.name !== canary).map((r) => r.status)).toEqual(['pending', 'pending'])
  })

  it('Prometheus down during a bake: nothing changes, paused at errorTimeout (exit 7); back up → resume → completed', async () => {
    const { v1, v2 } = fleet.origin.shas
    let stopped: Promise<void> | null = null
    // The bake outlasts errorTimeout by 4 s, so Prometheus going away must end it paused, never passed.
    const config = gated({ bake: '6s', errorTimeout: '2s' })
    const first = await rollout(testStore.store, config, {
      ref: 'main',
      onEvent: (e) => {
        if (e.type === 'bake-started' && !stopped) stopped = prom.stop()
      },
    })
    await stopped
    expect(first).toMatchObject({ state: 'paused', exitCode: 7 })
    const paused = ofType(first.events, 'rollout-paused')[0]!
    expect(paused.reason).toMatch(/in error/)
    // While the gates were in error no host changed: the canary runs v2, the others v1.
    const canary = ofType(first.events, 'stage-started')[0]!.hosts[0]!
    for (const h of fleet.hosts) await expectOn(fleet, h.name, h.name === canary ? v2 : v1)
    expect(ofType(first.events, 'gates-failed')).toHaveLength(0)

    const restartedAt = Date.now() / 1000
    await prom.restart()
    // Fresh samples again (Prometheus scrapes again only ~5 s after a start): rates over 5 s have data,
    // and the canary's new release has been scraped since the restart (samples from before the stop
    // may still lie in a 5 s window; the gate needs the ones after it).
    await prom.waitFor('count(rate(http_requests_total{code="200"}[5s]) > 0)', (r) => Number((r[0] as { value: [number, string] })?.value[1]) === 3, 30_000)
    await prom.waitFor(`count(timestamp(http_requests_total{commit="${v2}"}) > ${restartedAt})`, (r) => Number((r[0] as { value: [number, string] })?.value[1]) > 0, 30_000)
    // Resumed with the usual 3 s bake (the long one only had to outlast errorTimeout): the operator's config at resume time is what counts.
    const current = { gates: gated({}).gates, checksDir: os.tmpdir() }
    const resumed = (await resumeRollout({ store: testStore.store, executor: makeExecutor(config, testStore.store), clock: systemClock, listeners: [] }, 'test', { current })) as RolloutResult
    expect(resumed).toMatchObject({ rolloutId: first.rolloutId, state: 'completed', exitCode: 0 })
    for (const h of fleet.hosts) await expectOn(fleet, h.name, v2)
  })

  it('a query with no data is inconclusive → paused after inconclusiveLimit in a row (exit 7), nothing rolled back', async () => {
    const result = await rollout(testStore.store, gated({ metrics: [{ name: 'nothing', query: 'sum(no_such_metric{commit="{sha}"})', max: 1 }], inconclusiveLimit: 1 }), { ref: 'main' })
    expect(result).toMatchObject({ state: 'paused', exitCode: 7 })
    const measured = ofType(result.events, 'gate-measured')
    expect(measured.map((m) => m.verdict)).toEqual(['inconclusive', 'inconclusive'])
    expect(measured[0]!.gates[0]!.reason).toMatch(/no series|no data/)
    expect(ofType(result.events, 'rollout-paused')[0]!.reason).toMatch(/inconclusive/)
    const canary = ofType(result.events, 'stage-started')[0]!.hosts[0]!
    await expectOn(fleet, canary, fleet.origin.shas.v2)
  })

  it('a failing local check fails the bake; onFail "halt" leaves the hosts as they are → exit 3', async () => {
    const result = await rollout(testStore.store, gated({ metrics: [], prometheus: { url: null }, checks: [{ name: 'smoke', command: 'test {sha} = nope' }], onFail: 'halt' }), { ref: 'main' })
    expect(result).toMatchObject({ state: 'halted', exitCode: 3 })
    expect(ofType(result.events, 'gates-failed')[0]).toMatchObject({ onFail: 'halt' })
    expect(ofType(result.events, 'gate-measured')[0]!.gates[0]).toMatchObject({ name: 'smoke', kind: 'check', verdict: 'fail' })
    const canary = ofType(result.events, 'stage-started')[0]!.hosts[0]!
    await expectOn(fleet, canary, fleet.origin.shas.v2) // halted, not reverted
    expect((await testStore.store.listRolloutHosts(result.rolloutId)).find((r) => r.name === canary)).toMatchObject({ status: 'success' })
  })
})
