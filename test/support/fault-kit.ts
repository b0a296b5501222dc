/**
 * Helpers shared by the fault-injection, lock and security suites: the built
 * `fleet` as a live process read event by event, waiting on real conditions,
 * and checks of a simulated host's real state.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { expect } from 'vitest'

import { openDatabase } from '../../src/store/database.js'
import { Store, type NewHost } from '../../src/store/store.js'
import { FLEET_BIN, type FleetRun } from './cli.js'
import { openTestStore, registerHosts } from './harness.js'
import type { TestFleet } from './test-fleet.js'

const children = new Set<ChildProcess>()

/** For afterEach: SIGKILL every `fleet` process spawnFleet started that is still running. */
export function killSpawned(): void {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  children.clear()
}

export interface Spawned {
  readonly pid: number
  readonly events: Record<string, unknown>[]
  /** Resolves with the first event (already seen or still to come) that matches; rejects if the process exits first. */
  waitFor(match: (e: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>
  readonly exited: Promise<FleetRun>
  kill(signal: NodeJS.Signals): void
  /** Closes our end of its stdout or stderr pipe, as `| head` or a vanished log reader would. */
  closePipe(which: 'stdout' | 'stderr'): void
}

/** The built `fleet` as a live process whose NDJSON stdout (--json) is read event by event. */
export function spawnFleet(args: readonly string[], options: { cwd: string; env?: NodeJS.ProcessEnv }): Spawned {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME, NO_COLOR: '1', ...options.env }
  const child = spawn(process.execPath, [FLEET_BIN, ...args], { cwd: options.cwd, env, stdio: ['ignore', 'pipe', 'pipe'] })
  children.add(child)
  const events: Record<string, unknown>[] = []
  const waiters: { match: (e: Record<string, unknown>) => boolean; resolve: (e: Record<string, unknown>) => void }[] = []
  let stdout = ''
  let stderr = ''
  let pending = ''
  child.stdout!.on('data', (chunk: Buffer) => {
    stdout += chunk.toString()
    pending += chunk.toString()
    let newline: number
    while ((newline = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, newline)
      pending = pending.slice(newline + 1)
      if (!line.trim()) continue
      let event: Record<string, unknown>
      try {
        event = JSON.parse(line) as Record<string, unknown>
      } catch {
        continue
      }
      events.push(event)
      for (const w of [...waiters]) if (w.match(event)) (waiters.splice(waiters.indexOf(w), 1), w.resolve(event))
    }
  })
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
  const exited = new Promise<FleetRun>((resolve, reject) => {
    child.on('error', reject)
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }))
  })
  return {
    pid: child.pid!,
    events,
    waitFor: (match, timeoutMs = 60_000) => {
      const seen = events.find(match)
      if (seen) return Promise.resolve(seen)
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no matching event within ${timeoutMs} ms; stderr: ${stderr}`)), timeoutMs)
        waiters.push({ match, resolve: (e) => (clearTimeout(timer), resolve(e)) })
        void exited.then((run) => {
          clearTimeout(timer)
          reject(new Error(`fleet exited (${run.code ?? run.signal}) before the awaited event; stderr: ${run.stderr}`))
        })
      })
    },
    exited,
    kill: (signal) => child.kill(signal),
    closePipe: (which) => child[which]!.destroy(),
  }
}

/** pids of a simulated host's hung `bun install` (the fixture's sim-bin/bun with faults/install-hangs). */
export function hungInstalls(f: TestFleet, host: string): number[] {
  const marker = `FLEET_SIM_HOST=${f.host(host).dir}`
  const found: number[] = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0')
      if (!argv.some((a) => a.endsWith('sim-bin/bun')) || !argv.includes('install')) continue
      if (readFileSync(`/proc/${entry}/environ`, 'utf8').split('\0').includes(marker)) found.push(Number(entry))
    } catch {
      // exited meanwhile
    }
  }
  return found
}

/**
 * A step command that first waits while the host's faults/hold file exists (see hold()), then runs
 * `command`: a test keeps a rollout in flight exactly as long as it needs (while another process
 * is refused, while it reads from another shell), instead of a verify delay long enough for a
 * loaded machine.
 */
export const heldStep = (command: string): string => `while [ -e "$FLEET_SIM_HOST/faults/hold" ]; do sleep 0.05; done; ${command}`

/** Holds (on) or releases (off) the heldStep commands of these hosts (default: all). */
export async function hold(f: TestFleet, on: boolean, hosts: readonly string[] = f.hosts.map((h) => h.name)): Promise<void> {
  for (const name of hosts) {
    const file = path.join(f.host(name).dir, 'faults', 'hold')
    if (on) await writeFile(file, '')
    else await rm(file, { force: true })
  }
}

export async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(25)
  }
}

export async function expectOn(f: TestFleet, host: string, sha: string): Promise<void> {
  expect(await f.head(host), `HEAD of ${host}`).toBe(sha)
  expect(await f.service(host), `service of ${host}`).toEqual({ running: true, sha })
}

/** Opens a PGlite dir for a moment (the embedded store allows one process at a time). */
export async function withPglite<T>(dir: string, fn: (store: Store) => Promise<T>): Promise<T> {
  const db = await openDatabase({ url: null, dir })
  try {
    return await fn(new Store(db))
  } finally {
    await db.close()
  }
}

/** Cleanups registered by the helpers below; a suite runs them in afterEach (newest first). */
export const cleanups: (() => Promise<void>)[] = []

export async function runCleanups(): Promise<void> {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => {})
}

/** A fresh migrated PGlite dir with the fleet's hosts (and any extra rows), closed so that a `fleet` process can open it. */
export async function pgliteDirWithHosts(f: TestFleet, extra: readonly NewHost[] = []): Promise<string> {
  const s = await openTestStore('pglite')
  await registerHosts(s.store, f)
  if (extra.length) await s.store.upsertHosts(extra)
  await s.database.close()
  const dir = s.databaseConfig.dir
  cleanups.push(() => rm(dir, { recursive: true, force: true }))
  return dir
}

/** A temp working dir holding rollout.config.json. */
export async function workdir(config: object): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'fleet-faults-'))
  await writeFile(path.join(dir, 'rollout.config.json'), JSON.stringify(config, null, 2))
  cleanups.push(() => rm(dir, { recursive: true, force: true }))
  return dir
}

/** The process's peak resident set (VmHWM, KiB), sampled until it exits; 0 if never read. */
export function peakRss(pid: number, exited: Promise<unknown>): Promise<number> {
  let peak = 0
  const sample = () => {
    try {
      const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
      if (match) peak = Math.max(peak, Number(match[1]))
    } catch {
      /* exited */
    }
  }
  const timer = setInterval(sample, 50)
  return exited.then(() => {
    clearInterval(timer)
    return peak
  })
}
