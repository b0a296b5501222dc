/**
 * Notifications against a real HTTP receiver on 127.0.0.1 (node:http): bodies, `on` filtering,
 * retries with one idempotency key, timeouts, no retry on 4xx.
 */
import http from 'node:http'
import type { AddressInfo } from 'node:net'

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'

import { displayUrl, idempotencyKey, notificationFailed, notify, summary, type FleetEventLike, type NotifyTarget } from '../src/notify/index.js'

interface Received {
  readonly path: string
  readonly headers: http.IncomingHttpHeaders
  readonly body: unknown
  /** The status the receiver answered with; null: it never answered. */
  answered: number | null
}

/** Records every request; answers `failFirst` requests with `failStatus`, or never answers when `hang`. */
class Receiver {
  received: Received[] = []
  failFirst = 0
  failStatus = 500
  hang = false
  private server = http.createServer((req, res) => {
    let text = ''
    req.on('data', (chunk: Buffer) => (text += chunk.toString()))
    req.on('end', () => {
      const entry: Received = { path: req.url ?? '', headers: req.headers, body: JSON.parse(text), answered: null }
      this.received.push(entry)
      if (this.hang) return
      entry.answered = this.failFirst > 0 ? this.failStatus : 200
      if (this.failFirst > 0) {
        this.failFirst--
        res.writeHead(this.failStatus).end('receiver says no')
        return
      }
      res.writeHead(200).end('ok')
    })
  })
  url = ''
  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve))
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`
  }
  reset(): void {
    this.received = []
    this.failFirst = 0
    this.failStatus = 500
    this.hang = false
  }
  async stop(): Promise<void> {
    this.server.closeAllConnections()
    await new Promise((resolve) => this.server.close(resolve))
  }
}

const receiver = new Receiver()
beforeAll(() => receiver.start())
afterAll(() => receiver.stop())
afterEach(() => receiver.reset())

const FAST = { rolloutId: 'r-1', backoffMs: 10, timeoutMs: 2000 }
const t = (minutes: number): string => new Date(Date.parse('2026-11-30T12:00:00.000Z') + minutes * 60_000).toISOString()

const started: FleetEventLike = {
  type: 'rollout-started',
  rolloutId: 'r-1',
  ref: 'main',
  sha: 'a1b2c3d4e5f60718293a4b5c6d7e8f9012345678',
  stages: [10, 50, 100],
  stageSizes: [1, 4, 5],
  hosts: 10,
  concurrency: 5,
  failureThreshold: 0.3,
  seed: 'x',
  at: '2026-11-30T12:00:00.000Z',
}
const hostFinished = (status: string, host = 'web-1'): FleetEventLike => ({
  type: 'host-finished',
  rolloutId: 'r-1',
  stage: 0,
  host,
  status,
  previousVersion: 'aaaaaaa1',
  newVersion: status === 'success' ? 'a1b2c3d4' : null,
  failedStep: status === 'success' ? null : 'restart',
  error: status === 'success' ? null : 'unit failed\n\u001b[31mred\u001b[0m',
  durationMs: 1200,
  at: '2026-11-30T12:00:05.000Z',
})

describe('notify', () => {
  it('a held host: its own line, and `held` among the counts (after skipped)', () => {
    expect(summary({ ...hostFinished('held', 'web-2'), failedStep: null, error: 'held since the rollout began: never touched' })).toBe('web-2 held, never touched')
    expect(summary({ type: 'stage-finished', rolloutId: 'r-1', stage: 1, percent: 100, counts: { held: 1, pending: 0, success: 3, skipped: 1 }, failureRate: 0, halted: false, at: '2026-11-30T12:00:05.000Z' })).toMatch(
      /: success 3, skipped 1, held 1; failure rate 0%$/,
    )
  })

  it('json: the event as streamed, plus summary and rolloutId, with an Idempotency-Key', async () => {
    const results = await notify([{ url: `${receiver.url}/hook`, format: 'json' }], started, FAST)
    expect(results).toEqual([expect.objectContaining({ index: 0, ok: true, status: 200, attempts: 1, error: null })])
    expect(receiver.received).toHaveLength(1)
    const got = receiver.received[0]!
    expect(got.path).toBe('/hook')
    expect(got.headers['content-type']).toBe('application/json')
    expect(got.headers['idempotency-key']).toMatch(/^r-1:rollout-started:[0-9a-f]{16}$/)
    expect(got.headers['idempotency-key']).toBe(results[0]!.idempotencyKey)
    expect(got.body).toEqual({ ...started, rolloutId: 'r-1', summary: summary(started) })
    expect(summary(started)).toBe('rollout started: main → a1b2c3d on 10 hosts, stages 10% (1) → 50% (4) → 100% (5)')
  })

  it('slack: an incoming-webhook body with one escaped line; host text cannot mention or link', async () => {
    const event = { ...hostFinished('rollback_failed', '<!channel> & web'), error: 'boom <http://evil|click>' }
    await notify([{ url: receiver.url, format: 'slack' }], event, FAST)
    expect(receiver.received).toHaveLength(1)
    const body = receiver.received[0]!.body as { text: string }
    expect(Object.keys(body)).toEqual(['text'])
    expect(body.text).toBe(
      'fleet rollout r-1: &lt;!channel&gt; &amp; web ROLLBACK FAILED (the host may be down) at restart: boom &lt;http://evil|click&gt; in 1.2s',
    )
  })

  it('on: omitted means rollout-level events and failed rollbacks only; a list is exact', async () => {
    const targets: NotifyTarget[] = [
      { url: `${receiver.url}/default`, format: 'json' },
      { url: `${receiver.url}/hosts`, format: 'json', on: ['host-finished'] },
    ]
    expect(await notify(targets, hostFinished('success'), FAST)).toHaveLength(1)
    expect(await notify(targets, hostFinished('rollback_failed'), FAST)).toHaveLength(2)
    expect(await notify(targets, started, FAST)).toHaveLength(1)
    expect(await notify(targets, { type: 'stage-started', stage: 0, percent: 10, hosts: ['a'], at: 'x' }, FAST)).toEqual([])
    const seen = receiver.received.map((r) => `${r.path} ${(r.body as { type: string }).type}`).sort()
    expect(seen).toEqual(['/default host-finished', '/default rollout-started', '/hosts host-finished', '/hosts host-finished'])
    // The default target got the rollback_failed host, never the successful one.
    const defaults = receiver.received.filter((r) => r.path === '/default').map((r) => (r.body as { status?: string }).status ?? null)
    expect(defaults.sort()).toEqual(['rollback_failed', null].sort())
  })

  it('retries a 500 with backoff and the same key; exactly one body is accepted', async () => {
    receiver.failFirst = 2
    const [result] = await notify([{ url: receiver.url, format: 'json' }], started, FAST)
    expect(result).toMatchObject({ ok: true, status: 200, attempts: 3 })
    expect(receiver.received).toHaveLength(3)
    const keys = new Set(receiver.received.map((r) => r.headers['idempotency-key']))
    expect(keys.size).toBe(1)
    expect(receiver.received.map((r) => r.answered)).toEqual([500, 500, 200])
    // Every attempt carried the same body: the receiver de-duplicating on the key keeps exactly one.
    expect(new Set(receiver.received.map((r) => JSON.stringify(r.body))).size).toBe(1)
  })

  it('gives up after the retries and returns a failure (never throws)', async () => {
    receiver.failFirst = 10
    const [result] = await notify([{ url: receiver.url, format: 'json' }], started, { ...FAST, retries: 2 })
    expect(result).toMatchObject({ ok: false, status: 500, attempts: 3, error: 'HTTP 500: receiver says no' })
    expect(receiver.received).toHaveLength(3)
  })

  it('a 4xx is not retried', async () => {
    receiver.failFirst = 10
    receiver.failStatus = 404
    const [result] = await notify([{ url: receiver.url, format: 'json' }], started, FAST)
    expect(result).toMatchObject({ ok: false, status: 404, attempts: 1 })
    expect(receiver.received).toHaveLength(1)
  })

  it('a receiver that hangs times out, per attempt', async () => {
    receiver.hang = true
    const t0 = Date.now()
    const [result] = await notify([{ url: receiver.url, format: 'json' }], started, { ...FAST, timeoutMs: 300, retries: 1 })
    expect(result).toMatchObject({ ok: false, status: null, attempts: 2, error: 'timed out after 300 ms' })
    expect(Date.now() - t0).toBeLessThan(2000)
    expect(receiver.received).toHaveLength(2)
  })

  it('a refused connection is a failure result that shows no credentials', async () => {
    const closed = new Receiver()
    await closed.start()
    const url = closed.url.replace('http://', 'http://alice:s3cret@') + '/services/T0/B0/token'
    await closed.stop()
    const [result] = await notify([{ url, format: 'slack' }], started, { ...FAST, retries: 1 })
    expect(result).toMatchObject({ ok: false, status: null, attempts: 2, error: 'ECONNREFUSED' })
    expect(result!.url).toBe(displayUrl(url))
    const failed = notificationFailed(result!, started, 'r-1', new Date('2026-11-30T12:01:00Z'))
    expect(JSON.stringify(failed)).not.toMatch(/s3cret|alice|token/)
    expect(summary(failed)).toMatch(/^notification of rollout-started to http:\/\/127\.0\.0\.1:\d+\/… failed after 2 attempts: ECONNREFUSED$/)
  })

  it('a URL that does not parse is a failure result too', async () => {
    const [result] = await notify([{ url: 'not a url', format: 'json' }], started, { ...FAST, retries: 0 })
    expect(result).toMatchObject({ ok: false, attempts: 1, error: 'invalid URL', url: '(invalid URL)' })
  })

  it('idempotency keys: one per event (its row id once stored), different whenever the events differ', () => {
    // Stored events: keyed by their row, so a pause's rollout-finished and the real end never share one.
    const paused = { type: 'rollout-finished', state: 'paused', at: t(1) }
    const completed = { type: 'rollout-finished', state: 'completed', at: t(3) }
    expect(idempotencyKey(paused, 'r-1', '41')).toBe('r-1:rollout-finished:41')
    expect(idempotencyKey(completed, 'r-1', '57')).not.toBe(idempotencyKey(paused, 'r-1', '41'))
    // Not stored: by content; the same event keeps its key, any difference changes it.
    expect(idempotencyKey(paused, 'r-1')).toBe(idempotencyKey({ ...paused }, 'r-1'))
    expect(idempotencyKey(paused, 'r-1')).not.toBe(idempotencyKey(completed, 'r-1'))
    const pause = { type: 'rollout-paused', stage: 1, actor: 'a@b', reason: 'x', at: t(1) }
    expect(idempotencyKey(pause, 'r-1')).not.toBe(idempotencyKey({ ...pause, at: t(2) }, 'r-1'))
    // Nothing from the event's text (a host name, a type) reaches the header as such.
    const key = idempotencyKey(hostFinished('rollback_failed', 'naïve host\r\nX-Evil: 1'), 'r-1')
    expect(key).toMatch(/^r-1:host-finished:[0-9a-f]{16}$/)
    expect(idempotencyKey({ type: 'x\r\nEvil: 1' }, 'r-1', '7\r\n')).toBe('r-1:xvil:7')
  })

  it('sends basic auth from the URL without printing it', async () => {
    const url = receiver.url.replace('http://', 'http://alice:s3cret@')
    const [result] = await notify([{ url, format: 'json' }], started, FAST)
    expect(result!.ok).toBe(true)
    expect(receiver.received[0]!.headers.authorization).toBe(`Basic ${Buffer.from('alice:s3cret').toString('base64')}`)
    expect(result!.url).not.toContain('s3cret')
  })
})
