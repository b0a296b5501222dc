/** Small measuring tools: medians, process and machine CPU, an RSS sampler, child processes under /usr/bin/time. */
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { monitorEventLoopDelay } from 'node:perf_hooks'

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
/** The bench's private build of the CLI (made by global-setup.ts): bin/fleet + dist/, as packaged. */
export const BUILD_DIR = path.join(REPO_ROOT, 'bench', '.build')
export const FLEET_BIN = path.join(BUILD_DIR, 'bin', 'fleet')

export const median = (values: readonly number[]): number => {
  if (values.length === 0) return NaN
  const s = [...values].sort((a, b) => a - b)
  const mid = Math.floor(s.length / 2)
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2
}

export const percentile = (values: readonly number[], p: number): number => {
  if (values.length === 0) return NaN
  const s = [...values].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!
}

export const round = (n: number, digits = 2): number => Math.round(n * 10 ** digits) / 10 ** digits
export const ms = (n: number): string => (n >= 10_000 ? `${(n / 1000).toFixed(1)} s` : n >= 1000 ? `${(n / 1000).toFixed(2)} s` : `${n.toFixed(n < 10 ? 2 : 0)} ms`)
export const mb = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(0)} MB`

/** Machine-wide CPU time (all cores) from /proc/stat, in ms: busy and total. */
export function machineCpu(): { busyMs: number; totalMs: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!
  const f = line.trim().split(/\s+/).slice(1).map(Number)
  const [user, nice, system, idle, iowait, irq, softirq, steal] = f as [number, number, number, number, number, number, number, number]
  const tick = 1000 / 100 // USER_HZ is 100 on Linux
  const busy = user + nice + system + irq + softirq + steal
  return { busyMs: busy * tick, totalMs: (busy + idle + iowait) * tick }
}

/** CPU time of one process (user + system) in ms, from /proc/<pid>/stat. */
export function processCpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(fields[11]) + Number(fields[12])) * 10
  } catch {
    return 0
  }
}

/** How busy the machine is with nothing of ours running (other people's jobs share the cores). */
export async function backgroundLoad(ms = 3000): Promise<number> {
  const a = machineCpu()
  await new Promise((r) => setTimeout(r, ms))
  const b = machineCpu()
  return (b.busyMs - a.busyMs) / Math.max(1, b.totalMs - a.totalMs)
}

/**
 * Waits (up to maxWaitMs) until the machine is quiet: other people's jobs share these cores, and a
 * run measured under their load says little. Returns the load finally seen.
 */
export async function waitForQuiet(threshold = Number(process.env.BENCH_QUIET ?? 0.25), maxWaitMs = Number(process.env.BENCH_QUIET_WAIT_MS ?? 120_000)): Promise<number> {
  const deadline = Date.now() + maxWaitMs
  let load = await backgroundLoad(2000)
  while (load > threshold && Date.now() < deadline) load = await backgroundLoad(2000)
  return load
}

export interface Window {
  wallMs: number
  cpuUserMs: number
  cpuSystemMs: number
  /** This process's CPU time over the wall time, in cores. */
  cpuCores: number
  /** Whole machine busy over the window, as a fraction of all cores. */
  machineBusy: number
  peakRss: number
  startRss: number
  peakHeapUsed: number
  /** Event-loop delay over the window (perf_hooks.monitorEventLoopDelay, 10 ms resolution), ms. */
  loopDelayP50: number
  loopDelayP99: number
  loopDelayMax: number
}

/**
 * Measures `fn` in this process: wall, CPU (process.cpuUsage delta), RSS and heap sampled every 50 ms
 * (max), and how busy the whole machine was (to tell our cost from the simulated fleet's).
 */
export async function measure<T>(fn: () => Promise<T>): Promise<{ result: T; window: Window }> {
  ;(globalThis as { gc?: () => void }).gc?.()
  const startRss = process.memoryUsage().rss
  let peakRss = startRss
  let peakHeap = process.memoryUsage().heapUsed
  const sample = () => {
    const m = process.memoryUsage()
    if (m.rss > peakRss) peakRss = m.rss
    if (m.heapUsed > peakHeap) peakHeap = m.heapUsed
  }
  const timer = setInterval(sample, 50)
  const loop = monitorEventLoopDelay({ resolution: 10 })
  loop.enable()
  const cpu0 = process.cpuUsage()
  const machine0 = machineCpu()
  const t0 = performance.now()
  try {
    const result = await fn()
    const wallMs = performance.now() - t0
    const cpu = process.cpuUsage(cpu0)
    const machine1 = machineCpu()
    sample()
    loop.disable()
    const window: Window = {
      wallMs,
      cpuUserMs: cpu.user / 1000,
      cpuSystemMs: cpu.system / 1000,
      cpuCores: (cpu.user + cpu.system) / 1000 / wallMs,
      machineBusy: (machine1.busyMs - machine0.busyMs) / Math.max(1, machine1.totalMs - machine0.totalMs),
      peakRss,
      startRss,
      peakHeapUsed: peakHeap,
      loopDelayP50: loop.percentile(50) / 1e6,
      loopDelayP99: loop.percentile(99) / 1e6,
      loopDelayMax: loop.max / 1e6,
    }
    return { result, window }
  } finally {
    clearInterval(timer)
  }
}

export interface ChildRun {
  code: number | null
  stdout: string
  stderr: string
  wallMs: number
  /** From /usr/bin/time -v when available. */
  maxRssKb: number | null
  userS: number | null
  systemS: number | null
}

const GNU_TIME = '/usr/bin/time'

/** Runs the built CLI as a user would, under /usr/bin/time -v (peak RSS, CPU) when it is installed. */
export function runCli(args: readonly string[], options: { cwd: string; env?: NodeJS.ProcessEnv; timeoutMs?: number; nodeArgs?: string[] }): Promise<ChildRun> {
  if (!existsSync(path.join(BUILD_DIR, 'dist', 'cli', 'main.js'))) throw new Error('bench/.build/dist is missing: the global setup builds it (run through vitest.bench.config.ts)')
  return runNode([...(options.nodeArgs ?? []), FLEET_BIN, ...args], options)
}

/** `node <args>` under /usr/bin/time -v when it is installed. */
export function runNode(nodeArgs: readonly string[], options: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<ChildRun> {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME, NO_COLOR: '1', ...options.env }
  const argv = [process.execPath, ...nodeArgs]
  const timed = existsSync(GNU_TIME)
  const [cmd, ...rest] = timed ? [GNU_TIME, '-v', ...argv] : argv
  return new Promise((resolve, reject) => {
    const t0 = performance.now()
    const child = spawn(cmd!, rest, { cwd: options.cwd ?? REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] })
    const out: Buffer[] = []
    const err: Buffer[] = []
    child.stdout.on('data', (d: Buffer) => out.push(d))
    child.stderr.on('data', (d: Buffer) => err.push(d))
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 600_000)
    child.on('error', reject)
    child.on('close', (code) => {
      const wallMs = performance.now() - t0
      clearTimeout(timer)
      let stderr = Buffer.concat(err).toString('utf8')
      let maxRssKb: number | null = null
      let userS: number | null = null
      let systemS: number | null = null
      if (timed) {
        const at = stderr.lastIndexOf('\tCommand being timed:')
        const report = at >= 0 ? stderr.slice(at) : ''
        if (at >= 0) stderr = stderr.slice(0, at)
        maxRssKb = Number(/Maximum resident set size \(kbytes\): (\d+)/.exec(report)?.[1] ?? NaN)
        userS = Number(/User time \(seconds\): ([\d.]+)/.exec(report)?.[1] ?? NaN)
        systemS = Number(/System time \(seconds\): ([\d.]+)/.exec(report)?.[1] ?? NaN)
        const status = /Exit status: (\d+)/.exec(report)?.[1]
        if (status !== undefined) code = Number(status)
      }
      resolve({ code, stdout: Buffer.concat(out).toString('utf8'), stderr, wallMs, maxRssKb, userS, systemS })
    })
  })
}

export function machineInfo(): Record<string, string> {
  const sh = (cmd: string, args: string[]): string => {
    const r = spawnSync(cmd, args, { encoding: 'utf8' })
    return `${r.stdout ?? ''}${r.stderr ?? ''}`.trim()
  }
  const cpuModel = /model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? 'unknown'
  const memKb = Number(/MemTotal:\s+(\d+)/.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1] ?? 0)
  const commit = sh('git', ['-C', REPO_ROOT, 'rev-parse', '--short', 'HEAD'])
  const dirty = sh('git', ['-C', REPO_ROOT, 'status', '--porcelain', '--untracked-files=no', '--', 'src']) ? ' (+ uncommitted changes in src/)' : ''
  return {
    nproc: sh('nproc', []),
    cpu: cpuModel,
    memory: `${(memKb / 1024 / 1024).toFixed(1)} GiB`,
    node: process.version,
    openssh: sh('ssh', ['-V']).split('\n')[0] ?? '',
    kernel: sh('uname', ['-r']),
    commit: `${commit}${dirty}`,
  }
}
