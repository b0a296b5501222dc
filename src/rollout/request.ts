import type { ExitCode } from '../errors.js'
import type { Executor } from '../ssh/executor.js'
import type { Fence, Store } from '../store/store.js'
import type { Clock } from './clock.js'
import type { RolloutListener, StatusCounts } from './events.js'
import type { HostOutcome, HostSettings } from './host-update.js'
import type { GatesConfig } from '../gates/types.js'
import type { FailureBudget, RingSpec, WindowSpec } from '../config/shape.js'
import type { IgnoredCooldown } from './cooldown.js'
import type { PlannedRing } from './plan.js'
import type { IgnoredWindow } from './window.js'
import type { Host, RolloutState } from '../types.js'

/** What a rollout needs from the outside world: the drivers, passed in. */
export interface RolloutDeps {
  readonly store: Store
  readonly executor: Executor
  readonly clock: Clock
  readonly listeners: readonly RolloutListener[]
  /** Stop (first Ctrl-C, SIGTERM, SIGHUP, output gone): no new hosts start; in-flight hosts finish. */
  readonly stop?: AbortSignal
  /** Kill (second Ctrl-C): in-flight commands are killed and their hosts rolled back. */
  readonly kill?: AbortSignal
  /**
   * Called with each batch of events once it is stored (never before): for what must not
   * happen for an event that could be lost, like a notification. `fence` is the lease the
   * events were written under, for the follow-up records (a failed notification).
   */
  readonly onStored?: (events: readonly StoredEvent[], fence: Fence) => void
}

/** An event as the log stores it; `data` is the event as the `--json` stream has it. */
export interface StoredEvent {
  /** The row's id once stored (a notification's idempotency key); absent before. */
  readonly id?: string | null
  readonly rolloutId: string | null
  readonly type: string
  readonly host: string | null
  readonly data: unknown
  readonly at: Date
}

/** What a rollout runs with; stored with it so resume and abort need no config. */
export interface RolloutSettings {
  readonly ref: string
  readonly stages: readonly number[]
  readonly failureThreshold: number
  readonly concurrency: number
  readonly stageDelayMs: number
  readonly connectTimeoutMs: number
  readonly host: HostSettings
  /** Health gates; null: no bake (a rollout recorded before gates existed reads as null too). */
  readonly gates?: GatesConfig | null
  /** Where gate checks run: the config file's directory. */
  readonly checksDir?: string
  /** Driven by cron (`start --detach`, `tick --ref`): resume and promote hand it back to the ticks. */
  readonly detached?: boolean
  /** `rollout.rings` as the plan used them. */
  readonly rings?: readonly RingSpec[]
  /** The plan's rings in order (how many stages each), for the views and a takeover. */
  readonly planRings?: readonly PlannedRing[]
  /** `rollout.windows`; empty or absent: always open. */
  readonly windows?: readonly WindowSpec[]
  /** A person started it outside the windows (`--ignore-window --reason`): no window applies. */
  readonly ignoreWindow?: boolean
  /** `rollout.failureBudget` in hosts, resolved against the rollout's hosts; null: none. */
  readonly failureBudget?: number | null
  /** Held hosts when it started, with why: in no stage. */
  readonly held?: readonly { readonly name: string; readonly reason: string }[]
}

/** A new rollout: its settings, the hosts, and who asks. */
export interface RolloutRequest extends Omit<RolloutSettings, 'host'> {
  readonly hosts: readonly Host[]
  /** The hosts came from fleet's hosts table: read again under the lock (a host disabled meanwhile stays out). */
  readonly fromHostsTable?: boolean
  readonly settings: HostSettings
  readonly seed?: string
  /** Who runs it, for the lease and the record: user@machine pid. */
  readonly owner: string
  readonly storeRetryMs?: number
  /** `rollout.failureBudget` as configured (hosts, or a share of the rollout's hosts). */
  readonly budget?: FailureBudget | null
  /** A cooldown in force that a person chose to ignore: recorded on this rollout. */
  readonly ignoredCooldown?: IgnoredCooldown | null
  /** Started outside every window by a person: recorded on this rollout. */
  readonly ignoredWindow?: IgnoredWindow | null
}

export interface RolloutResult {
  readonly rolloutId: string
  readonly state: RolloutState
  readonly exitCode: ExitCode
  readonly sha: string
  readonly counts: StatusCounts
  readonly outcomes: ReadonlyMap<string, HostOutcome>
  /** Set when this process lost the rollout to another holder: who took it, in words. Nothing more was recorded. */
  readonly lost?: string
}
