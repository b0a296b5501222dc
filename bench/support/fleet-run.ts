/**
 * Runs against the real test fleet (test/support/test-fleet.ts: one OpenSSH sshd per host on
 * loopback, real git checkouts, the service stand-in):
 *  - fleet's own rollout, in-process, with the real engine, ssh2 executor and store;
 *  - the per-host baseline: the same step sequence (updateHost) over one connection, no orchestration;
 *  - a "bare pool": the same stages and concurrency with p-limit around connect + updateHost and
 *    nothing else (no store, no events, no lock), to tell fleet's overhead from the machine's.
 */
import { readdirSync, readFileSync } from 'node:fs'
import pLimit from 'p-limit'

import { hostSettings, makeExecutor, rolloutRequest } from '../../src/cli/context.js'
import type { FleetConfig } from '../../src/config/types.js'
import { systemClock } from '../../src/rollout/clock.js'
import { runRollout, type RolloutResult } from '../../src/rollout/engine.js'
import type { RolloutEvent } from '../../src/rollout/events.js'
import { updateHost } from '../../src/rollout/host-update.js'
import { loadInventory } from '../../src/rollout/inventory.js'
import { buildPlan } from '../../src/rollout/plan.js'
import type { Host, Sha } from '../../src/types.js'
import { Ssh2Executor } from '../../src/ssh/ssh2-executor.js'
import type { Store } from '../../src/store/store.js'
import type { Release, SimHost, TestFleet } from '../../test/support/test-fleet.js'
import type { StatementCounter } from './counting.js'
import { measure, processCpuMs, waitForQuiet, type Window } from './measure.js'

export const GOOD_RELEASES = ['v1', 'v2', 'v3'] as const satisfies readonly Release[]
export type GoodRelease = (typeof GOOD_RELEASES)[number]

/** What each host runs, so every run can pick a target that none of its hosts is at (nothing skipped). */
export class Releases {
  private readonly current = new Map<string, GoodRelease>()
  constructor(private readonly fleet: TestFleet) {
    for (const h of fleet.hosts) this.current.set(h.name, 'v1')
  }
  targetFor(hosts: readonly { name: string }[]): GoodRelease {
    const used = new Set(hosts.map((h) => this.current.get(h.name)))
    const free = GOOD_RELEASES.find((r) => !used.has(r))
    if (!free) throw new Error('bench: the hosts run every release; no target would update all of them')
    return free
  }
  moved(hosts: readonly { name: string }[], to: GoodRelease): void {
    for (const h of hosts) this.current.set(h.name, to)
  }
  sha(release: GoodRelease): Sha {
    return this.fleet.origin.shas[release] as Sha
  }
}

export const asHost = (h: SimHost): Host => ({ name: h.name, address: h.address, port: h.port, user: h.user, appDir: h.appDir })

/** Same construction as makeExecutor, without a store for key pins (known_hosts has every key). */
export function plainExecutor(config: FleetConfig): Ssh2Executor {
  return new Ssh2Executor({
    privateKey: config.ssh.privateKey,
    agent: null,
    knownHosts: config.ssh.knownHosts,
    hostKeyPolicy: config.ssh.hostKeyPolicy,
    pins: { getHostKey: async () => null, pinHostKey: async () => true },
  })
}

/** connect + updateHost + close on one host; throws unless it succeeded. Returns ms. */
export async function directUpdate(executor: Ssh2Executor, config: FleetConfig, host: Host, target: Sha): Promise<number> {
  const t0 = performance.now()
  const connect = () => executor.connect(host, { timeoutMs: config.ssh.connectTimeoutMs })
  const session = await connect()
  try {
    const outcome = await updateHost({
      session,
      host,
      target,
      settings: hostSettings(config),
      clock: systemClock,
      hooks: { step: () => {}, previousVersion: () => {} },
      reconnect: connect,
    })
    if (outcome.status !== 'success') throw new Error(`bench: direct update of ${host.name} ended ${outcome.status}: ${outcome.error}`)
  } finally {
    session.close()
  }
  return performance.now() - t0
}

/** The per-host time: each host updated once, one after the other (nothing else running). */
export async function perHostBaseline(fleet: TestFleet, releases: Releases, config: FleetConfig, hosts: readonly SimHost[]): Promise<number[]> {
  const to = releases.targetFor(hosts)
  const executor = plainExecutor(config)
  const times: number[] = []
  await waitForQuiet()
  for (const h of hosts) times.push(await directUpdate(executor, config, asHost(h), releases.sha(to)))
  releases.moved(hosts, to)
  return times
}

/** Same stages (same seed, so the same split) and concurrency as a rollout; only p-limit and updateHost. */
export async function barePool(
  releases: Releases,
  config: FleetConfig,
  hosts: readonly SimHost[],
  seed: string,
): Promise<{ window: Window; stageSizes: number[]; hostTimes: number[]; stageWalls: number[]; backgroundLoad: number }> {
  const to = releases.targetFor(hosts)
  const executor = plainExecutor(config)
  const plan = buildPlan(hosts.map(asHost), config.rollout.stages, seed)
  const hostTimes: number[] = []
  const stageWalls: number[] = []
  const quiet = await waitForQuiet()
  const { window } = await measure(async () => {
    for (const stage of plan.byStage) {
      const t0 = performance.now()
      const limit = pLimit(config.rollout.concurrency)
      await Promise.all(stage.map((h) => limit(async () => hostTimes.push(await directUpdate(executor, config, h, releases.sha(to))))))
      stageWalls.push(performance.now() - t0)
    }
  })
  releases.moved(hosts, to)
  return { window, stageSizes: plan.byStage.map((s) => s.length), hostTimes, stageWalls, backgroundLoad: quiet }
}

export interface InProcessRun {
  result: RolloutResult
  events: RolloutEvent[]
  window: Window
  statements: ReturnType<StatementCounter['snapshot']>
  /** sshd "Accepted publickey" lines per host during the run. */
  connections: number[]
  clientConnections: number
  /** CPU of the Postgres server processes serving our database (null for PGlite, which runs in-process). */
  serverCpuMs: number | null
  phases: Phases
  /** Machine load (other jobs) just before the run started. */
  backgroundLoad: number
}

/** Where a rollout's wall time goes, from its events' timestamps (ms resolution). */
export interface Phases {
  /** From the call to the first stage starting: inventory, lock, ref resolution, createRollout. */
  setupMs: number
  /** Each stage, stage-started → stage-finished. */
  stageMs: number[]
  /** Between stages (stage delay is 0). */
  gapsMs: number
  /** Last stage-finished → the result returned (rollout record, lock release). */
  tailMs: number
}

export function phasesOf(events: readonly RolloutEvent[], startedAt: number, endedAt: number): Phases {
  const starts = events.flatMap((e) => (e.type === 'stage-started' ? [Date.parse(e.at)] : []))
  const ends = events.flatMap((e) => (e.type === 'stage-finished' ? [Date.parse(e.at)] : []))
  return {
    setupMs: (starts[0] ?? endedAt) - startedAt,
    stageMs: starts.map((s, i) => (ends[i] ?? endedAt) - s),
    gapsMs: starts.slice(1).reduce((sum, s, i) => sum + (s - (ends[i] ?? s)), 0),
    tailMs: endedAt - (ends.at(-1) ?? endedAt),
  }
}

/**
 * CPU time of the Postgres backends serving one database, from /proc: their process titles name the
 * database ("postgres: 15/main: postgres <db> 127.0.0.1(…) idle"). Sampled every 250 ms; a backend's
 * CPU counts from the first sample that sees it (the pool opens its connections at the start).
 */
export function serverCpu(database: string | null): { stop(): number | null } {
  if (!database) return { stop: () => null }
  const first = new Map<number, number>()
  const last = new Map<number, number>()
  const sample = () => {
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue
      let cmdline = ''
      try {
        cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8')
      } catch {
        continue
      }
      if (!cmdline.startsWith('postgres:') || !cmdline.includes(` ${database} `)) continue
      const pid = Number(entry)
      const cpu = processCpuMs(pid)
      if (!first.has(pid)) first.set(pid, cpu)
      last.set(pid, cpu)
    }
  }
  sample()
  const timer = setInterval(sample, 250)
  return {
    stop: () => {
      sample()
      clearInterval(timer)
      let total = 0
      for (const [pid, cpu] of last) total += cpu - (first.get(pid) ?? cpu)
      return total
    },
  }
}

/** A whole rollout as `fleet rollout start` runs it (inventory load included), in this process. */
export async function inProcessRollout(
  fleet: TestFleet,
  releases: Releases,
  store: Store,
  counter: StatementCounter,
  config: FleetConfig,
  hosts: readonly SimHost[],
  seed: string,
  /** Postgres database name: its server backends' CPU is sampled (they run on the same cores). */
  pgDatabase: string | null = null,
): Promise<InProcessRun> {
  const to = releases.targetFor(hosts)
  const before = hosts.map((h) => fleet.acceptedConnections(h.name))
  const events: RolloutEvent[] = []
  const executor = makeExecutor(config, store)
  counter.reset()
  const quiet = await waitForQuiet()
  const server = serverCpu(pgDatabase)
  const startedAt = Date.now()
  const { result, window } = await measure(async () => {
    const inventory = await loadInventory(store, config)
    if (inventory.hosts.length !== hosts.length) throw new Error(`bench: inventory has ${inventory.hosts.length} hosts, expected ${hosts.length}`)
    const request = rolloutRequest({ config, configSource: null }, inventory.hosts, { ref: to, seed, owner: 'bench' })
    return runRollout({ store, executor, clock: systemClock, listeners: [(e) => events.push(e)] }, request)
  })
  const statements = counter.snapshot()
  const endedAt = Date.now()
  const serverCpuMs = server.stop()
  if (result.exitCode !== 0) throw new Error(`bench: rollout ended ${result.state} (exit ${result.exitCode}): ${JSON.stringify(result.counts)}`)
  releases.moved(hosts, to)
  const connections = hosts.map((h, i) => fleet.acceptedConnections(h.name) - before[i]!)
  return { result, events, window, statements, connections, clientConnections: executor.connectionsOpened, serverCpuMs, phases: phasesOf(events, startedAt, endedAt), backgroundLoad: quiet }
}

export const stageSizesOf = (events: readonly RolloutEvent[]): number[] => {
  const started = events.find((e) => e.type === 'rollout-started')
  if (!started || started.type !== 'rollout-started') throw new Error('bench: no rollout-started event')
  return started.stageSizes
}

/** Σ over stages of ceil(hosts in stage / concurrency) × per-host time. */
export const lowerBound = (stageSizes: readonly number[], concurrency: number, perHostMs: number): number =>
  stageSizes.reduce((sum, size) => sum + Math.ceil(size / concurrency) * perHostMs, 0)
