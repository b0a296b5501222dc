/**
 * Issue 20: what the dashboard and the traces cost.
 *
 * - Dashboard: a store with N = 1,000 and 10,000 hosts and a finished N-host rollout (with 40 gate
 *   measurements), `fleet dashboard`'s server in this process, Debian's chromium through
 *   playwright-core: time from navigation to the first render of the rollout and its first page of
 *   hosts (median of BENCH_DASH_RUNS fresh pages, each after the server's 1 s cache expired, so
 *   every one reads the store), and the bytes the page loads (HTML, script, style, the state it
 *   polls, one page of hosts). Postgres when it answers, and PGlite (read from its final snapshot,
 *   as every read after the first is).
 * - Traces: a 100-host rollout (concurrency 10) on the real test fleet, in process with the journal's
 *   sinks as `fleet rollout start` has them, traces off and on (to an OTLP/HTTP receiver on
 *   127.0.0.1), interleaved off, on, on, off, off, on in one run; median wall and CPU of this process, spans received.
 */
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, describe, expect, it } from 'vitest'

import { makeExecutor, rolloutRequest } from '../src/cli/context.js'
import { loadConfig } from '../src/config/load.js'
import type { FleetConfig } from '../src/config/types.js'
import { startDashboard } from '../src/dashboard/server.js'
import { rolloutEffects } from '../src/report/effects.js'
import { systemClock } from '../src/rollout/clock.js'
import { runRollout } from '../src/rollout/engine.js'
import { loadInventory } from '../src/rollout/inventory.js'
import type { Store } from '../src/store/store.js'
import { chromiumAvailable, startBrowser } from '../test/support/browser.js'
import { fleetConfigOverrides, openTestStore, registerHosts, seedRollout, testConfig, type TestStore } from '../test/support/harness.js'
import { createTestDatabase, pgAvailable } from '../test/support/postgres.js'
import { startTestFleet, type TestFleet } from '../test/support/test-fleet.js'
import { Releases } from './support/fleet-run.js'
import { median, ms } from './support/measure.js'
import { record } from './support/results.js'

/** What the page functions below touch in the browser (the project compiles without the DOM library). */
declare const document: { querySelector(s: string): { textContent: string | null } | null; querySelectorAll(s: string): { length: number } }
declare const window: Record<string, unknown>

const SIZES = (process.env.BENCH_DASH_SIZES ?? '1000,10000').split(',').map(Number)
const RUNS = Number(process.env.BENCH_DASH_RUNS ?? 5)
const TRACE_HOSTS = Number(process.env.BENCH_TRACE_HOSTS ?? 100)
const SHA = 'c0ffee0000000000000000000000000000000001'
const OLD = 'c0ffee0000000000000000000000000000000000'
const kb = (bytes: number): string => (bytes >= 1024 * 1024 ? `${(bytes / 1024 / 1024).toFixed(2)} MB` : `${(bytes / 1024).toFixed(1)} KB`)

let fleet: TestFleet | null = null
const stores: TestStore[] = []
afterAll(async () => {
  for (const s of stores) await s.close().catch(() => {})
  await fleet?.stop()
})

async function populate(store: Store, n: number): Promise<void> {
  const hosts = Array.from({ length: n }, (_, i) => ({ name: `vps-${String(i + 1).padStart(5, '0')}`, address: `10.${Math.floor(i / 65_536) % 256}.${Math.floor(i / 256) % 256}.${i % 256}`, port: 22, user: 'rachel', appDir: '/home/rachel/rachel' }))
  for (let i = 0; i < n; i += 2000) await store.upsertHosts(hosts.slice(i, i + 2000))
  const started = new Date(Date.now() - 3_600_000)
  const finished = new Date(Date.now() - 60_000)
  const id = '20260101-000000-dash'
  const fence = await seedRollout(
    store,
    { id, state: 'completed', ref: 'main', sha: SHA, stages: [10, 50, 100], seed: 'bench', currentStage: 2, settings: { concurrency: 25 }, owner: 'bench@bench pid 1', startedAt: started, finishedAt: finished, heartbeatAt: finished, exitCode: 4, error: null },
    hosts.map((h, i) => ({ ...h, position: i, stage: i < n / 10 ? 0 : i < n / 2 ? 1 : 2, status: i % 97 === 0 ? ('rolled_back' as const) : ('success' as const), step: null, previousVersion: OLD, newVersion: i % 97 === 0 ? OLD : SHA, error: i % 97 === 0 ? 'verify failed: exit 3' : null, startedAt: started, finishedAt: finished })),
  )
  const gates = Array.from({ length: 40 }, (_, k) => ({
    rolloutId: id,
    type: 'gate-measured',
    host: null,
    at: new Date(started.getTime() + k * 30_000),
    data: { type: 'gate-measured', rolloutId: id, stage: Math.floor(k / 20), verdict: 'pass', at: new Date(started.getTime() + k * 30_000).toISOString(), gates: [{ name: 'error_rate', kind: 'metric', value: 0.001 * (k % 7), min: null, max: 0.01, verdict: 'pass', reason: 'ok' }] },
  }))
  await store.appendEvents(fence, gates)
}

const kinds = [...((await pgAvailable()) ? (['postgres'] as const) : []), 'pglite' as const]

describe.skipIf(!chromiumAvailable())('dashboard and traces (issue 20)', () => {
  for (const kind of kinds)
    for (const n of SIZES)
      it(`dashboard, ${n} hosts, ${kind}: time to first render and payload`, async () => {
        const db = kind === 'postgres' ? await createTestDatabase() : null
        const ts = await openTestStore(kind, db?.url)
        stores.push(ts)
        await populate(ts.store, n)
        if (kind === 'pglite') await ts.database.close() // the dashboard reads it as another process would
        const config = loadConfig({ env: {}, cwd: '/', overrides: { database: { url: ts.databaseConfig.url, dir: ts.databaseConfig.dir || '.fleet' } } }).config
        const dashboard = await startDashboard(config, { host: '127.0.0.1', port: 0 })
        const browser = await startBrowser()
        try {
          const get = async (p: string) => Buffer.byteLength(await (await fetch(new URL(p, dashboard.url))).text())
          await get('/api/state') // PGlite: the first read opens the store and leaves the final snapshot
          const renders: number[] = []
          const stateMs: number[] = []
          for (let run = 0; run < RUNS; run++) {
            await new Promise((resolve) => setTimeout(resolve, 1_100)) // past the server's cache
            const page = await browser.context.newPage()
            const t0 = performance.now()
            await page.goto(dashboard.url)
            await page.waitForFunction(() => document.querySelectorAll('#hosts tr').length > 0 && document.querySelector('#state')?.textContent === 'completed')
            renders.push(performance.now() - t0)
            await page.close()
            await new Promise((resolve) => setTimeout(resolve, 1_100))
            const s0 = performance.now()
            await get('/api/state')
            stateMs.push(performance.now() - s0)
          }
          const bytes = { html: await get('/'), js: await get('/app.js'), css: await get('/app.css'), state: await get('/api/state'), hosts: await get('/api/hosts?offset=0&limit=100') }
          const total = Object.values(bytes).reduce((a, b) => a + b, 0)
          record({
            id: 'dashboard',
            title: 'Dashboard: first render and payload (issue 20)',
            order: 60,
            summary: [
              { metric: `dashboard time to first render, ${n} hosts, ${kind} (median of ${RUNS})`, target: '— (responsive at 10,000)', value: ms(median(renders)), ok: null },
              { metric: `dashboard payload of a first render, ${n} hosts, ${kind}`, target: '—', value: `${kb(total)} (state ${kb(bytes.state)}, 100 hosts ${kb(bytes.hosts)})`, ok: null },
            ],
            tables: {
              'Per store and size (chromium, server in process; every render reads the store)': {
                header: ['store', 'hosts', 'first render (median)', 'min–max', '/api/state read + JSON (median)', 'HTML + JS + CSS', 'state', 'one page of hosts'],
                rows: { [`${kind}-${n}`]: [kind, n, ms(median(renders)), `${ms(Math.min(...renders))}–${ms(Math.max(...renders))}`, ms(median(stateMs)), kb(bytes.html + bytes.js + bytes.css), kb(bytes.state), kb(bytes.hosts)] },
              },
            },
            data: { [`${kind}-${n}`]: { renders, stateMs, bytes } },
          })
          expect(median(renders)).toBeLessThan(10_000)
        } finally {
          await browser.close()
          await dashboard.close()
        }
      })

  it(`traces: a ${TRACE_HOSTS}-host rollout, off vs on (one run, interleaved)`, async () => {
    let spans = 0
    const receiver = http.createServer((req, res) => {
      let text = ''
      req.on('data', (d: Buffer) => (text += d.toString()))
      req.on('end', () => {
        const body = JSON.parse(text) as { resourceSpans: { scopeSpans: { spans: unknown[] }[] }[] }
        for (const rs of body.resourceSpans) for (const ss of rs.scopeSpans) spans += ss.spans.length
        res.writeHead(200, { 'Content-Type': 'application/json' }).end('{}')
      })
    })
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve))
    const endpoint = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`
    fleet = await startTestFleet({ hosts: TRACE_HOSTS })
    const ts = await openTestStore('pglite')
    stores.push(ts)
    await registerHosts(ts.store, fleet)
    const base = { rollout: { stages: [10, 50, 100], concurrency: 10, stageDelay: '0s' }, verify: { delay: '1s' } }
    const off = testConfig(fleet, ts.databaseConfig, base)
    const on = testConfig(fleet, ts.databaseConfig, { ...base, otel: { endpoint } })
    const releases = new Releases(fleet)
    const cpu = { off: [] as number[], on: [] as number[] }
    const once = async (config: FleetConfig, seed: string, which: 'on' | 'off'): Promise<number> => {
      const to = releases.targetFor(fleet!.hosts)
      const effects = rolloutEffects(config, ts.store, (line) => process.stderr.write(`${line}\n`))
      const t0 = performance.now()
      const c0 = process.cpuUsage()
      const inventory = await loadInventory(ts.store, config)
      const request = rolloutRequest({ config, configSource: null }, inventory.hosts, { ref: to, seed, owner: 'bench' })
      const result = await runRollout({ store: ts.store, executor: makeExecutor(config, ts.store), clock: systemClock, listeners: [], onStored: effects.onStored }, request)
      await effects.finish()
      const wall = performance.now() - t0
      const c = process.cpuUsage(c0)
      cpu[which].push((c.user + c.system) / 1000)
      expect(result.exitCode).toBe(0)
      releases.moved(fleet!.hosts, to)
      return wall
    }
    const walls = { off: [] as number[], on: [] as number[] }
    const order = ['off', 'on', 'on', 'off', 'off', 'on'] as const
    for (const [k, which] of order.entries()) walls[which].push(await once(which === 'on' ? on : off, `s${k}`, which))
    await new Promise((resolve) => receiver.close(resolve))
    const offMs = median(walls.off)
    const onMs = median(walls.on)
    const overhead = onMs / offMs - 1
    const cpuOff = median(cpu.off)
    const cpuOn = median(cpu.on)
    record({
      id: 'traces',
      title: 'Traces: what otel.endpoint costs a rollout (issue 20)',
      order: 61,
      summary: [
        { metric: `tracing overhead, ${TRACE_HOSTS}-host rollout (c 10), on vs off, median of 3 each`, target: '≤ 2% wall', value: `${(overhead * 100).toFixed(1)}% (${ms(onMs)} vs ${ms(offMs)})`, ok: overhead <= 0.02 },
        { metric: `tracing CPU of the fleet process, ${TRACE_HOSTS}-host rollout, on − off (median of 3 each)`, target: '—', value: `${ms(cpuOn - cpuOff)} (${ms(cpuOn)} vs ${ms(cpuOff)}; ${(((cpuOn - cpuOff) / offMs) * 100).toFixed(1)}% of the wall)`, ok: null },
      ],
      tables: {
        'Rollouts in order (real sshd fleet, PGlite, in process with the journal sinks)': {
          header: ['run', 'traces', 'wall', 'CPU of the fleet process'],
          rows: Object.fromEntries(order.map((which, k) => { const i = order.slice(0, k).filter((w) => w === which).length; return [String(k + 1), [String(k + 1), which, ms(walls[which][i]!), ms(cpu[which][i]!)]] })),
        },
      },
      notes: `Spans received by the OTLP/HTTP receiver for the three traced rollouts: ${spans} (${(spans / 3 / TRACE_HOSTS).toFixed(1)} a host, a rollout).`,
      data: { walls, cpu, spans },
    })
    expect(spans).toBeGreaterThan(TRACE_HOSTS * 2)
  })
})
