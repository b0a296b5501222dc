/**
 * The simulated app's /metrics (what Prometheus scrapes in the gate tests): per-host port, kept
 * across restarts, counters labelled with the running commit, and the `errors` / `slow` releases.
 */
import { execFile } from 'node:child_process'
import path from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { git, SIM_BIN, startTestFleet, type TestFleet } from './support/test-fleet.js'

const run = promisify(execFile)
let fleet: TestFleet
beforeAll(async () => {
  fleet = await startTestFleet({ hosts: 3, initialRelease: { h02: 'errors', h03: 'slow' } })
}, 60_000)
afterAll(async () => {
  await fleet?.stop()
})

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

/** Parsed `name{labels} value` lines of a host's /metrics. */
async function scrape(host: string): Promise<{ name: string; labels: string; value: number }[]> {
  const text = await (await fetch(`http://127.0.0.1:${fleet.host(host).metricsPort}/metrics`)).text()
  return text
    .split('\n')
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => {
      const m = /^(\w+)(\{[^}]*\})? (\S+)$/.exec(l)!
      return { name: m[1]!, labels: m[2] ?? '', value: Number(m[3]) }
    })
}
const value = (samples: { name: string; labels: string; value: number }[], name: string, label = '') =>
  samples.filter((s) => s.name === name && s.labels.includes(label)).reduce((a, s) => a + s.value, 0)

describe('simulated app metrics', () => {
  test('each host serves its release, commit and synthetic traffic; errors: 20% 5xx; slow: 10x latency', async () => {
    // Enough synthetic requests for the 5xx share to settle (every 5th fails: 1 of 7 is still 14%).
    let samples = await Promise.all(['h01', 'h02', 'h03'].map(scrape))
    for (let i = 0; i < 50 && value(samples[1]!, 'http_requests_total') < 50; i++) {
      await sleep(200)
      samples = await Promise.all(['h01', 'h02', 'h03'].map(scrape))
    }
    const [v1, errors, slow] = samples
    const shas = fleet.origin.shas
    expect(value(v1!, 'app_info', `commit="${shas.v1}",release="v1"`)).toBe(1)
    expect(value(errors!, 'app_info', `commit="${shas.errors}",release="errors"`)).toBe(1)
    expect(value(slow!, 'app_info', `commit="${shas.slow}",release="slow"`)).toBe(1)
    expect(value(v1!, 'http_requests_total')).toBeGreaterThan(5)
    expect(value(v1!, 'http_requests_total', 'code="500"')).toBe(0)
    const share = value(errors!, 'http_requests_total', 'code="500"') / value(errors!, 'http_requests_total')
    expect(share).toBeGreaterThan(0.15)
    expect(share).toBeLessThan(0.25)
    const mean = (s: typeof v1) => value(s!, 'http_request_duration_seconds_sum') / value(s!, 'http_request_duration_seconds_count')
    expect(mean(slow) / mean(v1)).toBeCloseTo(10, 0)
  })

  test('the origin has errors and slow off v2, tagged, not on main', async () => {
    const o = fleet.origin
    expect(await git(o.path, ['rev-parse', 'errors^{commit}', 'slow^{commit}', 'errors^', 'slow^'])).toBe([o.shas.errors, o.shas.slow, o.shas.v2, o.shas.v2].join('\n'))
  })

  test('a restart onto another release serves on the same port, with the new commit', async () => {
    const h = fleet.host('h01')
    await git(h.appDir, ['checkout', '-q', '--detach', fleet.origin.shas.v2])
    const t0 = Date.now()
    await run(path.join(SIM_BIN, 'systemctl'), ['restart', 'rachel8'], {
      cwd: h.dir,
      env: { ...process.env, FLEET_SIM_HOST: h.dir, FLEET_SIM_BUN: path.join(fleet.dir, 'bin', 'bun') },
    })
    let samples: Awaited<ReturnType<typeof scrape>> = []
    while (Date.now() - t0 < 10_000) {
      samples = await scrape('h01').catch(() => [])
      if (value(samples, 'app_info', `commit="${fleet.origin.shas.v2}"`) === 1) break
      await sleep(50)
    }
    expect(value(samples, 'app_info', `commit="${fleet.origin.shas.v2}",release="v2"`)).toBe(1)
    expect(value(samples, 'app_info', fleet.origin.shas.v1)).toBe(0)
    console.log(`metrics back ${Date.now() - t0} ms after systemctl restart`)
  })
})
