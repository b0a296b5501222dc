/**
 * `fleet dashboard` in a real browser (Debian's chromium through playwright-core), beside real
 * rollouts of the built CLI on the simulated fleet (sshd, git) with the embedded store: the page
 * shows a finished rollout and its hosts, follows the next one without a reload while another
 * process holds the store, plots the gate values of each bake, logs no console error, and shows
 * a hostile host name as text. Every method but GET answers 405 on every path; it listens on
 * 127.0.0.1 only. UPDATE_SCREENSHOT=1 rewrites docs/dashboard.png from this page.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import http from 'node:http'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import type { Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { FLEET_BIN, runFleet } from './support/cli.js'
import { chromiumAvailable, startBrowser, type TestBrowser } from './support/browser.js'
import { killSpawned, pgliteDirWithHosts, runCleanups, spawnFleet, workdir } from './support/fault-kit.js'
import { fleetConfigOverrides } from './support/harness.js'
import { REPO_ROOT } from './support/origin.js'
import { startTestFleet, type TestFleet } from './support/test-fleet.js'

/** What the page functions below touch in the browser (the project compiles without the DOM library). */
declare const document: { querySelector(s: string): { textContent: string | null } | null; querySelectorAll(s: string): { length: number } }
declare const window: Record<string, unknown>

const available = chromiumAvailable()
const HOSTILE = `<img src=x onerror="document.title='pwned'">&amp;"'`

let fleet: TestFleet
let browser: TestBrowser
let cwd: string
let dashboard: ChildProcess | null = null
let url = ''
let page: Page
const problems: string[] = []

/** A port nothing listens on: the hostile host fails at once, with its name in the trail. */
async function closedPort(): Promise<number> {
  const server = net.createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as net.AddressInfo).port
  await new Promise((resolve) => server.close(resolve))
  return port
}

async function startDashboard(): Promise<string> {
  const child = spawn(process.execPath, [FLEET_BIN, 'dashboard', '--port', '0'], { cwd, env: { PATH: process.env.PATH, HOME: process.env.HOME, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] })
  dashboard = child
  let out = ''
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no URL from fleet dashboard: ${out}`)), 20_000)
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString()
      const m = /(http:\/\/\S+\/)/.exec(out)
      if (m) {
        clearTimeout(timer)
        resolve(m[1]!)
      }
    })
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()))
    child.on('exit', (code) => reject(new Error(`fleet dashboard exited ${code}: ${out}`)))
  })
}

function request(method: string, target: string, headers: Record<string, string> = {}): Promise<{ status: number; allow: string | undefined; body: string }> {
  return new Promise((resolve, reject) => {
    // A body with its length: without one, Node sends OPTIONS, DELETE and TRACE bodies as bare bytes (a second request).
    const body = method === 'GET' || method === 'HEAD' ? undefined : '{"state":"aborted"}'
    const sized = body === undefined ? headers : { 'Content-Type': 'application/json', 'Content-Length': String(body.length), ...headers }
    const req = http.request(new URL(target, url), { method, headers: sized, agent: false }, (res) => {
      let body = ''
      res.on('data', (d: Buffer) => (body += d.toString()))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, allow: res.headers.allow, body }))
    })
    req.on('error', reject)
    req.end(body)
  })
}

/** What a raw request with a method Node's parser does not know gets back (its status line). */
function raw(method: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const u = new URL(url)
    const socket = net.connect(Number(u.port), u.hostname, () => socket.write(`${method} /api/state HTTP/1.1\r\nHost: ${u.host}\r\nContent-Length: 0\r\n\r\n`))
    let text = ''
    socket.on('data', (d: Buffer) => (text += d.toString()))
    socket.on('close', () => resolve(text.split('\r\n')[0] ?? ''))
    socket.on('error', reject)
    setTimeout(() => socket.destroy(), 3_000)
  })
}

const text = (selector: string) => page.locator(selector).first().textContent()

beforeAll(async () => {
  if (!available) return
  ;[fleet, browser] = await Promise.all([startTestFleet({ hosts: 4 }), startBrowser()])
  const port = await closedPort()
  const dir = await pgliteDirWithHosts(fleet, [{ name: HOSTILE, address: '127.0.0.1', port, user: fleet.hosts[0]!.user, appDir: fleet.hosts[0]!.appDir }])
  cwd = await workdir({
    ...fleetConfigOverrides(fleet, { rollout: { stages: [50, 100], failureThreshold: 0.9, concurrency: 5 } }),
    gates: { bake: '2s', interval: '1s', checks: [{ name: 'smoke', command: 'true' }] },
    database: { dir },
  })
  const first = await runFleet(['rollout', 'start', '--yes'], { cwd, timeoutMs: 60_000 })
  // The hostile host cannot be reached: the rollout completes with it failed (exit 4).
  expect(first.code, first.stderr).toBe(4)
  url = await startDashboard()
  page = await browser.context.newPage()
  page.on('console', (m) => (m.type() === 'error' || m.type() === 'warning') && problems.push(`${m.type()}: ${m.text()}`))
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`))
}, 120_000)

afterAll(async () => {
  if (dashboard?.pid) dashboard.kill('SIGTERM')
  killSpawned()
  await browser?.close()
  await runCleanups()
  await fleet?.stop()
})

describe.skipIf(!available)('fleet dashboard in chromium (built CLI, sim fleet, PGlite)', () => {
  it('listens on 127.0.0.1 only', async () => {
    expect(new URL(url).hostname).toBe('127.0.0.1')
    const other = Object.values(os.networkInterfaces()).flat().find((i) => i && i.family === 'IPv4' && !i.internal)
    if (other) {
      const refused = await new Promise<boolean>((resolve) => {
        const s = net.connect(Number(new URL(url).port), other.address, () => (s.destroy(), resolve(false)))
        s.on('error', () => resolve(true))
      })
      expect(refused, `reachable on ${other.address}`).toBe(true)
    }
    // A page of another site resolving to 127.0.0.1 (DNS rebinding) is refused.
    expect((await request('GET', '/api/state', { Host: 'evil.example:80' })).status).toBe(421)
  })

  it('shows the finished rollout, its hosts (a hostile name as text), the gate plot and the audit trail', async () => {
    await page.goto(url)
    await page.waitForSelector('#hosts tr', { timeout: 15_000 })
    expect(await text('#state')).toBe('completed')
    expect(await page.locator('#rollouts li').count()).toBe(1)
    expect(await page.locator('#hosts tr').count()).toBe(5)
    const hostile = page.locator('#hosts tr.failed td.name')
    expect(await hostile.textContent()).toBe(HOSTILE)
    expect(await page.locator('#hosts img, #trail img').count()).toBe(0)
    expect(await page.title()).toBe('fleet dashboard')
    for (const h of fleet.hosts) expect(await page.locator(`#hosts tr[data-host="${h.name}"] td.state`).textContent()).toBe('success')
    // Every stage baked with the check measured: a plot per bake, one point per measurement.
    await page.waitForSelector('figure.gate svg circle')
    expect(await page.locator('.bake').count()).toBe(2)
    expect(await page.locator('figure.gate[data-gate="smoke"] circle.point.pass').count()).toBeGreaterThanOrEqual(2)
    expect(await page.locator('#trail tr').count()).toBeGreaterThan(5)
    expect((await page.locator('#trail').textContent()) ?? '').toMatch(/gates passed/)
    expect(await text('#stages')).toMatch(/stage 1 · 50% · 3\/3.*stage 2 · 100% · 2\/2/)
  })

  it('follows the next rollout without a reload while another process holds the store', async () => {
    const firstId = await page.locator('#title').textContent()
    await page.evaluate(() => ((window.marker = 42)))
    const next = spawnFleet(['rollout', 'start', '--yes', '--ref', 'v3', '--json'], { cwd })
    // Seen while it runs (from the running process's snapshot), then finished.
    await page.waitForFunction((id) => document.querySelector('#title')?.textContent !== id && /running|baking/.test(document.querySelector('#state')?.textContent ?? ''), firstId, { timeout: 30_000 })
    const run = await next.exited
    expect(run.code, run.stderr).toBe(4)
    await page.waitForFunction(() => document.querySelector('#state')?.textContent === 'completed', undefined, { timeout: 20_000 })
    expect(await page.evaluate(() => window.marker)).toBe(42)
    expect(await page.locator('#rollouts li').count()).toBe(2)
    expect(await page.locator('#rollouts li.current .ref').textContent()).toMatch(/^v3 → /)
    await page.waitForSelector('#hosts tr[data-host] td.mono')
    // Clicking the first rollout shows it again; "follow the latest" goes back.
    await page.locator(`#rollouts button[data-rollout="${firstId?.replace('rollout ', '')}"]`).click()
    await page.waitForFunction((id) => document.querySelector('#title')?.textContent === id, firstId)
    await page.locator('#follow').click()
    await page.waitForFunction((id) => document.querySelector('#title')?.textContent !== id, firstId)
    if (process.env.UPDATE_SCREENSHOT) await page.screenshot({ path: path.join(REPO_ROOT, 'docs', 'dashboard.png'), fullPage: true })
  }, 60_000)

  it('filters and pages the host table on the server', async () => {
    await page.selectOption('#status-filter', 'failed')
    await page.waitForFunction(() => document.querySelectorAll('#hosts tr').length === 1)
    expect(await text('#page')).toBe('1–1 of 1 (of 5)')
    await page.selectOption('#status-filter', '')
    await page.fill('#search', fleet.hosts[0]!.name)
    await page.waitForFunction((n) => document.querySelector('#hosts tr td.name')?.textContent === n, fleet.hosts[0]!.name)
    const hosts = JSON.parse((await request('GET', '/api/hosts?limit=2&offset=1')).body) as { total: number; hosts: unknown[]; offset: number }
    expect(hosts).toMatchObject({ total: 5, offset: 1 })
    expect(hosts.hosts).toHaveLength(2)
  })

  it('logged no console error or warning', () => {
    expect(problems).toEqual([])
  })

  it('answers 405 to every method but GET on every path, and changes nothing', async () => {
    const before = (await request('GET', '/api/state')).body
    const methods = ['POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'HEAD', 'TRACE', 'PROPFIND', 'PROPPATCH', 'MKCOL', 'COPY', 'MOVE', 'LOCK', 'UNLOCK', 'PURGE', 'LINK', 'UNLINK', 'REPORT', 'SEARCH', 'MERGE', 'NOTIFY', 'SUBSCRIBE']
    const paths = ['/', '/app.js', '/app.css', '/api/state', '/api/hosts', '/api/state?rollout=x', '/api/rollouts/abort', '/api/hosts/x/rollback', '/nope', '/..%2f..%2fetc/passwd', '/index.html']
    for (const method of methods)
      for (const p of paths) {
        const res = await request(method, p)
        expect(res.status, `${method} ${p}`).toBe(405)
        expect(res.allow, `${method} ${p}`).toBe('GET')
      }
    for (const method of ['BREW', 'FOO', 'CONNECT']) expect(await raw(method), method).toMatch(/^HTTP\/1\.1 405/)
    const after = JSON.parse((await request('GET', '/api/state')).body) as { rollouts: unknown[] }
    expect(after.rollouts).toEqual((JSON.parse(before) as { rollouts: unknown[] }).rollouts)
    expect((await request('GET', '/nope')).status).toBe(404)
  })
})
