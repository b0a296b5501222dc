/**
 * Health-gate metrics against a REAL Prometheus (test/support/prometheus.ts) scraping a simulated
 * fleet whose app serves /metrics: h01 runs v1 (healthy), h02 `errors` (20% 5xx), h03 `slow`.
 * One Prometheus and one fleet for the whole file; the restart test comes last.
 */
import { execFile } from 'node:child_process'
import http from 'node:http'
import net from 'node:net'
import path from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { measure } from '../src/gates/measure.js'
import { instantQuery } from '../src/gates/prometheus.js'
import { substitute } from '../src/gates/promql.js'
import type { GatesConfig, MetricGate } from '../src/gates/types.js'
import { prometheusAvailable, startTestPrometheus, type TestPrometheus } from './support/prometheus.js'
import { git, SIM_BIN, startTestFleet, type TestFleet } from './support/test-fleet.js'

const available = prometheusAvailable()
if (!available) console.warn('skipping the Prometheus gate tests: /usr/bin/prometheus not found (apt-get install prometheus)')

let prom: TestPrometheus
let fleet: TestFleet
const startedAt = Date.now()
/** A target whose host label is as hostile as a host name can get (fleet allows any printable label). */
const HOSTILE = 'we"ird\\ .*|(x){1}\n$'

beforeAll(async () => {
  if (!available) return
  const [p, f] = await Promise.allSettled([startTestPrometheus(), startTestFleet({ hosts: 3, initialRelease: { h02: 'errors', h03: 'slow' } })])
  if (p.status === 'fulfilled') prom = p.value
  if (f.status === 'fulfilled') fleet = f.value
  if (p.status === 'rejected') throw p.reason
  if (f.status === 'rejected') throw f.reason
  await prom.setTargets([
    ...fleet.hosts.map((h) => ({ host: h.name, port: h.metricsPort })),
    { host: HOSTILE, port: fleet.host('h01').metricsPort },
  ])
  // Every target scraped at least twice, so rate() over a few seconds has data.
  await prom.waitFor('count(rate(http_requests_total{code="200"}[5s]) > 0)', (r) => Number((r[0] as { value: [number, string] })?.value[1]) === 4, 20_000)
  console.log(`prometheus ready in ${prom.startMs} ms; fleet + first scrapes in ${Date.now() - startedAt} ms`)
}, 60_000)

afterAll(async () => {
  await Promise.all([prom?.close(), fleet?.stop()])
})

const ERROR_RATE = 'sum(rate(http_requests_total{code=~"5..",commit="{sha}"}[5s])) / sum(rate(http_requests_total{commit="{sha}"}[5s]))'
const P90_LATENCY = 'histogram_quantile(0.9, sum by (le) (rate(http_request_duration_seconds_bucket{commit="{sha}"}[5s])))'

const gates = (metrics: MetricGate[], extra: Partial<GatesConfig> = {}): GatesConfig => ({
  bakeMs: 0,
  intervalMs: 1000,
  prometheus: { url: prom.url, timeoutMs: 2000 },
  metrics,
  checks: [],
  failureLimit: 0,
  inconclusiveLimit: 3,
  errorTimeoutMs: 10_000,
  onFail: 'revert',
  ...extra,
})
const metric = (name: string, query: string, range: { min?: number; max?: number } = {}): MetricGate => ({
  name,
  query,
  min: range.min ?? null,
  max: range.max ?? null,
})
const ctx = (sha: string, hosts: string[] = []) => ({ sha, stage: 0, hosts })
const query = (q: string, c = ctx('0'.repeat(40))) => instantQuery(prom.url, substitute(q, c), { timeoutMs: 2000 })

describe.skipIf(!available)('metric gates against a real Prometheus', () => {
  test("the healthy release's error rate passes; the errors release (~20% 5xx) fails", async () => {
    const healthy = await measure(gates([metric('error_rate', ERROR_RATE, { max: 0.01 })]), ctx(fleet.origin.shas.v1), { checkTimeoutMs: 1000 })
    expect(healthy.verdict).toBe('pass')
    expect(healthy.gates[0]).toMatchObject({ name: 'error_rate', kind: 'metric', value: 0, min: null, max: 0.01, verdict: 'pass', reason: '0 <= max 0.01' })

    const bad = await measure(gates([metric('error_rate', ERROR_RATE, { max: 0.01 })]), ctx(fleet.origin.shas.errors), { checkTimeoutMs: 1000 })
    expect(bad.verdict).toBe('fail')
    expect(bad.gates[0]!.value).toBeGreaterThan(0.1)
    expect(bad.gates[0]!.value).toBeLessThan(0.3)
    expect(bad.gates[0]!.reason).toMatch(/^0\.\d+ > max 0\.01$/)
  })

  test('the slow release fails a p90 latency gate the healthy one passes', async () => {
    const p90 = [metric('p90_latency', P90_LATENCY, { max: 0.1 })]
    const healthy = await measure(gates(p90), ctx(fleet.origin.shas.v1), { checkTimeoutMs: 1000 })
    const slow = await measure(gates(p90), ctx(fleet.origin.shas.slow), { checkTimeoutMs: 1000 })
    expect(healthy.gates[0]).toMatchObject({ verdict: 'pass' })
    expect(healthy.gates[0]!.value).toBeLessThan(0.05)
    expect(slow.gates[0]).toMatchObject({ verdict: 'fail' })
    expect(slow.gates[0]!.value).toBeGreaterThan(0.1)
  })

  test('a query with no data is inconclusive and says why (a commit nobody runs)', async () => {
    const m = await measure(gates([metric('error_rate', ERROR_RATE, { max: 0.01 })]), ctx(fleet.origin.shas.v3), { checkTimeoutMs: 1000 })
    expect(m.verdict).toBe('inconclusive')
    expect(m.gates[0]).toMatchObject({ value: null, verdict: 'inconclusive', reason: 'no data (the query returned no series)' })
  })

  test('NaN (0/0) is inconclusive; +Inf is a number compared with the range', async () => {
    expect(await query('vector(0) / vector(0)')).toEqual({ kind: 'inconclusive', reason: expect.stringMatching(/NaN/) })
    const inf = await measure(gates([metric('ratio', 'vector(1) / vector(0)', { max: 1 })]), ctx('x'), { checkTimeoutMs: 1000 })
    // Judged as itself; kept as text (JSON has no infinities), so the event says +Inf, not null.
    expect(inf.gates[0]).toMatchObject({ value: null, valueText: '+Inf', verdict: 'fail', reason: '+Inf > max 1' })
    expect(JSON.parse(JSON.stringify(inf.gates[0]))).toMatchObject({ valueText: '+Inf' })
    expect(await query('scalar(vector(0.25))')).toEqual({ kind: 'value', value: 0.25, labels: {} })
  })

  test('two series are inconclusive, naming how many and their labels', async () => {
    const r = await query('up{host=~"h01|h02"}')
    expect(r.kind).toBe('inconclusive')
    const reason = (r as { reason: string }).reason
    expect(reason).toMatch(/^2 series, one number needed/)
    expect(reason).toContain('host="h01"')
    expect(reason).toContain('host="h02"')
  })

  test('{hosts}: a hostile host name matches exactly itself, never more', async () => {
    const count = async (hosts: string[]) => {
      const r = await query('count(up{host=~"{hosts}"})', ctx('x', hosts))
      return r.kind === 'value' ? r.value : r.kind
    }
    expect(await count([HOSTILE])).toBe(1)
    expect(await count([HOSTILE, 'h02'])).toBe(2)
    expect(await count(['h01', 'h02', 'h03'])).toBe(3)
    // Regex text in a name is literal: ".*" or a prefix of the hostile name matches nothing.
    expect(await count(['.*'])).toBe('inconclusive')
    expect(await count(['we"ird'])).toBe('inconclusive')
    expect(await count(['h0.'])).toBe('inconclusive')
    // No hosts at all matches nothing (not "label absent").
    expect(await count([])).toBe('inconclusive')
    // The same name in {sha} (exact string match) stays one string too.
    const exact = await query('count(up{host="{sha}"})', ctx(HOSTILE))
    expect(exact).toMatchObject({ kind: 'value', value: 1 })
  })

  test('a bad query is an error with its errorType; a range vector is an error too', async () => {
    const r = await query('sum(rate(http_requests_total[5s])')
    expect(r).toMatchObject({ kind: 'error', errorType: 'bad_data' })
    expect((r as { reason: string }).reason).toMatch(/^query failed \(bad_data\): /)
    expect(await query('http_requests_total[5s]')).toMatchObject({ kind: 'error', reason: expect.stringMatching(/range vector/) })
  })

  test('something that is not Prometheus (the app itself) is an error saying so', async () => {
    const r = await instantQuery(`http://127.0.0.1:${fleet.host('h01').metricsPort}`, 'up', { timeoutMs: 2000 })
    expect(r.kind).toBe('error')
    expect((r as { reason: string }).reason).toMatch(/answered HTTP 404 .*is prometheus\.url a Prometheus server/)
  })

  test('a server that never answers: error at the timeout', async () => {
    const sockets: net.Socket[] = []
    const silent = net.createServer((s) => sockets.push(s))
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r))
    const { port } = silent.address() as net.AddressInfo
    const t0 = Date.now()
    const r = await instantQuery(`http://127.0.0.1:${port}`, 'up', { timeoutMs: 300 })
    expect(Date.now() - t0).toBeLessThan(2000)
    expect(r).toEqual({ kind: 'error', reason: `Prometheus at http://127.0.0.1:${port} did not answer within 300 ms` })
    sockets.forEach((s) => s.destroy())
    silent.close()
  })

  test("the caller's abort is thrown, not reported as a gate error", async () => {
    const ac = new AbortController()
    const pending = instantQuery(prom.url, 'up', { timeoutMs: 2000, signal: ac.signal })
    ac.abort(new Error('interrupted'))
    await expect(pending).rejects.toThrow('interrupted')
  })

  test('metrics and checks measured together: the worst verdict counts (error > fail > inconclusive > pass)', async () => {
    const config = gates([metric('error_rate', ERROR_RATE, { max: 0.01 }), metric('nodata', 'absent(up) * 0 > 1')], {
      checks: [
        { name: 'smoke', command: 'exit 1' },
        { name: 'ok', command: 'true' },
      ],
    })
    const t0 = Date.now()
    const m = await measure(config, ctx(fleet.origin.shas.v1), { checkTimeoutMs: 2000 })
    expect(m.gates.map((g) => [g.name, g.kind, g.verdict])).toEqual([
      ['error_rate', 'metric', 'pass'],
      ['nodata', 'metric', 'inconclusive'],
      ['smoke', 'check', 'fail'],
      ['ok', 'check', 'pass'],
    ])
    expect(m.verdict).toBe('fail')
    expect(Date.now() - t0).toBeLessThan(2000)
    const withError = await measure({ ...config, checks: [...config.checks, { name: 'broken', command: 'exit 7' }] }, ctx(fleet.origin.shas.v1), {
      checkTimeoutMs: 2000,
    })
    expect(withError.verdict).toBe('error')
  })

  test('text from the server is sanitized: no escape sequences or line breaks reach the operator', async () => {
    const replies = [
      { status: 'error', errorType: 'bad\u001b[31m_data', error: 'boom\u001b]0;pwned\u0007\nsecond line\r' },
      { status: 'success', data: { resultType: 'vector', result: [{ metric: { host: 'a\u001b[2J' }, value: [0, '1'] }, { metric: { host: 'b\u202e' }, value: [0, '2'] }] } },
    ]
    let next = 0
    const server = http.createServer((_, res) => res.end(JSON.stringify(replies[next++])))
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    const url = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`
    const error = await instantQuery(url, 'up', { timeoutMs: 2000 })
    const several = await instantQuery(url, 'up', { timeoutMs: 2000 })
    server.close()
    expect(error).toEqual({ kind: 'error', errorType: 'bad_data', reason: 'query failed (bad_data): boom second line' })
    expect(several.kind).toBe('inconclusive')
    expect((several as { reason: string }).reason).not.toMatch(/[\u001b\u202e]/)
  })

  test('detection: a host restarted onto the errors release fails an error-rate gate on {hosts} within seconds', async () => {
    const h = fleet.host('h03')
    const query = 'sum(rate(http_requests_total{code=~"5..",host=~"{hosts}"}[5s])) / sum(rate(http_requests_total{host=~"{hosts}"}[5s]))'
    const config = gates([metric('error_rate', query, { max: 0.01 })])
    expect((await measure(config, ctx(fleet.origin.shas.errors, ['h03']), { checkTimeoutMs: 1000 })).verdict).toBe('pass')
    await git(h.appDir, ['checkout', '-q', '--detach', fleet.origin.shas.errors])
    const t0 = Date.now()
    await promisify(execFile)(path.join(SIM_BIN, 'systemctl'), ['restart', 'rachel8'], {
      cwd: h.dir,
      env: { ...process.env, FLEET_SIM_HOST: h.dir, FLEET_SIM_BUN: path.join(fleet.dir, 'bin', 'bun') },
    })
    let m = await measure(config, ctx(fleet.origin.shas.errors, ['h03']), { checkTimeoutMs: 1000 })
    while (m.verdict !== 'fail' && Date.now() - t0 < 15_000) {
      await new Promise((r) => setTimeout(r, 100))
      m = await measure(config, ctx(fleet.origin.shas.errors, ['h03']), { checkTimeoutMs: 1000 })
    }
    expect(m.verdict).toBe('fail')
    console.log(`errors release detected ${Date.now() - t0} ms after its restart (1 s scrapes, 5 s rate window)`)
  })

  test('Prometheus stopped: error (connection refused); restarted: measured again', async () => {
    const config = gates([metric('error_rate', ERROR_RATE, { max: 0.01 })])
    await prom.stop()
    const down = await measure(config, ctx(fleet.origin.shas.v1), { checkTimeoutMs: 1000 })
    expect(down.verdict).toBe('error')
    expect(down.gates[0]!.reason).toBe(`Prometheus at ${prom.url} unreachable: connection refused`)

    await prom.restart()
    console.log(`prometheus restarted in ${prom.startMs} ms`)
    // Same data dir: the series scraped before the stop are there; new scrapes resume within a second or two.
    await prom.waitFor('count(rate(http_requests_total{code="200"}[5s]) > 0)', (r) => r.length === 1, 15_000)
    const back = await measure(config, ctx(fleet.origin.shas.v1), { checkTimeoutMs: 1000 })
    expect(back.gates[0]).toMatchObject({ verdict: 'pass', value: 0 })
  })
})
