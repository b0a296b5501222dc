/**
 * Issue item 4: scale without SSH work, at 10,000 hosts.
 *  - load + plan: in-process (loadInventory + planRollout with a 40-hex ref, so nothing is asked over
 *    SSH) and the whole CLI (`fleet rollout start --dry-run --ref <sha>`), for the built-in hosts
 *    table and an operator table read by inventory.query, on the real Postgres and on PGlite;
 *  - `fleet rollout status` (JSON and the human view) on a finished 10,000-host rollout;
 *  - the live renderer's cost per redraw (and per event) at 10,000 hosts.
 * BENCH_SCALE_HOSTS (default 10000), BENCH_SCALE_STORES (default "postgres,pglite").
 */
import { execFileSync } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import { sql } from 'kysely'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { loadConfig, type RawConfigOverrides } from '../src/config/load.js'
import type { FleetConfig } from '../src/config/types.js'
import type { RolloutEvent } from '../src/rollout/events.js'
import { planRollout, type RolloutRequest } from '../src/rollout/engine.js'
import { loadInventory } from '../src/rollout/inventory.js'
import { buildStatus } from '../src/rollout/status.js'
import type { Executor, Session } from '../src/ssh/executor.js'
import type { Store } from '../src/store/store.js'
import { openTestStore, seedRollout, type TestStore } from '../test/support/harness.js'
import { createTestDatabase, pgAvailable, type TestDatabase } from '../test/support/postgres.js'
import { mb, measure, median, ms, percentile, REPO_ROOT, round, runCli, runNode, waitForQuiet } from './support/measure.js'
import { record, type SummaryRow } from './support/results.js'

const N = Number(process.env.BENCH_SCALE_HOSTS ?? 10_000)
const STORES = (process.env.BENCH_SCALE_STORES ?? 'postgres,pglite').split(',') as ('postgres' | 'pglite')[]
const RUNS = 5
const SHA = 'a'.repeat(40)
const OLD_SHA = 'b'.repeat(40)
const ORDER = 20
const QUERY = 'select hostname as name, ip as address, ssh_port as port from bench_vps where enabled order by id'

let work = ''
let key = ''
beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'fleet-bench-scale-'))
  key = path.join(work, 'id_ed25519')
  // The CLI wants an SSH key to exist even for a dry run; nothing connects anywhere.
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key])
})
afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true })
})

const hostName = (i: number) => `vps-${String(i + 1).padStart(5, '0')}`
const address = (i: number) => `127.0.${Math.floor(i / 250)}.${(i % 250) + 1}`

/** 10,000 hosts in fleet's table, the same in an operator table, and one finished 10,000-host rollout. */
async function populate(store: Store): Promise<void> {
  const hosts = Array.from({ length: N }, (_, i) => ({ name: hostName(i), address: address(i), port: 9, user: 'rachel', appDir: '/home/rachel/rachel' }))
  for (let i = 0; i < hosts.length; i += 2000) await store.upsertHosts(hosts.slice(i, i + 2000))
  await sql`create table bench_vps (id serial primary key, hostname text not null, ip text not null, ssh_port int, enabled boolean not null default true)`.execute(store.db)
  await sql`insert into bench_vps (hostname, ip, ssh_port)
            select 'vps-' || lpad(i::text, 5, '0'), '127.0.' || ((i - 1) / 250) || '.' || ((i - 1) % 250 + 1), 9
            from generate_series(1, ${N}) as i`.execute(store.db)
  const started = new Date(Date.now() - 3_600_000)
  const finished = new Date(Date.now() - 60_000)
  const stages = [10, 50, 100]
  await seedRollout(
    store,
    {
      id: '20250101-000000-beef',
      state: 'completed',
      ref: 'main',
      sha: SHA,
      stages,
      seed: 'bench',
      currentStage: 2,
      settings: { concurrency: 25 },
      owner: 'bench@bench pid 1',
      startedAt: started,
      finishedAt: finished,
      heartbeatAt: finished,
      exitCode: 0,
      error: null,
    },
    hosts.map((h, i) => ({
      ...h,
      position: i,
      stage: i < N / 10 ? 0 : i < N / 2 ? 1 : 2,
      status: 'success' as const,
      step: null,
      previousVersion: OLD_SHA,
      newVersion: SHA,
      error: null,
      startedAt: started,
      finishedAt: finished,
    })),
  )
}

/** Planning proves the commit exists on one canary: a scripted host that knows SHA (no SSH cost in this figure). */
const noSsh: Executor = {
  connect: async () => ({
    run: async () => ({ code: 0, signal: null, stdout: `${SHA}\n`, stderr: '', timedOut: false, durationMs: 0 }),
    close: () => {},
  }),
}

function configFor(database: { url: string | null; dir: string }, query: string | null): FleetConfig {
  return loadConfig({ env: {}, cwd: os.tmpdir(), overrides: configOverrides(database, query) }).config
}

function configOverrides(database: { url: string | null; dir: string }, query: string | null): RawConfigOverrides {
  return { database: { url: database.url, dir: database.dir || '.fleet' }, inventory: { query }, ssh: { privateKey: key, knownHosts: path.join(work, 'known_hosts') } }
}

/** loadInventory + planRollout, as `rollout start --dry-run` does it, in this process. */
async function loadAndPlan(store: Store, config: FleetConfig): Promise<number> {
  const inventory = await loadInventory(store, config)
  const request: RolloutRequest = {
    hosts: inventory.hosts,
    ref: SHA,
    stages: config.rollout.stages,
    failureThreshold: config.rollout.failureThreshold,
    concurrency: config.rollout.concurrency,
    stageDelayMs: config.rollout.stageDelayMs,
    connectTimeoutMs: config.ssh.connectTimeoutMs,
    settings: { remote: 'origin', branch: 'main', service: 'rachel8', steps: config.steps, verify: config.verify, commandTimeoutMs: config.timeouts.commandMs },
    owner: 'bench',
  }
  const { plan } = await planRollout({ executor: noSsh }, { ...request, seed: 'bench' }, new Map<string, Session>())
  return plan.hosts.length
}

interface CliFigures {
  wall: number[]
  maxRssKb: number
  code: number | null
}

async function cliRuns(args: string[], configFile: string, runs = RUNS): Promise<CliFigures> {
  const wall: number[] = []
  let maxRssKb = 0
  let code: number | null = 0
  await waitForQuiet()
  for (let i = 0; i < runs; i++) {
    const r = await runCli([...args, '--config', configFile], { cwd: work })
    if (r.code !== 0) throw new Error(`bench: fleet ${args.join(' ')} exited ${r.code}: ${r.stderr.slice(-1500)}`)
    wall.push(r.wallMs)
    maxRssKb = Math.max(maxRssKb, r.maxRssKb ?? 0)
    code = r.code
  }
  return { wall, maxRssKb, code }
}

const planRows: Record<string, (string | number)[]> = {}
const statusRows: Record<string, (string | number)[]> = {}

describe('scale', () => {
  for (const kind of STORES) {
    it(`${N} hosts on ${kind}: load + plan, --dry-run, rollout status`, async (t) => {
      let database: TestDatabase | null = null
      if (kind === 'postgres') {
        if (!(await pgAvailable())) return t.skip()
        database = await createTestDatabase()
      }
      let testStore: TestStore | null = await openTestStore(kind, database?.url)
      const dbConfig = testStore.databaseConfig
      const summary: SummaryRow[] = []
      try {
        await populate(testStore.store)
        // In-process figures first (PGlite is single-process: the CLI can only open it afterwards).
        const inProcess: Record<string, { times: number[]; rise: number; heap: number }> = {}
        for (const source of ['hosts table', 'inventory.query'] as const) {
          const config = configFor(dbConfig, source === 'inventory.query' ? QUERY : null)
          const times: number[] = []
          let rise = 0
          let heap = 0
          for (let i = 0; i < RUNS; i++) {
            const { result, window } = await measure(() => loadAndPlan(testStore!.store, config))
            expect(result).toBe(N)
            times.push(window.wallMs)
            rise = Math.max(rise, window.peakRss - window.startRss)
            heap = Math.max(heap, window.peakHeapUsed)
          }
          inProcess[source] = { times, rise, heap }
        }
        // The snapshot an embedded-store rollout rewrites every second (src/cli/snapshot-listener.ts): same reads as status.
        const snapshot: number[] = []
        for (let i = 0; i < RUNS; i++) {
          const t0 = performance.now()
          const rollout = (await testStore.store.getRollout())!
          JSON.stringify(buildStatus(rollout, await testStore.store.listRolloutHosts(rollout.id)))
          snapshot.push(performance.now() - t0)
        }
        if (kind === 'pglite') {
          await testStore.database.close() // keep the dir for the CLI
        }

        for (const source of ['hosts table', 'inventory.query'] as const) {
          const file = path.join(work, `config-${kind}-${source === 'hosts table' ? 'table' : 'query'}.json`)
          await writeFile(file, JSON.stringify(configOverrides(dbConfig, source === 'inventory.query' ? QUERY : null)))
          const json = await cliRuns(['rollout', 'start', '--dry-run', '--ref', SHA, '--json'], file)
          const human = await cliRuns(['rollout', 'start', '--dry-run', '--ref', SHA], file, 3)
          const ip = inProcess[source]!
          const wall = median(json.wall)
          planRows[`${kind} ${source}`] = [
            kind,
            source,
            `${ms(median(ip.times))} (max ${ms(Math.max(...ip.times))})`,
            `+${mb(ip.rise)} RSS, ${mb(ip.heap)} heap`,
            `**${ms(wall)}** (${ms(Math.min(...json.wall))}–${ms(Math.max(...json.wall))})`,
            ms(median(human.wall)),
            `**${mb(Math.max(json.maxRssKb, human.maxRssKb) * 1024)}**`,
          ]
          const rss = Math.max(json.maxRssKb, human.maxRssKb) * 1024
          summary.push(
            { metric: `${N} hosts, ${source} on ${kind}: \`rollout start --dry-run\` wall (CLI)`, target: '< 1 s', value: ms(wall), ok: wall < 1000 },
            { metric: `${N} hosts, ${source} on ${kind}: \`--dry-run\` peak memory (CLI max RSS)`, target: '< 200 MB', value: mb(rss), ok: rss < 200 * 1024 * 1024 },
            { metric: `${N} hosts, ${source} on ${kind}: load + plan in-process`, target: '< 1 s', value: ms(median(ip.times)), ok: median(ip.times) < 1000 },
          )
        }

        const file = path.join(work, `config-${kind}-table.json`)
        const statusJson = await cliRuns(['rollout', 'status', '--json'], file)
        const statusHuman = await cliRuns(['rollout', 'status'], file)
        const statusAll = await cliRuns(['rollout', 'status', '--all'], file, 3)
        statusRows[kind] = [
          kind,
          `**${ms(median(statusJson.wall))}** (${ms(Math.min(...statusJson.wall))}–${ms(Math.max(...statusJson.wall))})`,
          `**${ms(median(statusHuman.wall))}**`,
          ms(median(statusAll.wall)),
          mb(Math.max(statusJson.maxRssKb, statusHuman.maxRssKb, statusAll.maxRssKb) * 1024),
          `${ms(median(snapshot))}`,
        ]
        summary.push(
          { metric: `\`rollout status --json\`, finished ${N}-host rollout, ${kind}`, target: '< 300 ms', value: ms(median(statusJson.wall)), ok: median(statusJson.wall) < 300 },
          { metric: `\`rollout status\` (human), finished ${N}-host rollout, ${kind}`, target: '< 300 ms', value: ms(median(statusHuman.wall)), ok: median(statusHuman.wall) < 300 },
        )
        record({
          id: 'scale',
          title: `Scale without SSH work: ${N.toLocaleString('en')} hosts (issue item 4)`,
          order: ORDER,
          summary,
          tables: {
            'Load + plan, and `fleet rollout start --dry-run --ref <sha>`': {
              header: ['store', 'inventory', 'load + plan in-process (median of 5)', 'in-process memory (rise; heap peak)', 'CLI --dry-run --json wall (median; min–max of 5)', 'CLI --dry-run human wall', 'CLI max RSS'],
              rows: planRows,
            },
            [`\`fleet rollout status\` on a finished ${N}-host rollout`]: {
              header: ['store', '--json wall (median; min–max of 5)', 'human view wall', 'human --all wall', 'CLI max RSS', 'in-process read + build (the 1 s snapshot of a PGlite rollout)'],
              rows: statusRows,
            },
          },
          notes: [
            `Setup: ${N} hosts in fleet's hosts table (store.upsertHosts) and the same ${N} in an operator table`,
            `\`bench_vps(id, hostname, ip, ssh_port, enabled)\` read by \`inventory.query = "${QUERY}"\`;`,
            `a finished rollout of ${N} hosts (all \`success\`) made with store.createRollout. Every CLI figure is a`,
            'child process (`node bin/fleet …`, built dist/) timed end to end, under `/usr/bin/time -v` for max RSS;',
            'Node start-up, opening the store (PGlite: loading its WASM and the data dir) and closing it are included.',
            'The dry run gets a 40-hex `--ref`, so nothing is asked over SSH. "load + plan in-process" is',
            '`loadInventory` + `planRollout` on an open store.',
          ].join('\n'),
          data: { [kind]: { planRows: Object.fromEntries(Object.entries(planRows).filter(([k]) => k.startsWith(kind))), statusRows: statusRows[kind], snapshot } },
        })
      } finally {
        if (kind === 'pglite') {
          await rm(dbConfig.dir, { recursive: true, force: true })
          testStore = null
        } else {
          await testStore?.close()
          await database?.drop()
        }
      }
    })
  }
})

// ---- the fixed cost of opening a store, for comparison ----

describe('store floor', () => {
  it('empty store: fleet hosts list --json, and PGlite alone', async () => {
    const rows: Record<string, (string | number)[]> = {}
    for (const kind of STORES) {
      let database: TestDatabase | null = null
      if (kind === 'postgres') {
        if (!(await pgAvailable())) continue
        database = await createTestDatabase()
      }
      const testStore = await openTestStore(kind, database?.url)
      const dbConfig = testStore.databaseConfig
      try {
        if (kind === 'pglite') await testStore.database.close()
        const file = path.join(work, `config-${kind}-empty.json`)
        await writeFile(file, JSON.stringify(configOverrides(dbConfig, null)))
        const cli = await cliRuns(['hosts', 'list', '--json'], file)
        rows[`${kind} cli`] = [kind, '`fleet hosts list --json` on an empty store', ms(median(cli.wall)), mb(cli.maxRssKb * 1024)]
        if (kind === 'pglite') {
          // PGlite by itself in a bare Node process: what any command that opens the embedded store pays.
          const script = `const { PGlite } = await import(${JSON.stringify(pathToFileURL(path.join(REPO_ROOT, 'node_modules', '@electric-sql', 'pglite', 'dist', 'index.js')).href)}); const p = new PGlite(${JSON.stringify(dbConfig.dir)}); await p.query('select 1'); await p.close()`
          const times: number[] = []
          let rss = 0
          for (let i = 0; i < RUNS; i++) {
            const r = await runNode(['--input-type=module', '-e', script])
            times.push(r.wallMs)
            rss = Math.max(rss, r.maxRssKb ?? 0)
          }
          rows['pglite alone'] = ['pglite', 'PGlite alone: `new PGlite(dir)` + `select 1` + close, in `node`', ms(median(times)), mb(rss * 1024)]
        }
      } finally {
        if (kind === 'pglite') await rm(dbConfig.dir, { recursive: true, force: true })
        else {
          await testStore.close()
          await database?.drop()
        }
      }
    }
    record({
      id: 'scale',
      title: `Scale without SSH work: ${N.toLocaleString('en')} hosts (issue item 4)`,
      order: ORDER,
      tables: { 'The floor: opening the store, no hosts (median of 5)': { header: ['store', 'what', 'wall', 'max RSS'], rows } },
    })
  })
})

// ---- the live renderer at 10,000 hosts ----

describe('live renderer', () => {
  it(`redraw cost at ${N} hosts`, async () => {
    let live: (typeof import('../src/render/live-state.js') & typeof import('../src/render/live-frame.js')) | null = null
    try {
      live = { ...(await import('../src/render/live-state.js')), ...(await import('../src/render/live-frame.js')) }
    } catch {
      live = null
    }
    if (!live || typeof live.LiveState !== 'function' || typeof live.renderLive !== 'function') {
      record({
        id: 'live',
        title: 'Live renderer at 10,000 hosts (issue item 4)',
        order: ORDER + 1,
        summary: [{ metric: 'live renderer cost per redraw', target: '—', value: 'TODO: src/render/live.ts (LiveState, renderLive) not there yet', ok: null }],
      })
      return
    }
    const { LiveState, renderLive } = live
    const concurrency = 25
    const stages = [10, 50, 100]
    const sizes = [N / 10, (N * 4) / 10, N / 2]
    const now = Date.now()
    const at = new Date(now - 600_000).toISOString()
    const id = '20250101-000000-beef'
    const names = Array.from({ length: N }, (_, i) => hostName(i))
    const steps = ['version', 'fetch', 'checkout', 'install', 'restart', 'verify', 'confirm'] as const
    /** Every event of a rollout up to the middle of stage 2: stage 1 done, half of stage 2 done, `concurrency` in flight, 3% failures. */
    const events: RolloutEvent[] = [{ type: 'rollout-started', rolloutId: id, ref: 'main', sha: SHA, stages, stageSizes: sizes, hosts: N, concurrency, failureThreshold: 0.3, seed: 's', at }]
    let position = 0
    for (const [stage, size] of sizes.entries()) {
      if (stage === 2) break
      events.push({ type: 'stage-started', rolloutId: id, stage, percent: stages[stage]!, hosts: names.slice(position, position + size), at })
      const finishing = stage === 0 ? size : size / 2
      for (let i = 0; i < finishing + (stage === 1 ? concurrency : 0); i++) {
        const host = names[position + i]!
        events.push({ type: 'host-started', rolloutId: id, stage, host, address: address(position + i), at })
        for (const step of steps) events.push({ type: 'host-step', rolloutId: id, stage, host, step, phase: 'update', at })
        if (i >= finishing) continue
        const failed = i % 33 === 7
        events.push({
          type: 'host-finished',
          rolloutId: id,
          stage,
          host,
          status: failed ? 'rolled_back' : 'success',
          previousVersion: OLD_SHA,
          newVersion: failed ? OLD_SHA : SHA,
          failedStep: failed ? 'verify' : null,
          error: failed ? 'verify failed (exit 3) (after 4 attempts)\nrachel8: crashed at start\n  at server.js:12' : null,
          durationMs: 4200,
          at,
        })
      }
      if (stage === 0) events.push({ type: 'stage-finished', rolloutId: id, stage, percent: stages[stage]!, counts: { pending: 0, updating: 0, success: 0, failed: 0, rolled_back: 0, rollback_failed: 0, skipped: 0, held: 0 }, failureRate: 0.03, halted: false, at })
      position += size
    }

    const state = new LiveState()
    const t0 = performance.now()
    for (const event of events) state.apply(event)
    const applyMs = performance.now() - t0

    const options = { color: true, width: 120, now }
    for (let i = 0; i < 200; i++) renderLive(state, { ...options, now: now + i * 100 }) // warm-up
    const times: number[] = []
    let lines = 0
    for (let i = 0; i < 2000; i++) {
      const t = performance.now()
      const frame = renderLive(state, { ...options, now: now + i * 100 })
      times.push(performance.now() - t)
      lines = frame.split('\n').length
    }
    // The same at 100 hosts: the frame must not grow with the fleet.
    const small = new LiveState()
    small.apply({ type: 'rollout-started', rolloutId: id, ref: 'main', sha: SHA, stages, stageSizes: [10, 40, 50], hosts: 100, concurrency, failureThreshold: 0.3, seed: 's', at })
    small.apply({ type: 'stage-started', rolloutId: id, stage: 0, percent: 10, hosts: names.slice(0, 10), at })
    for (let i = 0; i < 10; i++) small.apply({ type: 'host-started', rolloutId: id, stage: 0, host: names[i]!, address: address(i), at })
    const smallTimes: number[] = []
    for (let i = 0; i < 2000; i++) {
      const t = performance.now()
      renderLive(small, { ...options, now: now + i * 100 })
      smallTimes.push(performance.now() - t)
    }
    const perRedraw = median(times)
    record({
      id: 'live',
      title: `Live renderer at ${N.toLocaleString('en')} hosts (issue item 4)`,
      order: ORDER + 1,
      summary: [
        { metric: `live renderer: one redraw (renderLive) at ${N} hosts`, target: '— (redraws every 100 ms)', value: `${ms(perRedraw)} median, ${ms(percentile(times, 99))} p99`, ok: null },
        { metric: `live renderer: one event (LiveState.apply) at ${N} hosts`, target: '—', value: `${round((applyMs / events.length) * 1000, 2)} µs`, ok: null },
      ],
      tables: {
        [`renderLive / LiveState.apply, mid-rollout of ${N} hosts (stage 2 of 3 half done, ${concurrency} in flight, 3% rolled back)`]: {
          header: ['redraw median', 'redraw p99', 'frame lines', 'same frame at 100 hosts (median)', 'events applied', 'apply per event', 'CPU share at one redraw per 100 ms'],
          rows: {
            live: [ms(perRedraw), ms(percentile(times, 99)), lines, ms(median(smallTimes)), events.length, `${round((applyMs / events.length) * 1000, 2)} µs`, `${round((perRedraw / 100) * 100, 2)}%`],
          },
        },
      },
      notes: 'Measured in-process on src/render/live.ts: a synthetic event stream of a 10,000-host rollout (the same event types the engine emits) fed to `LiveState.apply`, then `renderLive(state, { color: true, width: 120 })` called 2,000 times after 200 warm-up calls.',
    })
  })
})
