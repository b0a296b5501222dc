import type { RolloutReader } from '../store/store.js'
import { emptyCounts, type StatusCounts } from './events.js'
import type { RolloutState } from '../types.js'

/** One past rollout, as `fleet history --json` prints it. */
export interface HistoryEntry {
  readonly id: string
  readonly state: RolloutState
  readonly ref: string
  readonly sha: string
  readonly startedAt: string
  readonly finishedAt: string | null
  /** null while the rollout has not finished. */
  readonly durationMs: number | null
  readonly exitCode: number | null
  readonly counts: StatusCounts
}

export const DEFAULT_HISTORY_LIMIT = 20
export const MAX_HISTORY_LIMIT = 10_000

/** The `limit` most recently started rollouts, newest first, with their per-status host counts. */
export async function readHistory(store: Pick<RolloutReader, 'listRollouts' | 'countRolloutHosts'>, limit: number): Promise<HistoryEntry[]> {
  const rollouts = await store.listRollouts(limit)
  const counts = await store.countRolloutHosts(rollouts.map((r) => r.id))
  return rollouts.map((r) => ({
    id: r.id,
    state: r.state,
    ref: r.ref,
    sha: r.sha,
    startedAt: r.startedAt.toISOString(),
    finishedAt: r.finishedAt?.toISOString() ?? null,
    durationMs: r.finishedAt ? r.finishedAt.getTime() - r.startedAt.getTime() : null,
    exitCode: r.exitCode,
    counts: { ...emptyCounts(), ...counts.get(r.id) },
  }))
}
