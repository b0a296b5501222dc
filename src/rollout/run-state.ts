import type { Session } from '../ssh/executor.js'
import type { Fence } from '../store/store.js'
import type { Plan } from './plan.js'
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
