/**
 * A real Prometheus Pushgateway (Debian package `prometheus-pushgateway`) on 127.0.0.1 for tests.
 *
 *   const gw = await startPushgateway()   // null outside CI when the binary is missing (skip)
 *   ... push to gw.url, read gw.metrics() ...
 *   await gw.stop()                        // kills the pid it started, nothing else
 *
 * Under CI=true a missing binary throws: CI must fail, not skip. No persistence file: every start is empty.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import net from 'node:net'

export const PUSHGATEWAY_BIN = process.env.FLEET_TEST_PUSHGATEWAY ?? '/usr/bin/prometheus-pushgateway'

export interface TestPushgateway {
  /** http://127.0.0.1:<port> */
  readonly url: string
  readonly pid: number
  /** The text of GET /metrics (everything it holds, plus its own metrics). */
  metrics(): Promise<string>
  stop(): Promise<void>
}

export function pushgatewaySkipReason(): string | null {
  return existsSync(PUSHGATEWAY_BIN) ? null : `no Pushgateway binary at ${PUSHGATEWAY_BIN} (apt-get install prometheus-pushgateway)`
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo
      srv.close(() => resolve(port))
    })
  })
}

async function ready(url: string, child: ChildProcess, deadline: number): Promise<boolean> {
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) return false
    try {
      const res = await fetch(`${url}/-/ready`, { signal: AbortSignal.timeout(1000) })
      if (res.ok) return true
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 50))
  }
  return false
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise((resolve) => {
    const kill = setTimeout(() => child.kill('SIGKILL'), 3000)
    child.once('exit', () => {
      clearTimeout(kill)
      resolve()
    })
    child.kill('SIGTERM')
  })
}

export async function startPushgateway(): Promise<TestPushgateway | null> {
  const missing = pushgatewaySkipReason()
  if (missing) {
    if (process.env.CI) throw new Error(`${missing} (CI requires a real Pushgateway)`)
    return null
  }
  let lastError = ''
  // The free port may be taken between probing and binding: try a few.
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort()
    const url = `http://127.0.0.1:${port}`
    const child = spawn(PUSHGATEWAY_BIN, [`--web.listen-address=127.0.0.1:${port}`, '--persistence.file=', '--log.level=warn'], {
      stdio: ['ignore', 'ignore', 'pipe'],
    })
    let stderr = ''
    child.stderr!.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-2000)
    })
    if (await ready(url, child, Date.now() + 15_000)) {
      return {
        url,
        pid: child.pid!,
        metrics: async () => (await fetch(`${url}/metrics`)).text(),
        stop: () => stopChild(child),
      }
    }
    lastError = stderr.trim()
    await stopChild(child)
  }
  throw new Error(`the Pushgateway did not start: ${lastError}`)
}
