/**
 * Issue 9 item 11: what each read-only command costs, spawned as a user runs it, on a store with
 * 1,000 hosts and a finished 1,000-host rollout (plus 9 older small rollouts and ~4 events a host),
 * on PGlite and on the real Postgres: median wall time and median peak RSS (/usr/bin/time -v).
 *
 * PGlite is measured twice: as a user meets it (the snapshot the last process to close the store
 * left beside it is verified and read), and with that snapshot deleted before every run (the
 * command opens the store itself: PGlite's own cost, which bounds the slow path).
 * BENCH_COMMANDS_HOSTS (default 1000), BENCH_COMMANDS_RUNS (default 7).
 * BENCH_BASELINE=<dir> (bin/fleet + dist/ of an older build, e.g. from `git archive <commit>` and tsc)
 * measures that build too, interleaved with this one, on its own copy of the PGlite store (so neither
 * invalidates the other's snapshot); BENCH_BASELINE_LABEL names it in the table.
 */
import { rmSync } from 'node:fs'
import { cp, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { sql } from 'kysely'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import type { HostStatus } from '../src/types.js'
import { openDatabase } from '../src/store/database.js'
import { collectSnapshot } from '../src/report/snapshot-data.js'
import { Store } from '../src/store/store.js'
import { seedRollout } from '../test/support/harness.js'
import { createTestDatabase, pgAvailable, type TestDatabase } from '../test/support/postgres.js'
import { FLEET_BIN, mb, measure, median, ms, runNode, waitForQuiet } from './support/measure.js'
import { record } from './support/results.js'

const N = Number(process.env.BENCH_COMMANDS_HOSTS ?? 1000)
const RUNS = Number(process.env.BENCH_COMMANDS_RUNS ?? 7)
const SHA = 'a'.repeat(40)
const OLD_SHA = 'b'.repeat(40)
const TITLE = `Read-only commands on a ${N.toLocaleString('en')}-host store (issue 9 item 11)`
const BASELINE = process.env.BENCH_BASELINE ?? null
const BASELINE_LABEL = process.env.BENCH_BASELINE_LABEL ?? 'baseline'

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
    const fence = await seedRollout(
      store,
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
    await store.appendEvents(fence, events)
  }
}

interface Row {
  wall: number[]
  rss: number[]
}

interface Subject {
  readonly label: string
  readonly bin: string
  readonly cwd: string
  readonly env: NodeJS.ProcessEnv
  /** Before every run (e.g. delete the snapshot). */
  readonly before?: () => void
}

/** Every command of every subject, RUNS times, interleaved (so load changes hit all alike). */
async function measureCommands(subjects: readonly Subject[]): Promise<Record<string, Record<string, Row>>> {
  const rows: Record<string, Record<string, Row>> = Object.fromEntries(subjects.map((s) => [s.label, Object.fromEntries(Object.keys(COMMANDS).map((k) => [k, { wall: [], rss: [] }]))]))
  const once = async (subject: Subject, name: string) => {
    subject.before?.()
    const run = await runNode([subject.bin, ...COMMANDS[name]!], { cwd: subject.cwd, env: subject.env })
    if (run.code !== 0) throw new Error(`bench: fleet ${COMMANDS[name]!.join(' ')} (${subject.label}) exited ${run.code}: ${run.stderr}`)
    return run
  }
  // Warm the page cache (and, on PGlite, leave a snapshot).
  for (const subject of subjects) for (const name of Object.keys(COMMANDS)) await once(subject, name)
  await waitForQuiet()
  for (let i = 0; i < RUNS; i++)
    for (const name of Object.keys(COMMANDS))
      for (const subject of subjects) {
        const run = await once(subject, name)
        rows[subject.label]![name]!.wall.push(run.wallMs)
        if (run.maxRssKb) rows[subject.label]![name]!.rss.push(run.maxRssKb * 1024)
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
    // What every process that opened the store pays at close to leave a snapshot (the writers' cost).
    const collect = await measure(() => collectSnapshot(new Store(seeded), null))
    data.snapshotCollectMs = collect.window.wallMs
    data.snapshotBytes = JSON.stringify(collect.result).length
    await seeded.close()
    await writeFile(path.join(pgliteCwd, 'rollout.config.json'), JSON.stringify({ database: { dir } }))
    // The in-process cost of opening and closing the store, what no snapshot can hide from a writer.
    const open = await measure(async () => {
      const d = await openDatabase({ url: null, dir })
      await d.close()
    })
    data.pgliteOpenCloseMs = open.window.wallMs

    // Every PGlite subject gets its own copy of the store: each opening changes the store's
    // fingerprint, which would void another subject's snapshot.
    const copy = async (name: string): Promise<{ cwd: string; dir: string }> => {
      const cwd = path.join(work, name)
      await mkdir(cwd, { recursive: true })
      await cp(dir, path.join(cwd, '.fleet'), { recursive: true })
      await writeFile(path.join(cwd, 'rollout.config.json'), JSON.stringify({ database: { dir: path.join(cwd, '.fleet') } }))
      return { cwd, dir: path.join(cwd, '.fleet') }
    }
    const cold = await copy('pglite-no-snapshot')
    const subjects: Subject[] = [
      { label: 'PGlite', bin: FLEET_BIN, cwd: pgliteCwd, env: {} },
      { label: 'PGlite, no snapshot', bin: FLEET_BIN, cwd: cold.cwd, env: {}, before: () => rmSync(path.join(cold.dir, 'snapshot.json'), { force: true }) },
    ]
    if (BASELINE) subjects.push({ label: `PGlite, ${BASELINE_LABEL}`, bin: path.join(BASELINE, 'bin', 'fleet'), cwd: (await copy('pglite-baseline')).cwd, env: {} })
    if (await pgAvailable()) {
      database = await createTestDatabase()
      const d = await openDatabase({ url: database!.url, dir: '' })
      await populate(new Store(d))
      await d.close()
      subjects.push({ label: 'Postgres', bin: FLEET_BIN, cwd: os.tmpdir(), env: { FLEET_DATABASE_URL: database!.url } })
      if (BASELINE) subjects.push({ label: `Postgres, ${BASELINE_LABEL}`, bin: path.join(BASELINE, 'bin', 'fleet'), cwd: os.tmpdir(), env: { FLEET_DATABASE_URL: database!.url } })
    }
    const measured = await measureCommands(subjects)
    for (const subject of subjects)
      for (const name of Object.keys(COMMANDS)) {
        table[`${name} · ${subject.label}`] = [`\`fleet ${COMMANDS[name]!.join(' ')}\``, subject.label, ...cells(measured[subject.label]![name]!)]
        data[`${name} · ${subject.label}`] = measured[subject.label]![name]
      }
    const lite = measured.PGlite!
    const readOnly = ['hosts list', 'history', 'rollout status', 'rollout status --json']
    const worst = Math.max(...readOnly.map((n) => median(lite[n]!.wall)))
    record({
      id: 'commands',
      title: TITLE,
      order: 25,
      summary: [{ metric: 'slowest read-only command on PGlite, median', target: '< 1 s', value: ms(worst), ok: worst < 1000 }],
      tables: {
        [`Median of ${RUNS} spawns each (wall, peak RSS), interleaved`]: {
          header: ['command', 'store (build)', 'median wall', 'median peak RSS'],
          rows: table,
        },
      },
      notes: [
        `Opening and closing this PGlite store in-process (no command, no query): ${ms(open.window.wallMs)}. Reading`,
        `everything a snapshot holds from it (what a process that opened the store pays at close): ${ms(collect.window.wallMs)},`,
        `${(JSON.stringify(collect.result).length / 1024).toFixed(0)} KiB of JSON.`,
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
