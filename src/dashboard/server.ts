import http from 'node:http'
import type { AddressInfo, Socket } from 'node:net'

import type { FleetConfig } from '../config/types.js'
import { UsageError, errorMessage } from '../errors.js'
import { sanitizeLine } from '../text/sanitize.js'
import { cachedReader, hostsPayload, openReader, type Reader } from './data.js'
import { PAGE_CSS, PAGE_HTML, PAGE_JS } from './page.js'

export interface DashboardOptions {
  readonly host: string
  readonly port: number
  /** How old a read may be when a browser asks (the page polls every 2 s). */
  readonly maxAgeMs?: number
}

export interface Dashboard {
  readonly url: string
  close(): Promise<void>
}

export const DEFAULT_DASHBOARD_PORT = 7070

const SECURITY_HEADERS = {
  // Scripts and styles only from this server, no inline code, no frames, nothing sent elsewhere.
  'Content-Security-Policy': "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'Cache-Control': 'no-store',
}

const STATIC: Record<string, { type: string; body: string }> = {
  '/': { type: 'text/html; charset=utf-8', body: PAGE_HTML },
  '/app.js': { type: 'text/javascript; charset=utf-8', body: PAGE_JS },
  '/app.css': { type: 'text/css; charset=utf-8', body: PAGE_CSS },
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost'])

/** Any method but GET, whatever the path: nothing here changes anything. */
const NOT_ALLOWED = 'HTTP/1.1 405 Method Not Allowed\r\nAllow: GET\r\nContent-Type: text/plain\r\nContent-Length: 34\r\nConnection: close\r\n\r\nread-only: only GET is answered.\r\n'

const intParam = (value: string | null, fallback: number, max: number): number => {
  const n = value !== null && /^\d{1,9}$/.test(value) ? Number(value) : fallback
  return Math.min(n, max)
}

/** A rollout id as the store makes them; anything else is not looked up. */
const rolloutParam = (value: string | null): string | undefined => (value && value.length <= 100 && /^[\w.:-]+$/.test(value) ? value : undefined)

/**
 * `fleet dashboard`: a read-only page and its JSON, on `host:port` (127.0.0.1 unless told). Every
 * method but GET answers 405 on every path, malformed or unknown methods included; on a loopback
 * address a request naming another host (a DNS-rebinding page) is refused.
 */
export async function startDashboard(config: FleetConfig, options: DashboardOptions, reader?: Reader): Promise<Dashboard> {
  const source = cachedReader(reader ?? (await openReader(config)), options.maxAgeMs)
  const loopback = LOOPBACK.has(options.host)
  const server = http.createServer((req, res) => {
    if (req.method !== 'GET') {
      // The body (if any) is read and dropped, so the answer is not mistaken for part of it.
      req.resume()
      res.writeHead(405, { Allow: 'GET', 'Content-Type': 'text/plain', ...SECURITY_HEADERS }).end('read-only: only GET is answered.\r\n')
      return
    }
    const url = new URL(req.url ?? '/', 'http://dashboard')
    const hostName = (req.headers.host ?? '').replace(/:\d+$/, '').replace(/^\[(.*)\]$/, '$1')
    if (loopback && !LOOPBACK.has(hostName)) {
      res.writeHead(421, { 'Content-Type': 'text/plain', ...SECURITY_HEADERS }).end('this dashboard answers requests for 127.0.0.1 and localhost only\n')
      return
    }
    const page = STATIC[url.pathname]
    if (page) {
      res.writeHead(200, { 'Content-Type': page.type, ...SECURITY_HEADERS }).end(page.body)
      return
    }
    const json = (status: number, body: string, extra: Record<string, string> = {}) =>
      res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', ...SECURITY_HEADERS, ...extra }).end(body)
    const id = rolloutParam(url.searchParams.get('rollout'))
    if (url.pathname === '/api/state') {
      source.state(id).then(
        (s) => (req.headers['if-none-match'] === s.etag ? res.writeHead(304, { ETag: s.etag, ...SECURITY_HEADERS }).end() : json(200, s.body, { ETag: s.etag })),
        (error: unknown) => json(503, JSON.stringify({ error: sanitizeLine(errorMessage(error)) })),
      )
      return
    }
    if (url.pathname === '/api/hosts') {
      const query = { offset: intParam(url.searchParams.get('offset'), 0, 1e9), limit: intParam(url.searchParams.get('limit'), 100, 500), status: url.searchParams.get('status') || null, q: url.searchParams.get('q')?.slice(0, 200) || null }
      source.state(id).then(
        (s) => json(200, JSON.stringify(hostsPayload(s.view, query))),
        (error: unknown) => json(503, JSON.stringify({ error: sanitizeLine(errorMessage(error)) })),
      )
      return
    }
    json(404, JSON.stringify({ error: 'not found' }))
  })
  // Methods Node's parser does not know (BREW, FOO) never reach the handler: answer them here.
  server.on('clientError', (error: NodeJS.ErrnoException, socket: Socket) => {
    if (socket.writable) socket.end(error.code === 'HPE_INVALID_METHOD' ? NOT_ALLOWED : 'HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n')
  })
  server.on('connect', (_req, socket: Socket) => socket.end(NOT_ALLOWED))
  server.keepAliveTimeout = 5_000
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) =>
      reject(error.code === 'EADDRINUSE' || error.code === 'EADDRNOTAVAIL' || error.code === 'EACCES' ? new UsageError(`cannot listen on ${options.host}:${options.port}: ${error.code}`) : error),
    )
    server.listen(options.port, options.host, resolve)
  })
  const address = server.address() as AddressInfo
  const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address
  return {
    url: `http://${shown}:${address.port}/`,
    close: async () => {
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
      await source.close()
    },
  }
}
