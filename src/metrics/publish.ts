import type { Registry } from 'prom-client'

import { errorMessage } from '../errors.js'
import { postOnce } from '../notify/post.js'
import { displayUrl } from '../notify/url.js'
import { sanitizeLine } from '../text/sanitize.js'
import type { MetricsSnapshot } from './snapshot.js'
import { writeFileAtomic } from './textfile.js'

/** prom-client takes ~100 ms to load: only a run that publishes pays for it, not every idle tick. */
const registryFor = async (snapshot: MetricsSnapshot): Promise<Registry> => (await import('./registry.js')).buildRegistry(snapshot)

export interface PublishOptions {
  /** Pushgateway base URL (`http://pushgateway:9091`); null/omitted: no push. */
  readonly pushgateway?: string | null
  /** Path of a `.prom` file for node_exporter's textfile collector; null/omitted: none. */
  readonly textfile?: string | null
  /** The Pushgateway job (grouping key). Default "fleet". */
  readonly job?: string
  /** For the push. Default 5000. */
  readonly timeoutMs?: number
}

export interface PublishOutcome {
  readonly ok: boolean
  /** Safe to print (no credentials). */
  readonly error: string | null
}

export interface PublishResult {
  /** Absent when not configured. */
  readonly pushgateway?: PublishOutcome & { readonly url: string }
  readonly textfile?: PublishOutcome & { readonly path: string }
}

const failure = (error: unknown): PublishOutcome => ({ ok: false, error: sanitizeLine(errorMessage(error)).slice(0, 300) })

/**
 * PUT of the job's group: replaced by exactly this snapshot (series of a previous rollout go away).
 * Our own request, not prom-client's Pushgateway class: that one reads the whole answer into a
 * string, and a gateway answering with hundreds of MB crashed the process after the run.
 */
async function push(registry: Registry, url: string, job: string, timeoutMs: number): Promise<PublishOutcome> {
  try {
    const target = `${url.replace(/\/+$/, '')}/metrics/job/${encodeURIComponent(job)}`
    const outcome = await postOnce(target, await registry.metrics(), { method: 'PUT', contentType: registry.contentType, timeoutMs, headers: {} })
    if (outcome.kind === 'network') return { ok: false, error: outcome.error }
    if (outcome.status >= 200 && outcome.status < 300) return { ok: true, error: null }
    return { ok: false, error: `HTTP ${outcome.status}${outcome.body ? `: ${outcome.body}` : ''}` }
  } catch (error) {
    return failure(error)
  }
}

/**
 * Publishes the snapshot to the configured places, both at once. Never throws: each destination's
 * failure is returned (for the caller to record or print); nothing else depends on it.
 */
export async function publish(snapshot: MetricsSnapshot, options: PublishOptions): Promise<PublishResult> {
  let registry: Registry
  try {
    registry = await registryFor(snapshot)
  } catch (error) {
    // A gate name prom-client refuses, say: nothing can be published, and that is all.
    const outcome = failure(error)
    return {
      ...(options.pushgateway ? { pushgateway: { ...outcome, url: displayUrl(options.pushgateway) } } : {}),
      ...(options.textfile ? { textfile: { ...outcome, path: options.textfile } } : {}),
    }
  }
  const { pushgateway, textfile } = options
  const [pushed, written] = await Promise.all([
    pushgateway ? push(registry, pushgateway, options.job ?? 'fleet', options.timeoutMs ?? 5000) : undefined,
    textfile
      ? registry
          .metrics()
          .then((text) => writeFileAtomic(textfile, text))
          .then((): PublishOutcome => ({ ok: true, error: null }), failure)
      : undefined,
  ])
  return {
    ...(pushed && pushgateway ? { pushgateway: { ...pushed, url: displayUrl(pushgateway) } } : {}),
    ...(written && textfile ? { textfile: { ...written, path: textfile } } : {}),
  }
}

/** The snapshot in the Prometheus text format (for `--json`-less debugging and tests). */
export const renderMetrics = async (snapshot: MetricsSnapshot): Promise<string> => (await registryFor(snapshot)).metrics()
