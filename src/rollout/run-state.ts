import type { GatesConfig } from '../gates/types.js'
import type { Session } from '../ssh/executor.js'
import type { Fence } from '../store/store.js'
import type { RolloutView } from './decide.js'
import type { Plan } from './plan.js'
import type { RolloutSettings } from './request.js'
import type { StageProgress } from './restore.js'
import type { HostStatus, Sha } from '../types.js'

/** How a drive ends, and why when that is worth recording. */
export interface Ending {
  readonly state: 'completed' | 'halted' | 'interrupted' | 'paused' | 'yielded'
  readonly why?: string
  /** A stop cut a gate revert short: hosts are left on the target (never exit 0 or 3: 130). */
  readonly revertInterrupted?: boolean
}

export interface RunState {
  readonly rolloutId: string
  /** The lease this process holds on the rollout: every write names it. */
  readonly fence: Fence
  /** Who drives it (user@machine pid): the recorded owner, and the label of the hosts it claims. */
  readonly owner: string
  readonly target: Sha
  readonly plan: Plan
  readonly startedAt: Date
  readonly sessions: Map<string, Session>
  readonly storeRetryMs: number
  /** Statuses already recorded (resume); everything else starts pending. */
  readonly statuses?: ReadonlyMap<string, HostStatus>
  /** The stage a resumed rollout was in. */
  readonly stage?: number
  /** Where that stage was, from the log (see restore.ts). */
  readonly progress?: StageProgress
}

/** What the decision core sees of a run: the recorded statuses, and where the current stage and its bake are. */
export function viewOf(
  plan: Plan,
  settings: Pick<RolloutSettings, 'failureThreshold' | 'concurrency' | 'stageDelayMs' | 'failureBudget'>,
  gates: GatesConfig | null,
  statuses: ReadonlyMap<string, HostStatus>,
  stage: number,
  where: StageProgress,
): RolloutView {
  return {
    stages: plan.stages,
    ...{ failureThreshold: settings.failureThreshold, concurrency: settings.concurrency, stageDelayMs: settings.stageDelayMs },
    hosts: plan.hosts.map((h) => ({ name: h.name, stage: h.stage, status: statuses.get(h.name) ?? 'pending' })),
    stage,
    stageStarted: where.stageStarted,
    stageFinishedAt: where.stageFinishedAt,
    gates: gates && { bake: gates, gateCount: gates.metrics.length + gates.checks.length, onFail: gates.onFail, ...where.bake },
    failureBudget: settings.failureBudget ?? null,
  }
}

/** Calls `said` at the first stop (in-flight hosts finish: `signal`) and at a kill (they are killed and rolled back: `abort`), with the cause. */
export function onStops(signals: { readonly stop?: AbortSignal; readonly kill?: AbortSignal }, said: (reason: 'signal' | 'abort', cause: string) => void): void {
  for (const [reason, signal] of [['signal', signals.stop], ['abort', signals.kill]] as const)
    signal?.addEventListener('abort', () => said(reason, String(signal.reason ?? 'signal')), { once: true })
}
