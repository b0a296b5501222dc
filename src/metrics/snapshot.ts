/**
 * What fleet publishes about itself, as plain data: the caller builds it from the store after a run
 * (and during long ones); registry.ts turns it into Prometheus series. Every publication carries the
 * whole state (a Pushgateway PUT replaces the job's group), so each field is the current truth, not
 * a delta.
 */
export const METRIC_ROLLOUT_STATES = ['running', 'baking', 'paused', 'completed', 'halted', 'failed', 'aborted', 'interrupted'] as const
export const METRIC_HOST_STATUSES = ['pending', 'updating', 'success', 'failed', 'rolled_back', 'rollback_failed', 'skipped', 'held'] as const
export const GATE_VERDICTS = ['pass', 'fail', 'inconclusive', 'error'] as const
export type GateVerdict = (typeof GATE_VERDICTS)[number]

export interface MetricsSnapshot {
  /** The rollout shown (the active one, else the latest); null when there has never been one. */
  readonly rolloutId: string | null
  /** Its state; null with no rollout (every `fleet_rollout_state` series is then 0). */
  readonly state: string | null
  /** How far it has gone: the cumulative percentage of the current stage (0 before the first). */
  readonly percent: number
  /** Hosts of that rollout by status; missing statuses are 0. */
  readonly hosts: Readonly<Partial<Record<(typeof METRIC_HOST_STATUSES)[number], number>>>
  /** The latest measurement of each configured gate (value null: no number, e.g. inconclusive or error). */
  readonly gates: readonly { readonly name: string; readonly value: number | null; readonly verdict: GateVerdict | null }[]
  /** Decisions recorded for that rollout (stage starts, gate measurements, promotions, reverts, …). */
  readonly decisions: number
  /** Hosts moved back to their previous version in that rollout (host failures and gate reverts). */
  readonly rollbacks: number
  /** When this run (tick, start, resume) ran. */
  readonly lastRunAt: Date
  /** The last run that ended without an error of fleet itself or its store (from the store: not reset by a failing run); null: never. */
  readonly lastSuccessAt: Date | null
}
