/**
 * A real Prometheus server (the Debian package's /usr/bin/prometheus) for the health-gate tests:
 * its own config, data dir and port on 127.0.0.1, scraping every second the targets the test
 * gives it (file_sd, so targets can change while it runs). Only the process started here is ever
 * stopped, by its pid; a watchdog kills it if the test process dies without calling close().
 *
 *   FLEET_TEST_PROMETHEUS=<path>   the binary (default /usr/bin/prometheus)
 * Under CI=true a missing binary is an error (CI installs the package); elsewhere tests may skip.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs'
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'

export const PROMETHEUS_BIN = process.env.FLEET_TEST_PROMETHEUS || '/usr/bin/prometheus'

/** Whether tests can run Prometheus; under CI a missing binary throws instead of skipping. */
export function prometheusAvailable(): boolean {
  if (existsSync(PROMETHEUS_BIN)) return true
  if (process.env.CI) throw new Error(`${PROMETHEUS_BIN} not found: CI must install the "prometheus" package (see .ci/run)`)
  return false
}

export interface ScrapeTarget {
  /** Becomes the `host` label of every series scraped from it. */
  host: string
  port: number
  labels?: Record<string, string>
}

export interface TestPrometheus {
  /** http://127.0.0.1:<port> */
  url: string
  port: number
  dir: string
  /** pid of the running server; 0 while stopped. */
  pid: number
  /** Milliseconds from spawn to /-/ready at the last start. */
  startMs: number
  /** Replaces the scrape targets (Prometheus picks the file up within about a second). */
  setTargets(targets: readonly ScrapeTarget[]): Promise<void>
  /** SIGTERM (then SIGKILL after 5 s) to the server this helper started; data and port are kept. */
  stop(): Promise<void>
  /** Starts it again on the same port with the same data (stops it first if running). */
  restart(): Promise<void>
  /** Polls an instant query until `accept` returns true for its result (or throws after timeoutMs). */
  waitFor(query: string, accept: (result: unknown[]) => boolean, timeoutMs?: number): Promise<unknown[]>
  /** stop() and remove the dir. Idempotent. */
  close(): Promise<void>
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

/** Outside the ephemeral range, so no outgoing connection takes it while the server is stopped. */
async function freePort(): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const port = 10000 + Math.floor(Math.random() * 10000) // below the simulated hosts' 20000-32000
    const ok = await new Promise<boolean>((resolve) => {
      const srv = net.createServer()
      srv.once('error', () => resolve(false))
      srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)))
    })
    if (ok) return port
  }
  throw new Error('prometheus: no free port found')
}

const CONFIG = `# Written by test/support/prometheus.ts
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: fleet-sim
    file_sd_configs:
      - files: [targets.json]
        refresh_interval: 1s
`

export async function startTestPrometheus(): Promise<TestPrometheus> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'fleet-prometheus-'))
  const configFile = path.join(dir, 'prometheus.yml')
  const targetsFile = path.join(dir, 'targets.json')
  const log = path.join(dir, 'prometheus.log')
  await writeFile(configFile, CONFIG)
  await writeFile(targetsFile, '[]\n')

  let proc: ChildProcess | null = null
  let watchdog: ChildProcess | null = null
  let port = 0

  const spawnServer = async (): Promise<void> => {
    const fd = openSync(log, 'a')
    const started = Date.now()
    const child = spawn(
      PROMETHEUS_BIN,
      [
        `--config.file=${configFile}`,
        `--storage.tsdb.path=${path.join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
        '--storage.tsdb.retention.time=1h',
        '--log.level=warn',
      ],
      { cwd: dir, stdio: ['ignore', fd, fd] },
    )
    closeSync(fd)
    let exited = false
    child.once('exit', () => (exited = true))
    child.once('error', () => (exited = true))
    // If this process dies without close(), the watchdog (its stdin closes) kills that server.
    const pid = child.pid ?? 0
    watchdog = spawn(
      '/bin/sh',
      ['-c', 'cat >/dev/null; if tr "\\0" " " < /proc/$1/cmdline 2>/dev/null | grep -qF -- "$2"; then kill -9 "$1"; sleep 0.2; rm -rf "$2"; fi', 'watchdog', String(pid), dir],
      { stdio: ['pipe', 'ignore', 'ignore'], detached: true },
    )
    watchdog.on('error', () => {})
    watchdog.unref()
    ;(watchdog.stdin as unknown as { unref?: () => void } | null)?.unref?.()
    proc = child
    const deadline = Date.now() + 30_000
    for (;;) {
      if (exited) throw new Error(`prometheus exited at start:\n${readFileSync(log, 'utf8').slice(-2000)}`)
      const ready = await fetch(`http://127.0.0.1:${port}/-/ready`).then(
        (r) => r.ok,
        () => false,
      )
      if (ready) break
      if (Date.now() > deadline) throw new Error(`prometheus not ready within 30 s:\n${readFileSync(log, 'utf8').slice(-2000)}`)
      await sleep(50)
    }
    api.pid = pid
    api.startMs = Date.now() - started
  }

  const stopServer = async (): Promise<void> => {
    const child = proc
    proc = null
    api.pid = 0
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
      child.kill('SIGTERM')
      if (await Promise.race([exited.then(() => true), sleep(5000).then(() => false)])) {
        // exited cleanly
      } else {
        child.kill('SIGKILL')
        await exited
      }
    }
    // The server is gone: the watchdog has nothing left to guard.
    watchdog?.kill('SIGKILL')
    watchdog = null
  }

  let closed: Promise<void> | undefined
  const api: TestPrometheus = {
    url: '',
    port: 0,
    dir,
    pid: 0,
    startMs: 0,
    setTargets: async (targets) => {
      const groups = targets.map((t) => ({ targets: [`127.0.0.1:${t.port}`], labels: { host: t.host, ...t.labels } }))
      // Atomic: Prometheus must never read a half-written file.
      await writeFile(`${targetsFile}.tmp`, JSON.stringify(groups, null, 2))
      await rename(`${targetsFile}.tmp`, targetsFile)
    },
    stop: stopServer,
    restart: async () => {
      await stopServer()
      await spawnServer()
    },
    waitFor: async (query, accept, timeoutMs = 15_000) => {
      const deadline = Date.now() + timeoutMs
      let last: unknown = null
      for (;;) {
        try {
          const res = await fetch(`${api.url}/api/v1/query?${new URLSearchParams({ query })}`)
          last = await res.json()
          const result = (last as { data?: { result?: unknown[] } }).data?.result
          if (Array.isArray(result) && accept(result)) return result
        } catch (err) {
          last = err
        }
        if (Date.now() > deadline) throw new Error(`prometheus: ${query} not as expected within ${timeoutMs} ms; last: ${JSON.stringify(last)}`)
        await sleep(200)
      }
    },
    close: () =>
      (closed ??= (async () => {
        await stopServer().catch(() => {})
        await rm(dir, { recursive: true, force: true, maxRetries: 3 }).catch(() => {})
      })()),
  }

  try {
    // A port another process grabs between choosing and binding: try another one.
    for (let attempt = 1; ; attempt++) {
      port = await freePort()
      api.port = port
      api.url = `http://127.0.0.1:${port}`
      try {
        await spawnServer()
        break
      } catch (err) {
        await stopServer()
        if (attempt >= 5 || !/address already in use/i.test(String(err))) throw err
      }
    }
    return api
  } catch (err) {
    await api.close()
    throw err
  }
}
