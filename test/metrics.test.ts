/**
 * Metrics: pushed to a real Pushgateway (started here on 127.0.0.1) and read back from its /metrics;
 * the textfile written atomically while a reader polls it.
 */
import { mkdtemp, readFile, readdir, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { publish, renderMetrics, snapshotFromEvents, writeFileAtomic, type MetricsSnapshot } from '../src/metrics/index.js'
import { pushgatewaySkipReason, startPushgateway, type TestPushgateway } from './support/pushgateway.js'

const snapshot: MetricsSnapshot = {
  rolloutId: 'r-42',
  state: 'baking',
  percent: 50,
  hosts: { success: 4, rolled_back: 1, pending: 5 },
  gates: [
    { name: 'error_rate', value: 0.0025, verdict: 'pass' },
    { name: 'smoke', value: null, verdict: 'error' },
  ],
  decisions: 7,
  rollbacks: 1,
  lastRunAt: new Date('2026-11-30T12:10:00Z'),
  lastSuccessAt: new Date('2026-11-30T12:00:00Z'),
}

/** `name{labels} value` lines of one metric family, labels as written by the exposition. */
const series = (text: string, name: string): Map<string, number> =>
  new Map(
    text
      .split('\n')
      .filter((line) => line.startsWith(`${name}{`) || line.startsWith(`${name} `))
      .map((line) => {
        const at = line.lastIndexOf(' ')
        return [line.slice(0, at), Number(line.slice(at + 1))] as const
      }),
  )

describe('metrics text', () => {
  it('holds exactly the snapshot', async () => {
    const text = await renderMetrics(snapshot)
    expect(series(text, 'fleet_rollout_state').get('fleet_rollout_state{state="baking"}')).toBe(1)
    expect([...series(text, 'fleet_rollout_state').values()].reduce((a, b) => a + b)).toBe(1)
    expect(series(text, 'fleet_rollout_state').size).toBe(8)
    expect(text).toContain('fleet_rollout_info{rollout_id="r-42"} 1')
    expect(text).toContain('fleet_rollout_percent 50')
    expect(text).toContain('fleet_hosts{status="success"} 4')
    expect(text).toContain('fleet_hosts{status="updating"} 0')
    expect(text).toContain('fleet_gate_value{gate="error_rate"} 0.0025')
    expect(text).not.toContain('fleet_gate_value{gate="smoke"}')
    expect(text).toContain('fleet_gate_verdict{gate="smoke",verdict="error"} 1')
    expect(text).toContain('fleet_gate_verdict{gate="smoke",verdict="pass"} 0')
    expect(text).toContain('fleet_decisions_total 7')
    expect(text).toContain('fleet_rollbacks_total 1')
    expect(text).toContain('fleet_last_run_timestamp_seconds 1796040600')
    expect(text).toContain('fleet_last_success_timestamp_seconds 1796040000')
    // No process or default metrics of prom-client's global registry.
    expect(text).not.toMatch(/^process_|^nodejs_/m)
  })

  it('escapes odd gate names and shows no rollout as all-zero state', async () => {
    const text = await renderMetrics({ ...snapshot, rolloutId: null, state: null, gates: [{ name: 'a"b\\c\nd', value: 1, verdict: 'fail' }], lastSuccessAt: null })
    expect(text).toContain('fleet_gate_value{gate="a\\"b\\\\c\\nd"} 1')
    expect([...series(text, 'fleet_rollout_state').values()].every((v) => v === 0)).toBe(true)
    expect(text).not.toContain('fleet_rollout_info')
    expect(text).toContain('fleet_last_success_timestamp_seconds 0')
  })
})

describe('snapshotFromEvents', () => {
  it('percent from the last stage started, gates from the last measurement, decisions and rollbacks counted', () => {
    const ev = (type: string, data: Record<string, unknown>) => ({ at: new Date(0), type, host: null, data: { type, ...data } })
    const events = [
      ev('rollout-started', {}),
      ev('stage-started', { stage: 0, percent: 10 }),
      ev('host-step', { host: 'a' }),
      ev('host-finished', { host: 'a', status: 'success' }),
      ev('stage-finished', { stage: 0 }),
      ev('gate-measured', { stage: 0, gates: [{ name: 'error_rate', value: 0.5, verdict: 'fail' }] }),
      ev('gate-measured', { stage: 0, gates: [{ name: 'error_rate', value: 0.001, verdict: 'pass' }, { name: 'smoke', value: null, verdict: 'weird' }, { name: 'e2e', kind: 'check', value: 1, verdict: 'fail' }] }),
      ev('gates-passed', { stage: 0 }),
      ev('stage-started', { stage: 1, percent: 50 }),
      ev('host-finished', { host: 'b', status: 'rolled_back' }),
      ev('host-finished', { host: 'c', status: 'rollback_failed' }),
      ev('rollout-paused', { actor: 'alice@x' }),
    ]
    const at = new Date('2026-11-30T12:00:00Z')
    const base = { rollout: { id: 'r-1', state: 'paused' }, hosts: { success: 1 }, events, lastRunAt: at, lastSuccessAt: null }
    expect(snapshotFromEvents(base)).toEqual({
      rolloutId: 'r-1', state: 'paused', percent: 50, hosts: { success: 1 }, gates: [], decisions: 8, rollbacks: 2, lastRunAt: at, lastSuccessAt: null,
    })
    expect(snapshotFromEvents({ ...base, events: events.slice(0, 8) }).gates).toEqual([
      { name: 'error_rate', value: 0.001, verdict: 'pass' },
      { name: 'smoke', value: null, verdict: null },
      { name: 'e2e', value: null, verdict: 'fail' },
    ])
    expect(snapshotFromEvents({ ...base, rollout: null, events: [] })).toMatchObject({ rolloutId: null, state: null, percent: 0, decisions: 0 })
  })
})

describe.skipIf(pushgatewaySkipReason() !== null && !process.env.CI)('a real Pushgateway', () => {
  let gw: TestPushgateway
  beforeAll(async () => {
    gw = (await startPushgateway())!
  })
  afterAll(() => gw?.stop())

  it('serves the pushed fleet_* series with the job label, and a second push replaces the first', async () => {
    const first = await publish(snapshot, { pushgateway: gw.url, job: 'fleet-test' })
    expect(first).toEqual({ pushgateway: { ok: true, error: null, url: gw.url } })
    let text = await gw.metrics()
    expect(series(text, 'fleet_rollout_state').get('fleet_rollout_state{instance="",job="fleet-test",state="baking"}')).toBe(1)
    expect(series(text, 'fleet_rollout_percent').get('fleet_rollout_percent{instance="",job="fleet-test"}')).toBe(50)
    expect(series(text, 'fleet_hosts').get('fleet_hosts{instance="",job="fleet-test",status="rolled_back"}')).toBe(1)
    expect(series(text, 'fleet_gate_value').get('fleet_gate_value{gate="error_rate",instance="",job="fleet-test"}')).toBe(0.0025)
    expect(series(text, 'fleet_gate_verdict').get('fleet_gate_verdict{gate="smoke",instance="",job="fleet-test",verdict="error"}')).toBe(1)
    expect(series(text, 'fleet_decisions_total').get('fleet_decisions_total{instance="",job="fleet-test"}')).toBe(7)
    expect(series(text, 'fleet_last_success_timestamp_seconds').get('fleet_last_success_timestamp_seconds{instance="",job="fleet-test"}')).toBe(1796040000)

    // The next run: another rollout, completed. PUT replaces the group, so r-42's info series is gone.
    await publish({ ...snapshot, rolloutId: 'r-43', state: 'completed', percent: 100, gates: [], decisions: 3 }, { pushgateway: gw.url, job: 'fleet-test' })
    text = await gw.metrics()
    expect(text).toContain('fleet_rollout_info{instance="",job="fleet-test",rollout_id="r-43"} 1')
    expect(text).not.toContain('rollout_id="r-42"')
    expect(series(text, 'fleet_rollout_state').get('fleet_rollout_state{instance="",job="fleet-test",state="completed"}')).toBe(1)
    expect(series(text, 'fleet_rollout_state').get('fleet_rollout_state{instance="",job="fleet-test",state="baking"}')).toBe(0)
    expect(text).not.toContain('fleet_gate_value')
  })

  it('a push that cannot reach the gateway, or is refused, is a returned failure', async () => {
    const closed = await publish(snapshot, { pushgateway: 'http://user:pw@127.0.0.1:9/', timeoutMs: 1000 })
    expect(closed.pushgateway).toMatchObject({ ok: false, url: 'http://127.0.0.1:9' })
    expect(closed.pushgateway!.error).toMatch(/ECONNREFUSED/)
    expect(JSON.stringify(closed)).not.toContain('pw')
    // Another job holds fleet_rollout_percent as a counter: the gateway refuses the inconsistent push (400).
    await fetch(`${gw.url}/metrics/job/fleet-test`, { method: 'DELETE' })
    const other = await fetch(`${gw.url}/metrics/job/other`, { method: 'PUT', body: '# TYPE fleet_rollout_percent counter\nfleet_rollout_percent 1\n' })
    expect(other.status).toBe(200)
    try {
      const refused = await publish(snapshot, { pushgateway: gw.url, job: 'fleet-test' })
      expect(refused.pushgateway).toMatchObject({ ok: false })
      expect(refused.pushgateway!.error).toMatch(/^HTTP 400: pushed metrics are invalid/)
    } finally {
      await fetch(`${gw.url}/metrics/job/other`, { method: 'DELETE' })
    }
  })
})

describe('textfile', () => {
  let dir: string
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fleet-metrics-'))
  })
  afterAll(() => rm(dir, { recursive: true, force: true }))

  it('is written with mode 0644 and no temp file left behind', async () => {
    const path = join(dir, 'fleet.prom')
    const result = await publish(snapshot, { textfile: path })
    expect(result).toEqual({ textfile: { ok: true, error: null, path } })
    expect(await readFile(path, 'utf8')).toBe(await renderMetrics(snapshot))
    expect((await stat(path)).mode & 0o777).toBe(0o644)
    expect(await readdir(dir)).toEqual(['fleet.prom'])
  })

  it('a reader polling it during many writes never sees a partial file', async () => {
    const path = join(dir, 'poll.prom')
    // Big enough that a non-atomic write would be seen half-done: many gates.
    const big = (i: number): MetricsSnapshot => ({
      ...snapshot,
      decisions: i,
      gates: Array.from({ length: 400 }, (_, g) => ({ name: `gate_${g}`, value: i + g, verdict: 'pass' as const })),
    })
    const texts = await Promise.all(Array.from({ length: 3 }, (_, i) => renderMetrics(big(i))))
    await writeFileAtomic(path, texts[0]!)
    let writing = true
    let reads = 0
    const bad: string[] = []
    const reader = (async () => {
      while (writing) {
        const text = await readFile(path, 'utf8')
        reads++
        if (!texts.includes(text)) bad.push(`${text.length} bytes`)
        await new Promise((r) => setImmediate(r))
      }
    })()
    for (let i = 0; i < 150; i++) await writeFileAtomic(path, texts[i % 3]!)
    writing = false
    await reader
    expect(bad).toEqual([])
    expect(reads).toBeGreaterThan(20)
    expect((await readdir(dir)).filter((f) => f.startsWith('.'))).toEqual([])
  })

  it('a directory that does not exist is a returned failure', async () => {
    const result = await publish(snapshot, { textfile: join(dir, 'missing', 'fleet.prom') })
    expect(result.textfile).toMatchObject({ ok: false })
    expect(result.textfile!.error).toMatch(/ENOENT/)
  })
})
