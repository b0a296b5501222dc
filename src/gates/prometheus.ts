/**
 * One instant query against Prometheus' HTTP API (`POST /api/v1/query`, so a long {hosts} regex
 * never hits a URL length limit). The answer is one number, or inconclusive (no data, NaN, more
 * than one series), or an error (unreachable, timeout, HTTP status, `status: "error"`, not JSON).
 * Every text from the server is sanitized: it reaches the operator's terminal and the store.
 */
import { sanitizeLine } from '../text/sanitize.js'

export type QueryResult =
  | { readonly kind: 'value'; readonly value: number; readonly labels: Readonly<Record<string, string>> }
  | { readonly kind: 'inconclusive'; readonly reason: string }
  | { readonly kind: 'error'; readonly reason: string; readonly errorType?: string }

export interface QueryOptions {
  readonly timeoutMs: number
  /** The caller's abort (Ctrl-C): the query is cancelled and the abort reason thrown. */
  readonly signal?: AbortSignal
  /** Evaluation time (ms since the epoch); default: Prometheus' now. */
  readonly time?: number
}

const MAX_TEXT = 300
const clip = (text: string): string => {
  const line = sanitizeLine(text).trim()
  return line.length > MAX_TEXT ? `${line.slice(0, MAX_TEXT - 3)}...` : line
}

/** The URL without user info, for messages. */
const shown = (url: URL): string => `${url.protocol}//${url.host}${url.pathname.replace(/\/$/, '')}`

/** Prometheus' float text: Go's FormatFloat, plus its spellings of the infinities. */
export function parseSampleValue(text: unknown): number | null {
  if (typeof text !== 'string') return null
  if (text === '+Inf' || text === 'Inf') return Number.POSITIVE_INFINITY
  if (text === '-Inf') return Number.NEGATIVE_INFINITY
  if (text === 'NaN') return Number.NaN
  // Plain decimal only: Number() would also take " 0 ", "0x0" or "", which no Prometheus sends.
  return /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text) ? Number(text) : null
}

const describeLabels = (labels: Record<string, string>): string =>
  `{${Object.entries(labels)
    .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
    .join(', ')}}`

/** Why fetch() failed, in the operator's words (Node puts the system error in `cause`). */
function networkReason(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause
  const code = cause?.code ?? ''
  const words: Record<string, string> = {
    ECONNREFUSED: 'connection refused',
    ECONNRESET: 'connection reset',
    ENOTFOUND: 'host not found',
    EAI_AGAIN: 'host name lookup failed',
    EHOSTUNREACH: 'host unreachable',
    ENETUNREACH: 'network unreachable',
    UND_ERR_SOCKET: 'connection closed by the server',
  }
  return words[code] ?? clip(cause?.message ?? (err instanceof Error ? err.message : String(err)))
}

export async function instantQuery(baseUrl: string, query: string, options: QueryOptions): Promise<QueryResult> {
  let url: URL
  try {
    url = new URL('api/v1/query', baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`)
  } catch {
    return { kind: 'error', reason: 'prometheus.url is not a URL' }
  }
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' }
  const where = shown(new URL(baseUrl))
  // fetch() refuses URLs with credentials: they become basic auth.
  if (url.username || url.password) {
    const user = decodeURIComponent(url.username)
    const pass = decodeURIComponent(url.password)
    headers.authorization = `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`
    url.username = ''
    url.password = ''
  }
  const body = new URLSearchParams({ query })
  if (options.time !== undefined) body.set('time', (options.time / 1000).toFixed(3))
  // Prometheus stops evaluating at its own timeout too, and says so (errorType "timeout").
  body.set('timeout', `${Math.max(1, Math.floor(options.timeoutMs / 1000))}s`)

  const timeout = AbortSignal.timeout(options.timeoutMs)
  const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout
  let status: number
  let statusText: string
  let text: string
  try {
    const res = await fetch(url, { method: 'POST', headers, body, signal, redirect: 'error' })
    status = res.status
    statusText = res.statusText
    const read = await readCapped(res, MAX_ANSWER_BYTES)
    if (read === null) return { kind: 'error', reason: `Prometheus at ${where} answered more than ${MAX_ANSWER_BYTES >> 20} MB; a gate query must return one number (aggregate it, e.g. sum or max)` }
    text = read
  } catch (err) {
    if (options.signal?.aborted) throw options.signal.reason
    if (timeout.aborted) return { kind: 'error', reason: `Prometheus at ${where} did not answer within ${options.timeoutMs} ms` }
    return { kind: 'error', reason: `Prometheus at ${where} unreachable: ${networkReason(err)}` }
  }

  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    const what = status >= 200 && status < 300 ? 'answered with something that is not JSON' : `answered HTTP ${status} ${clip(statusText)}`
    const snippet = clip(text).slice(0, 80)
    return { kind: 'error', reason: `Prometheus at ${where} ${what}${snippet ? `: ${snippet}` : ''} (is prometheus.url a Prometheus server?)` }
  }
  const reply = json as { status?: unknown; errorType?: unknown; error?: unknown; data?: { resultType?: unknown; result?: unknown } }
  if (reply?.status === 'error' || typeof reply?.error === 'string') {
    const errorType = typeof reply.errorType === 'string' ? clip(reply.errorType) : 'unknown'
    return { kind: 'error', errorType, reason: `query failed (${errorType}): ${clip(String(reply.error ?? 'no message'))}` }
  }
  if (status < 200 || status >= 300) return { kind: 'error', reason: `Prometheus at ${where} answered HTTP ${status} ${clip(statusText)}` }
  if (reply?.status !== 'success' || typeof reply.data !== 'object' || reply.data === null) {
    return { kind: 'error', reason: `Prometheus at ${where} sent an unexpected reply (no "status": "success" with "data")` }
  }
  return classify(reply.data.resultType, reply.data.result)
}

/** A gate asks for one number: an answer this large is a query that returns series per host, or not Prometheus. */
const MAX_ANSWER_BYTES = 16 << 20

/** The body as text, or null past `max` bytes (the rest is never read: the stream is cancelled). */
async function readCapped(res: Response, max: number): Promise<string | null> {
  if (!res.body) return ''
  const reader = res.body.getReader()
  const chunks: Uint8Array[] = []
  let size = 0
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    size += value.byteLength
    if (size > max) {
      await reader.cancel().catch(() => {})
      return null
    }
    chunks.push(value)
  }
  return Buffer.concat(chunks).toString('utf8')
}

function classify(resultType: unknown, result: unknown): QueryResult {
  if (resultType === 'scalar') return fromSample(Array.isArray(result) ? result[1] : undefined, {})
  if (resultType === 'vector' && Array.isArray(result)) {
    if (result.length === 0) return { kind: 'inconclusive', reason: 'no data (the query returned no series)' }
    const series = result as { metric?: Record<string, string>; value?: unknown[] }[]
    if (series.length > 1) {
      const shownSeries = series.slice(0, 3).map((s) => clip(describeLabels(s.metric ?? {})))
      return {
        kind: 'inconclusive',
        reason: `${series.length} series, one number needed (aggregate, e.g. sum(...)): ${shownSeries.join(', ')}${series.length > 3 ? ', ...' : ''}`,
      }
    }
    const [only] = series
    return fromSample(only?.value?.[1], only?.metric ?? {})
  }
  if (resultType === 'matrix') {
    return { kind: 'error', errorType: 'bad_data', reason: 'the query returns a range vector; gates need one number (use rate(), avg_over_time(), ...)' }
  }
  if (resultType === 'string') return { kind: 'error', errorType: 'bad_data', reason: 'the query returns a string; gates need one number' }
  return { kind: 'error', reason: `unexpected result type ${clip(JSON.stringify(resultType) ?? 'none')}` }
}

function fromSample(raw: unknown, labels: Record<string, string>): QueryResult {
  const value = parseSampleValue(raw)
  if (value === null) return { kind: 'inconclusive', reason: `the value ${clip(JSON.stringify(raw) ?? 'none')} is not a number` }
  if (Number.isNaN(value)) return { kind: 'inconclusive', reason: 'the value is NaN (e.g. 0/0: no requests in the window)' }
  return { kind: 'value', value, labels }
}
