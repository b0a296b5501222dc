import { gatesActive, type GatesConfig } from '../gates/types.js'
import type { LeaseState, RolloutHostState, RolloutRecord, RolloutRequestRecord, Store } from '../store/store.js'
import { leaseIsStale } from './lease.js'
import { emptyCounts, type StatusCounts } from './events.js'
import { ringOfStage, type PlannedRing } from './plan.js'

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
  /** The database's clock when this was read: heartbeat ages are judged against it, never against a reader's clock. */
  readonly readAt: string
  /** Whoever drives the rollout now (a takeover makes the new holder the owner). */
  readonly owner: string
  /**
   * Who drives it, judged from the lease on the database's clock: `live` (a process holds the lease
   * and renews it), `gone` (the lease is held but stale: the process stopped without finishing),
   * `none` (no process holds it: finished, paused, or waiting between cron ticks).
   */
  readonly orchestrator: 'live' | 'gone' | 'none'
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
    readonly prepared: boolean
    readonly previousVersion: string | null
    readonly newVersion: string | null
    readonly error: string | null
  }[]
  /** The gates of the current stage: its last measurement (or verdict), null when nothing was measured. */
  readonly gates: GateState | null
  /** The ring of each stage (null: no rings, or the hosts of no listed ring). */
  readonly stageRings: readonly (string | null)[]
  /** Hosts held when it started: in no stage, never touched. */
  readonly held: readonly { readonly name: string; readonly reason: string }[]
  /** rollout.failureBudget in hosts (null: none). */
  readonly failureBudget: number | null
  /** Pause and promote requests sent to it: `outcome` null while pending, else `applied` or `not applied: why`. */
  readonly requests: readonly RequestState[]
}

export interface RequestState {
  readonly id: string
  readonly kind: string
  readonly actor: string
  readonly reason: string | null
  readonly requestedAt: string
  readonly outcome: string | null
}

export interface GateState {
  readonly stage: number
  /** `measured` while baking; then `passed`, `failed` or `paused`. */
  readonly phase: 'measured' | 'passed' | 'failed' | 'paused'
  readonly verdict: string | null
  readonly at: string
  readonly gates: readonly { name: string; value: number | null; min: number | null; max: number | null; verdict: string; reason: string }[]
  readonly reason: string | null
}

const GATE_EVENTS = ['gate-measured', 'gates-passed', 'gates-failed', 'rollout-paused']

/** The gate state of the stage the rollout is in, from its log. */
export function gateState(currentStage: number, events: readonly { type: string; data: unknown; at: Date }[]): GateState | null {
  const mine = events.filter((e) => (e.data as { stage?: number }).stage === currentStage)
  const last = mine.at(-1)
  if (!last) return null
  const measured = mine.findLast((e) => e.type === 'gate-measured')?.data as { verdict?: string; gates?: GateState['gates'] } | undefined
  const phase = last.type === 'gate-measured' ? 'measured' : last.type === 'gates-passed' ? 'passed' : last.type === 'gates-failed' ? 'failed' : 'paused'
  return {
    stage: currentStage,
    phase,
    verdict: measured?.verdict ?? null,
    at: last.at.toISOString(),
    gates: measured?.gates ?? [],
    reason: (last.data as { reason?: string }).reason ?? null,
  }
}

/** Rings, holds and the failure budget as the rollout recorded them at its start. */
const shapeOf = (rollout: RolloutRecord): Pick<RolloutStatus, 'stageRings' | 'held' | 'failureBudget'> => {
  const s = rollout.settings as { planRings?: PlannedRing[]; held?: RolloutStatus['held']; failureBudget?: number | null }
  return { stageRings: s.planRings ? ringOfStage(s.planRings) : rollout.stages.map(() => null), held: s.held ?? [], failureBudget: s.failureBudget ?? null }
}

export function buildStatus(
  rollout: RolloutRecord,
  hosts: readonly RolloutHostState[],
  gates: GateState | null = null,
  lease: Pick<LeaseState, 'rolloutId' | 'holder' | 'heartbeatAt' | 'now'> | null = null,
  requests: readonly RolloutRequestRecord[] = [],
): RolloutStatus {
  const readAt = lease?.now ?? new Date()
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
    readAt: readAt.toISOString(),
    owner: rollout.owner,
    orchestrator:
      lease?.rolloutId !== rollout.id ? 'none' : leaseIsStale(lease.holder, lease.heartbeatAt ?? new Date(0), readAt.getTime()) ? 'gone' : 'live',
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
      // Release layout: pending, its target release already prepared ahead (promotion only activates it).
      prepared: h.status === 'pending' && h.step === 'prepared',
      previousVersion: h.previousVersion,
      newVersion: h.newVersion,
      error: h.error,
    })),
    gates,
    ...shapeOf(rollout),
    requests: requests.map((r) => ({ id: r.id, kind: r.kind, actor: r.actor, reason: r.reason, requestedAt: r.requestedAt.toISOString(), outcome: r.outcome })),
  }
}

/** The given rollout's status, or the most recently started one's; null when there is none. */
export async function readStatus(store: Store, id?: string): Promise<RolloutStatus | null> {
  const rollout = await store.getRollout(id)
  if (!rollout) return null
  // Only a rollout that bakes has gate events to read (the snapshot rewrites this every second).
  const bakes = gatesActive((rollout.settings as { gates?: GatesConfig | null }).gates)
  const gates = bakes ? gateState(rollout.currentStage, await store.listEvents(rollout.id, GATE_EVENTS)) : null
  return buildStatus(rollout, await store.listRolloutHostStates(rollout.id), gates, await store.leaseState(), await store.listRequests(rollout.id))
}
