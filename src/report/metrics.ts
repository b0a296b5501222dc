import type { FleetConfig } from '../config/types.js'
import { publish, snapshotFromEvents, type MetricsSnapshot, type PublishResult } from '../metrics/index.js'
import type { RolloutReader } from '../store/store.js'
import { sanitizeLine } from '../text/sanitize.js'

export interface MetricsPublisher {
  /** Publishes now (also what the timer does); never throws. */
  publishNow(): Promise<void>
  /** Stops the timer and publishes once more: the state at the end of the command. */
  finish(): Promise<void>
}

/** During a long run (bakes of minutes), fresh enough for alerts, rare enough to cost nothing. */
const INTERVAL_MS = 30_000
/** How far back `lastSuccessAt` looks for a completed rollout. */
const RECENT = 100

const noop: MetricsPublisher = { publishNow: async () => {}, finish: async () => {} }

/** The state as the store has it now: the latest rollout, its hosts and events, the last completed one. */
export async function metricsSnapshot(store: RolloutReader, now: Date = new Date()): Promise<MetricsSnapshot> {
  const recent = await store.listRollouts(RECENT)
  const latest = recent[0] ?? null
  const counts = latest ? ((await store.countRolloutHosts([latest.id])).get(latest.id) ?? {}) : {}
  const events = latest ? await store.listEvents(latest.id) : []
  const completed = recent.find((r) => r.state === 'completed' && r.finishedAt !== null)
  return snapshotFromEvents({
    rollout: latest ? { id: latest.id, state: latest.state } : null,
    hosts: counts,
    events,
    lastRunAt: now,
    lastSuccessAt: completed?.finishedAt ?? null,
  })
}

const failures = (result: PublishResult): string[] => [
  ...(result.pushgateway && !result.pushgateway.ok ? [`push to ${result.pushgateway.url} failed: ${result.pushgateway.error ?? '?'}`] : []),
  ...(result.textfile && !result.textfile.ok ? [`writing ${result.textfile.path} failed: ${result.textfile.error ?? '?'}`] : []),
]

/**
 * `metrics.pushgateway` / `metrics.textfile`: the store's state published every INTERVAL_MS while a
 * command runs a rollout, and once at its end. A failed publication is a warning on stderr, nothing
 * more: metrics never change a rollout or its exit code. Without either key: does nothing.
 */
export function startMetrics(store: RolloutReader, config: FleetConfig, warn: (line: string) => void, intervalMs = INTERVAL_MS): MetricsPublisher {
  const { pushgateway, textfile, job } = config.metrics
  if (!pushgateway && !textfile) return noop
  let running: Promise<void> = Promise.resolve()
  const once = async (): Promise<void> => {
    try {
      const result = await publish(await metricsSnapshot(store), { pushgateway, textfile, job })
      for (const line of failures(result)) warn(`warning: metrics: ${sanitizeLine(line)}`)
    } catch (error) {
      warn(`warning: metrics: could not read the state to publish: ${sanitizeLine(String(error))}`)
    }
  }
  // One publication at a time: a slow Pushgateway never piles up pushes.
  const publishNow = (): Promise<void> => (running = running.then(once))
  const timer = setInterval(() => void publishNow(), intervalMs)
  timer.unref()
  return {
    publishNow,
    finish: async () => {
      clearInterval(timer)
      await publishNow()
    },
  }
}
