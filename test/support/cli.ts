import { spawn } from 'node:child_process'
import { cp, mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import { REPO_ROOT } from './origin.js'
import { pgliteTemplate } from './pglite-template.js'
import { createTestDatabase } from './postgres.js'

export const FLEET_BIN = path.join(REPO_ROOT, 'bin', 'fleet')

export interface FleetRun {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
}

/** Runs the built `fleet` command (npm test builds it first) as a user would. */
export function runFleet(
  args: readonly string[],
  options: { cwd: string; env?: NodeJS.ProcessEnv; timeoutMs?: number; onSpawn?: (pid: number) => void } = { cwd: REPO_ROOT },
): Promise<FleetRun> {
  return new Promise((resolve, reject) => {
    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME, NO_COLOR: '1', ...options.env }
    const child = spawn(process.execPath, [FLEET_BIN, ...args], { cwd: options.cwd, env, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 90_000)
    child.on('error', reject)
    if (child.pid) options.onSpawn?.(child.pid)
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, stdout, stderr })
    })
  })
}

/** A store for CLI tests, as the config file's `database` section names it. */
export interface CliStore {
  readonly kind: 'postgres' | 'pglite'
  /** `database` for rollout.config.json: the url, or the dir of the PGlite copy. */
  readonly database: { url: string } | { dir: string }
  /** For openDatabase() from the test itself. */
  readonly databaseConfig: { url: string | null; dir: string }
  drop(): Promise<void>
}

/**
 * A fresh store for tests about CLI behaviour rather than the embedded store: a new database on
 * the test Postgres (a command costs ~0.3 s there, against ~1.5 s of CPU to start PGlite), or a
 * migrated PGlite copy when asked for one or when no Postgres answers.
 */
export async function cliStore(kind: 'postgres' | 'pglite' = 'postgres'): Promise<CliStore> {
  const db = kind === 'postgres' ? await createTestDatabase() : null
  if (db) return { kind: 'postgres', database: { url: db.url }, databaseConfig: { url: db.url, dir: '' }, drop: db.drop }
  const dir = await pgliteCopy(await mkdtemp(path.join(os.tmpdir(), 'fleet-store-')))
  return { kind: 'pglite', database: { dir }, databaseConfig: { url: null, dir }, drop: () => rm(dir, { recursive: true, force: true }) }
}

/**
 * Copies a migrated, never-opened-since PGlite store into `dir` (created if missing) and returns
 * `dir`: creating a store costs ~6 s of CPU (initdb, migrations), a copy ~0.3 s.
 */
export async function pgliteCopy(dir: string): Promise<string> {
  await cp(await pgliteTemplate(), dir, { recursive: true })
  return dir
}
