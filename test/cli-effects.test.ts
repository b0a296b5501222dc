/**
 * The drivers the CLI adds around the engine, in-process against a real PGlite store and real HTTP
 * receivers on 127.0.0.1: the notifier (a failed notification recorded, sent to the other targets
 * only, no ping-pong between two broken ones, done() bounded), the cooldown gate (halted, reverted
 * by gates, ignored with a reason) and the metrics snapshot read from the store.
 */
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { checkCooldownFlags, cooldownGate, cooldownIgnoredEvent } from '../src/rollout/cooldown.js'
import { metricsSnapshot } from '../src/report/metrics.js'
import { makeNotifier } from '../src/report/notifier.js'
import { ExitCode, FleetError, UsageError } from '../src/errors.js'
import type { RolloutRecord } from '../src/store/store.js'
import { ageLease, openTestStore, seedRollout, testFence, type TestStore } from './support/harness.js'

let testStore: TestStore
let server: http.Server
let base: string
const hits: { path: string; type: unknown }[] = []
const hung: http.ServerResponse[] = []

beforeAll(async () => {
  testStore = await openTestStore('pglite')
  server = http.createServer((req, res) => {
    let text = ''
    req.on('data', (c: Buffer) => (text += c.toString()))
    req.on('end', () => {
      hits.push({ path: req.url ?? '', type: (JSON.parse(text) as { type?: unknown }).type })
      if (req.url === '/hang') return void hung.push(res)
      res.writeHead(req.url?.startsWith('/fail') ? 503 : 204).end()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}, 30_000)

afterAll(async () => {
  for (const res of hung) res.destroy()
  server.closeAllConnections()
  await new Promise((resolve) => server.close(resolve))
  await testStore.close()
})

const rollout = (id: string, state: RolloutRecord['state'], startedAt: Date, finishedAt: Date | null): Omit<RolloutRecord, 'epoch'> => ({
  id,
  state,
  ref: 'main',
  sha: 'a'.repeat(40),
  stages: [100],
  seed: 's',
  currentStage: 0,
  settings: {},
  owner: 'ann@ops pid 1',
  startedAt,
  finishedAt,
  heartbeatAt: startedAt,
  exitCode: null,
  error: null,
})

const stored = (rolloutId: string, type: string, data: Record<string, unknown> = {}) => ({ rolloutId, type, host: null, data: { type, rolloutId, ...data }, at: new Date() })
const fast = { timeoutMs: 1000, retries: 1, backoffMs: 10 }

describe('notifier', () => {
  it('records a failure once per broken target, tells only the other targets, and stops there', async () => {
    const { store } = testStore
    const lines: string[] = []
    const notifier = makeNotifier(
      store,
      [
        { url: `${base}/fail-a`, format: 'json', on: ['rollout-finished', 'notification-failed'] },
        { url: `${base}/fail-b`, format: 'json', on: ['notification-failed'] },
        { url: `${base}/ok`, format: 'json', on: ['notification-failed'] },
      ],
      { warn: (l) => lines.push(l), delivery: fast },
    )
    hits.length = 0
    notifier.onStored([stored('r-notify', 'rollout-started'), stored('r-notify', 'rollout-finished', { state: 'completed' })], await testFence(store, 'r-notify'))
    await notifier.done()
    // A fails rollout-finished (2 attempts) → nf#1 goes to B (fails, 2 attempts → nf#2, not sent on) and to OK.
    expect(hits.filter((h) => h.path === '/fail-a').map((h) => h.type)).toEqual(['rollout-finished', 'rollout-finished'])
    expect(hits.filter((h) => h.path === '/fail-b').map((h) => h.type)).toEqual(['notification-failed', 'notification-failed'])
    expect(hits.filter((h) => h.path === '/ok').map((h) => h.type)).toEqual(['notification-failed'])
    const failed = (await store.listEvents('r-notify')).map((e) => e.data as Record<string, unknown>)
    expect(failed.map((d) => [d.event, d.target, d.status])).toEqual([
      ['rollout-finished', 0, 503],
      ['notification-failed', 1, 503],
    ])
    expect(lines).toHaveLength(2)
    expect(lines.join('\n')).not.toContain('/fail') // URLs are shown without their path
  })

  it('done() does not wait past its bound for a receiver that never answers', async () => {
    const lines: string[] = []
    const notifier = makeNotifier(testStore.store, [{ url: `${base}/hang`, format: 'slack' }], { warn: (l) => lines.push(l), delivery: { timeoutMs: 10_000, retries: 0 } })
    notifier.onStored([stored('r-hang', 'rollout-started')], await testFence(testStore.store, 'r-hang'))
    const t0 = Date.now()
    await notifier.done(300)
    expect(Date.now() - t0).toBeLessThan(2000)
    expect(lines).toEqual([expect.stringMatching(/1 notification\(s\) still in flight after 0 s/)])
  })
})

describe('cooldown gate', () => {
  const HOUR = 3_600_000
  const t0 = new Date('2030-01-01T00:00:00Z')
  const later = (ms: number) => new Date(t0.getTime() + ms)

  it('flags: --ignore-cooldown needs a reason, a reason needs the flag', () => {
    expect(() => checkCooldownFlags({ ignoreCooldown: true })).toThrow(UsageError)
    expect(() => checkCooldownFlags({ ignoreCooldown: true, reason: '  ' })).toThrow(/needs --reason/)
    expect(() => checkCooldownFlags({ reason: 'x' })).toThrow(UsageError)
    expect(() => checkCooldownFlags({ ignoreCooldown: true, reason: 'hotfix' })).not.toThrow()
  })

  it('a halted rollout blocks for the cooldown (exit 6, until when); ignored: returned for the record; after it: free', async () => {
    const { store } = testStore
    await seedRollout(store, rollout('r-halted', 'halted', t0, later(60_000)), [])
    const refusal = await cooldownGate(store, HOUR, {}, later(120_000)).catch((e: unknown) => e)
    expect(refusal).toBeInstanceOf(FleetError)
    expect((refusal as FleetError).exitCode).toBe(ExitCode.locked)
    expect((refusal as FleetError).message).toMatch(/^cooldown until 2030-01-01T01:01:00.000Z: rollout r-halted was halted/)
    const ignored = await cooldownGate(store, HOUR, { ignoreCooldown: true, reason: ' hotfix ' }, later(120_000))
    expect(ignored).toMatchObject({ cause: 'halted', causedBy: 'r-halted', reason: 'hotfix', until: later(HOUR + 60_000) })
    expect(cooldownIgnoredEvent(ignored!, 'r-next', later(1))).toMatchObject({ type: 'cooldown-ignored', rolloutId: 'r-next', until: '2030-01-01T01:01:00.000Z', reason: 'hotfix' })
    expect(await cooldownGate(store, HOUR, {}, later(HOUR + 60_001))).toBeNull()
    expect(await cooldownGate(store, 0, {}, later(1))).toBeNull()
  })

  it('a rollout its gates reverted blocks too, whatever state it ended in; a still-running newer one does not hide it', async () => {
    const { store } = testStore
    const start = later(2 * HOUR)
    const fence = await seedRollout(store, rollout('r-reverted', 'completed', start, later(2 * HOUR + 60_000)), [])
    await store.appendEvents(fence, [{ rolloutId: 'r-reverted', type: 'gates-failed', data: { type: 'gates-failed', stage: 0, reason: 'error rate', onFail: 'revert' }, at: new Date() }])
    await seedRollout(store, rollout('r-running', 'running', later(2 * HOUR + 90_000), null), [])
    const refusal = await cooldownGate(store, HOUR, {}, later(2 * HOUR + 120_000)).catch((e: unknown) => e)
    expect((refusal as FleetError).message).toMatch(/rollout r-reverted was reverted/)
  })
})

describe('metrics snapshot from the store', () => {
  it('the latest rollout, its host counts and events; last success = the latest completed rollout', async () => {
    const { store } = testStore
    const snapshot = await metricsSnapshot(store, new Date('2031-01-01T00:00:00Z'))
    expect(snapshot).toMatchObject({ rolloutId: 'r-running', state: 'running', hosts: {}, lastRunAt: new Date('2031-01-01T00:00:00Z') })
    expect(snapshot.lastSuccessAt).toEqual(new Date('2030-01-01T02:01:00Z'))
  })
})
