import type { RolloutHostState, RolloutRecord, Store } from '../store/store.js'
import { emptyCounts, type StatusCounts } from './events.js'

/** The stable `fleet rollout status --json` shape of the design (fields may be added, never changed). */
export interface RolloutStatus {
  readonly id: string
  readonly state: string
  readonly target: { readonly ref: string; readonly sha: string }
  readonly stages: readonly number[]
  readonly currentStage: number
  readonly startedAt: string
  readonly finishedAt: string | null
  readonly heartbeatAt: string
  readonly owner: string
  readonly exitCode: number | null
  readonly error: string | null
  readonly counts: StatusCounts
  readonly hosts: readonly {
    readonly name: string
    readonly address: string
    readonly port: number
    readonly stage: number
    readonly status: string
    readonly step: string | null
    readonly previousVersion: string | null
    readonly newVersion: string | null
    readonly error: string | null
  }[]
}

export function buildStatus(rollout: RolloutRecord, hosts: readonly RolloutHostState[]): RolloutStatus {
  const counts = emptyCounts()
  for (const host of hosts) counts[host.status]++
  return {
    id: rollout.id,
    state: rollout.state,
    target: { ref: rollout.ref, sha: rollout.sha },
    stages: rollout.stages,
    currentStage: rollout.currentStage,
    startedAt: rollout.startedAt.toISOString(),
    finishedAt: rollout.finishedAt?.toISOString() ?? null,
    heartbeatAt: rollout.heartbeatAt.toISOString(),
    owner: rollout.owner,
    exitCode: rollout.exitCode,
    error: rollout.error,
    counts,
    hosts: hosts.map((h) => ({
      name: h.name,
      address: h.address,
      port: h.port,
      stage: h.stage,
      status: h.status,
      step: h.status === 'updating' ? h.step : null,
      previousVersion: h.previousVersion,
      newVersion: h.newVersion,
      error: h.error,
    })),
  }
}

/** The given rollout's status, or the most recently started one's; null when there is none. */
export async function readStatus(store: Store, id?: string): Promise<RolloutStatus | null> {
  const rollout = await store.getRollout(id)
  return rollout && buildStatus(rollout, await store.listRolloutHostStates(rollout.id))
}
