/**
 * `otel.endpoint`: real rollouts of the built CLI on the simulated fleet (sshd, git) export one
 * trace per rollout over OTLP/HTTP to a receiver on 127.0.0.1 that decodes the JSON export: root,
 * stage, host and step spans, gate measurements and decisions as span events, the trace id in the
 * audit trail and in the notifications. An unreachable endpoint changes nothing but a warning.
 */
import http from 'node:http'
import net from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { runFleet } from './support/cli.js'
import { pgliteDirWithHosts, runCleanups, workdir } from './support/fault-kit.js'
import { fleetConfigOverrides } from './support/harness.js'
import { startTestFleet, type TestFleet } from './support/test-fleet.js'
import { traceIdOf, tracesUrl } from '../src/report/trace.js'

interface Span {
  traceId: string
  spanId: string
  parentSpanId?: string
  name: string
  startTimeUnixNano: string
  endTimeUnixNano: string
  attributes: { key: string; value: Record<string, unknown> }[]
  events?: { name: string; attributes: { key: string; value: Record<string, unknown> }[] }[]
  status?: { code?: number; message?: string }
}

let fleet: TestFleet
let receiver: http.Server
let base = ''
const spans: Span[] = []
const notified: Record<string, unknown>[] = []
const paths: string[] = []

async function startReceiver(): Promise<void> {
  receiver = http.createServer((req, res) => {
    let text = ''
    req.on('data', (d: Buffer) => (text += d.toString()))
    req.on('end', () => {
      paths.push(req.url ?? '')
      if (req.url === '/v1/traces') {
        expect(req.headers['content-type']).toMatch(/application\/json/)
        const body = JSON.parse(text) as { resourceSpans: { resource: { attributes: Span['attributes'] }; scopeSpans: { spans: Span[] }[] }[] }
        for (const rs of body.resourceSpans) {
          expect(rs.resource.attributes.find((a) => a.key === 'service.name')?.value).toEqual({ stringValue: 'fleet' })
          for (const ss of rs.scopeSpans) spans.push(...ss.spans)
        }
        res.writeHead(200, { 'Content-Type': 'application/json' }).end('{}')
      } else {
        notified.push(JSON.parse(text) as Record<string, unknown>)
        res.writeHead(204).end()
      }
    })
  })
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve))
  base = `http://127.0.0.1:${(receiver.address() as net.AddressInfo).port}`
}

const attr = (span: Span | { attributes: Span['attributes'] }, key: string): unknown => {
  const v = span.attributes.find((a) => a.key === key)?.value
  return v && (v.stringValue ?? (v.intValue !== undefined ? Number(v.intValue) : undefined) ?? v.doubleValue ?? v.boolValue)
}

async function config(otel: string, notify = false): Promise<string> {
  const dir = await pgliteDirWithHosts(fleet)
  return workdir({
    ...fleetConfigOverrides(fleet, { rollout: { stages: [50, 100], concurrency: 5 } }),
    gates: { bake: '2s', interval: '1s', checks: [{ name: 'smoke', command: 'true' }] },
    database: { dir },
    otel: { endpoint: otel },
    ...(notify ? { notify: [{ url: `${base}/notify`, format: 'json', on: ['rollout-started', 'rollout-finished'] }] } : {}),
  })
}

beforeAll(async () => {
  ;[fleet] = await Promise.all([startTestFleet({ hosts: 4 }), startReceiver()])
}, 60_000)

afterAll(async () => {
  await new Promise((resolve) => receiver?.close(resolve))
  await runCleanups()
  await fleet?.stop()
})

describe('traces over OTLP/HTTP (built CLI, sim fleet)', () => {
  it('the endpoint is the collector base; /v1/traces is appended once', () => {
    expect(tracesUrl('http://c:4318')).toBe('http://c:4318/v1/traces')
    expect(tracesUrl('http://c:4318/')).toBe('http://c:4318/v1/traces')
    expect(tracesUrl('http://c:4318/v1/traces')).toBe('http://c:4318/v1/traces')
  })

  it('a rollout is one trace: root → stages → hosts → steps, bakes with gate events; the trace id in the audit trail and the notifications', async () => {
    const cwd = await config(base, true)
    const run = await runFleet(['rollout', 'start', '--json'], { cwd, timeoutMs: 60_000 })
    expect(run.code, run.stderr).toBe(0)
    expect(run.stderr).not.toMatch(/warning/)
    const rolloutId = (JSON.parse(run.stdout.split('\n')[0]!) as { rolloutId: string }).rolloutId
    const traceId = traceIdOf(rolloutId)
    expect(new Set(spans.map((s) => s.traceId))).toEqual(new Set([traceId]))
    expect(new Set(spans.map((s) => s.spanId)).size).toBe(spans.length)

    const roots = spans.filter((s) => !s.parentSpanId)
    expect(roots.map((s) => s.name)).toEqual([`rollout ${rolloutId}`])
    const root = roots[0]!
    expect(attr(root, 'fleet.state')).toBe('completed')
    expect(root.status?.code ?? 0).not.toBe(2)
    const children = (parent: Span) => spans.filter((s) => s.parentSpanId === parent.spanId)
    const stages = children(root).filter((s) => s.name.startsWith('stage '))
    const bakes = children(root).filter((s) => s.name.startsWith('bake '))
    expect(stages.map((s) => s.name).sort()).toEqual(['stage 0', 'stage 1'])
    expect(bakes.map((s) => s.name).sort()).toEqual(['bake stage 0', 'bake stage 1'])
    const hosts = stages.flatMap(children)
    expect(hosts.map((s) => attr(s, 'fleet.host')).sort()).toEqual(fleet.hosts.map((h) => h.name).sort())
    for (const host of hosts) {
      expect(attr(host, 'fleet.status')).toBe('success')
      const steps = children(host).map((s) => s.name)
      expect(steps).toEqual(expect.arrayContaining(['fetch', 'checkout', 'install', 'restart', 'verify']))
      // A child lies within its parent.
      for (const step of children(host)) {
        expect(BigInt(step.startTimeUnixNano)).toBeGreaterThanOrEqual(BigInt(host.startTimeUnixNano))
        expect(BigInt(step.endTimeUnixNano)).toBeLessThanOrEqual(BigInt(host.endTimeUnixNano))
      }
    }
    for (const bake of bakes) {
      const measured = (bake.events ?? []).filter((e) => e.name === 'gate-measured')
      expect(measured.length).toBeGreaterThanOrEqual(2)
      expect(attr(measured[0]!, 'fleet.gate.smoke.verdict')).toBe('pass')
      expect(attr(measured[0]!, 'fleet.gate.smoke.value')).toBe(0)
      expect((bake.events ?? []).map((e) => e.name)).toContain('gates-passed')
    }
    expect((root.events ?? []).filter((e) => e.name === 'gates-passed')).toHaveLength(2)

    const trail = await runFleet(['rollout', 'events', '--json'], { cwd })
    const recorded = trail.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>).find((e) => e.type === 'trace-started')
    expect(recorded).toMatchObject({ traceId, rolloutId, endpoint: base })
    expect((await runFleet(['rollout', 'events'], { cwd })).stdout).toContain(`traced: trace id ${traceId}`)
    expect(notified.map((n) => [n.type, n.traceId])).toEqual([
      ['rollout-started', traceId],
      ['rollout-finished', traceId],
    ])
  }, 90_000)

  it('an unreachable endpoint changes nothing: same outcome, one warning, no wait', async () => {
    const closed = await new Promise<number>((resolve) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        const port = (s.address() as net.AddressInfo).port
        s.close(() => resolve(port))
      })
    })
    const cwd = await config(`http://127.0.0.1:${closed}`)
    const started = Date.now()
    const run = await runFleet(['rollout', 'start', '--json'], { cwd, timeoutMs: 60_000 })
    const wall = Date.now() - started
    expect(run.code, run.stderr).toBe(0)
    const events = run.stdout.trim().split('\n').map((l) => JSON.parse(l) as { type: string })
    expect(events.at(-1)).toMatchObject({ type: 'rollout-finished', state: 'completed', exitCode: 0 })
    expect(run.stderr.match(/warning: traces: export to http:\/\/127\.0\.0\.1:\d+\/… failed/g)).toHaveLength(1)
    for (const h of fleet.hosts) expect(await fleet.head(h.name)).toBe(fleet.origin.shas.v2)
    // Two bakes of 2 s and four hosts: no export timeout piled up per span or per batch (a loaded CI machine is slow, not this slow).
    expect(wall).toBeLessThan(40_000)
  }, 60_000)
})
