import type { FailureBudget, RingSpec, WindowSpec } from './shape.js'
/**
 * The validated configuration: every key filled with its default, durations in
 * milliseconds, paths with `~` expanded. Produced once at the edge by loadConfig().
 */
import type { GatesConfig } from '../gates/types.js'
import type { NotifyTarget } from '../notify/notify.js'

export type HostKeyPolicy = 'strict' | 'accept-new'

export interface FleetConfig {
  readonly database: {
    readonly url: string | null
    /** From loadConfig, absolute: a relative `dir` in a config file (or the default with one) lives next to that file, else in cwd. */
    readonly dir: string
  }
  readonly inventory: {
    readonly query: string | null
    /** The query's statement timeout. */
    readonly timeoutMs: number
  }
  readonly ssh: {
    readonly user: string
    readonly port: number
    /** Path to the private key file, or null to use only the agent. */
    readonly privateKey: string | null
    /** ssh-agent socket path; null means $SSH_AUTH_SOCK if set, else none. */
    readonly agent: string | null
    readonly knownHosts: string
    readonly hostKeyPolicy: HostKeyPolicy
    readonly connectTimeoutMs: number
  }
  readonly app: {
    readonly dir: string
    readonly remote: string
    readonly branch: string
    readonly service: string
    /** `in-place`: updates rewrite the checkout at `dir`; `releases`: a directory per release beside it, `dir` a symlink to the live one. */
    readonly layout: 'in-place' | 'releases'
    /** Successful releases kept per host (the live one, the previous one and any a rollout may switch to are kept anyway). */
    readonly keepReleases: number
    /** Paths (relative to the app dir) kept once beside the releases and linked into each one. */
    readonly shared: readonly string[]
  }
  readonly steps: {
    readonly install: string
    /** Run after install in the new release's directory (layout `releases`) or the app dir; null: none. */
    readonly build: string | null
    readonly restart: string
    readonly verify: string
    readonly health: string | null
    /** Run once when verify fails for good: the tail of its output is the failure's reason. */
    readonly diagnose: string | null
  }
  readonly verify: { readonly delayMs: number; readonly retries: number; readonly intervalMs: number }
  readonly timeouts: { readonly commandMs: number }
  readonly rollout: {
    /** Cumulative percentages, strictly increasing, last one 100. */
    readonly stages: readonly number[]
    readonly failureThreshold: number
    readonly concurrency: number
    readonly stageDelayMs: number
    /** After a halted or reverted rollout, no new one starts for this long (0: never blocked). */
    readonly cooldownMs: number
    /** Hosts go ring by ring in this order, each through its own stages; hosts of no listed ring form a last ring. */
    readonly rings: readonly RingSpec[]
    /** When hosts may start; empty: always. */
    readonly windows: readonly WindowSpec[]
    /** Failed hosts of the whole rollout; one more halts it. null: no budget. */
    readonly failureBudget: FailureBudget | null
  }
  /** Health gates: bake after every stage (design "Health gates"). */
  readonly gates: GatesConfig
  /** Webhooks POSTed on chosen events (design "Notifications and metrics"). */
  readonly notify: readonly NotifyTarget[]
  readonly metrics: {
    /** Pushgateway base URL, or null. */
    readonly pushgateway: string | null
    /** Absolute path of a `.prom` file for node_exporter's textfile collector, or null. */
    readonly textfile: string | null
    readonly job: string
  }
  /** OpenTelemetry traces (design "Seeing the fleet"). */
  readonly otel: {
    /** OTLP/HTTP base URL (`/v1/traces` is appended unless it is there), or null: no traces. */
    readonly endpoint: string | null
  }
}
