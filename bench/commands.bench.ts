/**
 * Issue 9 item 11: what each read-only command costs, spawned as a user runs it, on a store with
 * 1,000 hosts and a finished 1,000-host rollout (plus 9 older small rollouts and ~4 events a host),
 * on PGlite and on the real Postgres: median wall time and median peak RSS (/usr/bin/time -v).
 *
 * PGlite is measured twice: as a user meets it (the snapshot the last process to close the store
 * left beside it is verified and read), and with that snapshot deleted before every run (the
 * command opens the store itself: PGlite's own cost, which bounds the slow path).
 * BENCH_COMMANDS_HOSTS (default 1000), BENCH_COMMANDS_RUNS (default 7).
 */
import { rmSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { sql } from 'kysely'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import type { HostStatus } from '../src/rollout/types.js'
import { openDatabase } from '../src/store/database.js'
import { Store } from '../src/store/store.js'
import { createTestDatabase, pgAvailable, type TestDatabase } from '../test/support/postgres.js'
import { mb, measure, median, ms, runCli, waitForQuiet } from './support/measure.js'
import { record } from './support/results.js'

const N = Number(process.env.BENCH_COMMANDS_HOSTS ?? 1000)
const RUNS = Number(process.env.BENCH_COMMANDS_RUNS ?? 7)
const SHA = 'a'.repeat(40)
const OLD_SHA = 'b'.repeat(40)
const TITLE = `Read-only commands on a ${N.toLocaleString('en')}-host store (issue 9 item 11)`

const COMMANDS: Record<string, string[]> = {
  'hosts list': ['hosts', 'list'],
  history: ['history'],
  'rollout status': ['rollout', 'status'],
  'rollout status --json': ['rollout', 'status', '--json'],
  '--help': ['--help'],
}

let work = ''
let database: TestDatabase | null = null
beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'fleet-bench-commands-'))
})
afterAll(async () => {
  await database?.drop()
  if (work) await rm(work, { recursive: true, force: true })
})

const hostName = (i: number) => `vps-${String(i + 1).padStart(5, '0')}`

/** 1,000 hosts, one finished 1,000-host rollout with its events, nine older small ones. */
async function populate(store: Store): Promise<void> {
  const hosts = Array.from({ length: N }, (_, i) => ({ name: hostName(i), address: `127.0.${Math.floor(i / 250)}.${(i % 250) + 1}`, port: 22, user: 'rachel', appDir: '/home/rachel/rachel' }))
  await store.upsertHosts(hosts)
  await sql`update fleet_hosts set current_version = ${SHA}, previous_version = ${OLD_SHA}, status = 'success', updated_at = now()`.execute(store.db)
  const base = Date.now() - 86_400_000
  for (let r = 0; r <= 9; r++) {
    const size = r === 9 ? N : 10
    const started = new Date(base + r * 3_600_000)
    const finished = new Date(started.getTime() + 600_000)
    const id = `2025010${r}-000000-beef`
    const status = (i: number): HostStatus => (i % 97 === 5 ? 'rolled_back' : i % 13 === 0 ? 'skipped' : 'success')
    await store.createRollout(
      { id, state: 'completed', ref: 'main', sha: SHA, stages: [10, 50, 100], seed: SHA, currentStage: 2, settings: {}, owner: 'bench@bench pid 1', startedAt: started, finishedAt: finished, heartbeatAt: finished, exitCode: 4, error: null },
      hosts.slice(0, size).map((h, i) => ({
        ...h,
        position: i,
        stage: i < size / 10 ? 0 : i < size / 2 ? 1 : 2,
        status: status(i),
        step: null,
        previousVersion: OLD_SHA,
        newVersion: status(i) === 'rolled_back' ? OLD_SHA : SHA,
        error: status(i) === 'rolled_back' ? 'verify failed: rachel8.service is not active' : null,
        startedAt: started,
        finishedAt: finished,
      })),
    )
    const events = hosts.slice(0, size).flatMap((h, i) =>
      ['host-started', 'host-step', 'host-step', 'host-finished'].map((type) => ({ rolloutId: id, type, host: h.name, data: { host: h.name, i }, at: started })),
    )
    await store.appendEvents(events)
  }
}

interface Row {
  wall: number[]
  rss: number[]
}

async function measureCommands(label: string, cwd: string, env: NodeJS.ProcessEnv, before?: () => void): Promise<Record<string, Row>> {
  const rows: Record<string, Row> = Object.fromEntries(Object.keys(COMMANDS).map((k) => [k, { wall: [], rss: [] }]))
  const once = async (name: string) => {
    before?.()
    const run = await runCli(COMMANDS[name]!, { cwd, env })
    if (run.code !== 0) throw new Error(`bench: fleet ${COMMANDS[name]!.join(' ')} (${label}) exited ${run.code}: ${run.stderr}`)
    return run
  }
  for (const name of Object.keys(COMMANDS)) await once(name) // warm the page cache (and, on PGlite, leave a snapshot)
  await waitForQuiet()
  for (let i = 0; i < RUNS; i++)
    for (const name of Object.keys(COMMANDS)) {
      const run = await once(name)
      rows[name]!.wall.push(run.wallMs)
      if (run.maxRssKb) rows[name]!.rss.push(run.maxRssKb * 1024)
    }
  return rows
}

const cells = (row: Row): string[] => [ms(median(row.wall)), row.rss.length ? mb(median(row.rss)) : 'n/a']

describe(`read-only commands, ${N} hosts`, () => {
  it('PGlite and Postgres: median wall and peak RSS per command', async () => {
    const table: Record<string, string[]> = {}
    const data: Record<string, unknown> = {}

    // PGlite: the store in <work>/pglite/.fleet, named by a config file beside it.
    const pgliteCwd = path.join(work, 'pglite')
    const dir = path.join(pgliteCwd, '.fleet')
    const seeded = await openDatabase({ url: null, dir })
    await populate(new Store(seeded))
    await seeded.close()
    await writeFile(path.join(pgliteCwd, 'rollout.config.json'), JSON.stringify({ database: { dir } }))
    // The in-process cost of opening and closing the store, what no snapshot can hide from a writer.
    const open = await measure(async () => {
      const d = await openDatabase({ url: null, dir })
      await d.close()
    })
    data.pgliteOpenCloseMs = open.window.wallMs

    const lite = await measureCommands('pglite', pgliteCwd, {})
    const cold = await measureCommands('pglite, no snapshot', pgliteCwd, {}, () => rmSync(path.join(dir, 'snapshot.json'), { force: true }))

    let pg: Record<string, Row> | null = null
    if (await pgAvailable()) {
      database = await createTestDatabase()
      const d = await openDatabase({ url: database!.url, dir: '' })
      await populate(new Store(d))
      await d.close()
      pg = await measureCommands('postgres', os.tmpdir(), { FLEET_DATABASE_URL: database!.url })
    }
    for (const name of Object.keys(COMMANDS)) {
      table[name] = [`\`fleet ${COMMANDS[name]!.join(' ')}\``, ...cells(lite[name]!), ...cells(cold[name]!), ...(pg ? cells(pg[name]!) : ['n/a', 'n/a'])]
      data[name] = { pglite: lite[name], pgliteNoSnapshot: cold[name], postgres: pg?.[name] ?? null }
    }
    const readOnly = ['hosts list', 'history', 'rollout status', 'rollout status --json']
    const worst = Math.max(...readOnly.map((n) => median(lite[n]!.wall)))
    record({
      id: 'commands',
      title: TITLE,
      order: 25,
      summary: [{ metric: 'slowest read-only command on PGlite, median', target: '< 1 s', value: ms(worst), ok: worst < 1000 }],
      tables: {
        [`Median of ${RUNS} spawns each (wall, peak RSS), interleaved`]: {
          header: ['command', 'PGlite wall', 'PGlite RSS', 'PGlite, no snapshot: wall', 'RSS', 'Postgres wall', 'Postgres RSS'],
          rows: table,
        },
      },
      notes: [
        `Opening and closing this PGlite store in-process (no command, no query): ${ms(open.window.wallMs)}.`,
        '"PGlite" is what a user meets: the command verifies and reads the snapshot the last process to close the',
        'store left beside it (README, "The embedded store"). "No snapshot": that file deleted before every run, so',
        'the command opens PGlite itself (WASM start-up, the store\'s recovery and shutdown checkpoint) and leaves',
        'a new snapshot when it closes.',
      ].join('\n'),
      data,
    })
    expect(worst).toBeGreaterThan(0)
  })
})
