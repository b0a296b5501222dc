import http from 'node:http'
import https from 'node:https'

import { errorMessage } from '../errors.js'
import { sanitizeLine } from '../text/sanitize.js'

export interface PostOptions {
  /** For the whole exchange, connect to the end of the response. */
  readonly timeoutMs: number
  readonly headers: Readonly<Record<string, string>>
  /** Default POST; the Pushgateway replaces a group with PUT. */
  readonly method?: 'POST' | 'PUT'
  /** Default application/json. */
  readonly contentType?: string
}

export type PostOutcome =
  | { readonly kind: 'response'; readonly status: number; readonly body: string }
  | { readonly kind: 'network'; readonly error: string }

const MAX_BODY = 2048

/**
 * One POST, never throwing: a response of any status, or a network error / timeout as text. Redirects
 * are not followed (a webhook that moved is a configuration error to see, not to chase). The error
 * text never contains the URL (it may carry credentials).
 */
export function postOnce(url: string, payload: string, options: PostOptions): Promise<PostOutcome> {
  // A URL that does not parse (config bypassed) or a request that throws at once is an outcome too.
  return new Promise<PostOutcome>((resolve) => send(url, payload, options, resolve)).catch(
    (error: unknown): PostOutcome => ({ kind: 'network', error: error instanceof TypeError ? 'invalid URL' : sanitizeLine(errorMessage(error)).slice(0, 200) }),
  )
}

function send(url: string, payload: string, options: PostOptions, resolve: (outcome: PostOutcome) => void): void {
  const target = new URL(url)
  const client = target.protocol === 'https:' ? https : http
  let settled = false
  const done = (outcome: PostOutcome): void => {
    if (settled) return
    settled = true
    clearTimeout(timer)
    resolve(outcome)
  }
  const req = client.request(target, {
    method: options.method ?? 'POST',
    headers: { 'content-type': options.contentType ?? 'application/json', 'content-length': String(Buffer.byteLength(payload)), 'user-agent': 'fleet', ...options.headers },
  })
  const timer = setTimeout(() => {
    done({ kind: 'network', error: `timed out after ${options.timeoutMs} ms` })
    req.destroy()
  }, options.timeoutMs)
  req.on('error', (error: NodeJS.ErrnoException) => done({ kind: 'network', error: error.code ?? sanitizeLine(errorMessage(error)) }))
  req.on('response', (res) => {
    let body = ''
    res.setEncoding('utf8')
    const answered = (): void => done({ kind: 'response', status: res.statusCode ?? 0, body: sanitizeLine(body).slice(0, 200) })
    res.on('data', (chunk: string) => {
      body += chunk
      // Only the start of a body is ever shown: a server that sends hundreds of MB is cut off, never read whole.
      if (body.length >= MAX_BODY) {
        answered()
        res.destroy()
      }
    })
    res.on('end', answered)
    res.on('error', (error) => done({ kind: 'network', error: sanitizeLine(errorMessage(error)) }))
  })
  req.end(payload)
}
