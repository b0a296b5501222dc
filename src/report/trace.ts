import { createRequire } from 'node:module'

import type { FleetConfig } from '../config/types.js'
import { displayUrl } from '../notify/url.js'
import type { StoredEvent } from '../rollout/request.js'
import type { Fence, Store } from '../store/store.js'
import { sanitizeLine } from '../text/sanitize.js'
import { REPLAYED_TYPES, TraceBuilder, traceIdOf, type FinishedSpan, type TraceEvent } from './trace-spans.js'

export { traceIdOf }

/** A journal sink: every stored event becomes part of its rollout's trace (trace-spans.ts). */
export interface Tracing {
  readonly onStored: (events: readonly StoredEvent[], fence: Fence) => void
  /** Waits (at most boundMs) for the spans of this process to be exported. */
  finish(boundMs?: number): Promise<void>
}

export interface TracingOptions {
  /** Export timeout of one batch. */
  readonly timeoutMs?: number
  /** How long a span may wait to be exported with others. */
  readonly delayMs?: number
}

/** Long enough for one export to a collector on the network, short enough for cron. */
const FINISH_BOUND_MS = 5_000
/** Spans waiting for export at most: past this, new ones are dropped (a dead collector must not grow the heap). */
const MAX_QUEUE = 8_192

/** `http://collector:4318` → `http://collector:4318/v1/traces`; a URL already ending in `/v1/traces` stays. */
export const tracesUrl = (endpoint: string): string => (/\/v1\/traces\/?$/.test(endpoint) ? endpoint : `${endpoint.replace(/\/+$/, '')}/v1/traces`)

const VERSION = (createRequire(import.meta.url)('../../package.json') as { version: string }).version

type Otel = Awaited<ReturnType<typeof loadOtel>>

/** The OpenTelemetry packages, loaded only when `otel.endpoint` is set: every other command starts without them. */
async function loadOtel() {
  const [api, sdk, exporter, resources] = await Promise.all([
    import('@opentelemetry/api'),
    import('@opentelemetry/sdk-trace-base'),
    import('@opentelemetry/exporter-trace-otlp-http'),
    import('@opentelemetry/resources'),
  ])
  return { api, sdk, exporter, resources }
}

/**
 * `otel.endpoint`: one trace per rollout, exported over OTLP/HTTP (JSON) in batches, off the
 * engine's path: events are queued and turned into spans after they are stored, an export that
 * fails or hangs is a warning (once per command), and the queue is bounded. Without the key: null.
 * When this process sees a rollout start, the trace id is recorded in its audit trail
 * (`trace-started`).
 */
export function startTracing(config: FleetConfig, store: Store, warn: (line: string) => void, options: TracingOptions = {}): Tracing | null {
  const endpoint = config.otel.endpoint
  if (!endpoint) return null
  const url = tracesUrl(endpoint)
  const builder = new TraceBuilder()
  let warned = false
  const warnOnce = (line: string): void => {
    if (!warned) warn(`warning: traces: ${sanitizeLine(line)} (the rollout is not affected; further trace errors are not shown)`)
    warned = true
  }
  let otel: Otel | null = null
  let provider: InstanceType<Otel['sdk']['BasicTracerProvider']> | null = null
  const next = { traceId: '', spanId: '' }

  const ready = loadOtel().then((loaded) => {
    otel = loaded
    const inner = new loaded.exporter.OTLPTraceExporter({ url, timeoutMillis: options.timeoutMs ?? 4_000 })
    const exporter = {
      export: (spans: Parameters<typeof inner.export>[0], done: Parameters<typeof inner.export>[1]) =>
        inner.export(spans, (result) => {
          if (result.code !== 0) warnOnce(`export to ${displayUrl(url)} failed: ${result.error?.message ?? 'unknown error'}`)
          done(result)
        }),
      shutdown: () => inner.shutdown(),
      forceFlush: () => inner.forceFlush(),
    }
    provider = new loaded.sdk.BasicTracerProvider({
      resource: loaded.resources.resourceFromAttributes({ 'service.name': 'fleet', 'service.version': VERSION }),
      // The ids of root, stage and bake spans come from the rollout id (trace-spans.ts).
      idGenerator: { generateTraceId: () => next.traceId, generateSpanId: () => next.spanId },
      spanProcessors: [new loaded.sdk.BatchSpanProcessor(exporter, { maxQueueSize: MAX_QUEUE, maxExportBatchSize: 1_024, scheduledDelayMillis: options.delayMs ?? 1_000, exportTimeoutMillis: options.timeoutMs ?? 4_000 })],
    })
  })

  const emit = (span: FinishedSpan): void => {
    if (!otel || !provider) return
    const { api } = otel
    const tracer = provider.getTracer('fleet', VERSION)
    const parent = span.parentId
      ? api.trace.setSpanContext(api.ROOT_CONTEXT, { traceId: span.traceId, spanId: span.parentId, traceFlags: api.TraceFlags.SAMPLED, isRemote: true })
      : api.ROOT_CONTEXT
    next.traceId = span.traceId
    next.spanId = span.spanId
    const s = tracer.startSpan(span.name, { startTime: span.start, attributes: span.attributes, kind: api.SpanKind.INTERNAL }, parent)
    for (const e of span.events) s.addEvent(e.name, e.attributes, e.at)
    if (span.error) s.setStatus({ code: api.SpanStatusCode.ERROR, message: span.error })
    s.end(span.end)
  }

  /** A rollout this process did not start: what it recorded so far tells which spans are open. */
  const replay = async (rolloutId: string, before: number): Promise<void> => {
    const earlier = await store.listEvents(rolloutId, REPLAYED_TYPES).catch(() => [])
    builder.replay(earlier.filter((e) => e.at.getTime() < before).map((e) => ({ ...e, rolloutId })), rolloutId)
  }

  const record = async (rolloutId: string, fence: Fence): Promise<void> => {
    const data = { type: 'trace-started', rolloutId, traceId: traceIdOf(rolloutId), endpoint: displayUrl(endpoint), at: new Date().toISOString() }
    await store.appendEvents(fence, [{ rolloutId, type: data.type, data, at: new Date(data.at) }]).catch((error: unknown) => warnOnce(`could not record the trace id: ${String(error)}`))
  }

  let chain: Promise<void> = ready.catch((error: unknown) => warnOnce(`could not load OpenTelemetry: ${String(error)}`))
  let queued = 0
  return {
    onStored: (events, fence) => {
      if (queued > MAX_QUEUE) return // a stalled exporter: drop rather than grow
      queued += events.length
      chain = chain.then(async () => {
        queued -= events.length
        if (!otel) return
        try {
          for (const event of events) {
            const id = event.rolloutId
            if (!id) continue
            if (!builder.knows(id) && event.type !== 'rollout-started') await replay(id, event.at.getTime())
            for (const span of builder.feed(event as TraceEvent)) emit(span)
            if (event.type === 'rollout-started') await record(id, fence)
          }
        } catch (error) {
          warnOnce(String(error))
        }
      })
    },
    finish: async (boundMs = FINISH_BOUND_MS) => {
      let timer: NodeJS.Timeout | undefined
      const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), boundMs)))
      const done = chain.then(async () => {
        await provider?.forceFlush()
        await provider?.shutdown()
      })
      const outcome = await Promise.race([done.then(() => 'ok' as const).catch(() => 'ok' as const), late])
      clearTimeout(timer)
      if (outcome === 'late') warnOnce(`spans still unexported after ${Math.round(boundMs / 1000)} s to ${displayUrl(url)}; not waiting for them`)
    },
  }
}
