import type { StoredEvent } from '../audit/entries.js'
import { GATE_VERDICTS, type GateVerdict, type MetricsSnapshot } from './snapshot.js'

/** Events that record a decision of fleet or a person (what `fleet_decisions_total` counts). */
export const DECISION_TYPES = [
  'rollout-started',
  'stage-started',
  'stage-finished',
  'bake-started',
  'gate-measured',
  'gates-passed',
  'gates-failed',
  'rollout-paused',
  'rollout-resumed',
  'rollout-promoted',
  'rollout-aborting',
  'cooldown-ignored',
  'rollout-finished',
] as const

const data = (event: StoredEvent): Record<string, unknown> =>
  typeof event.data === 'object' && event.data !== null ? (event.data as Record<string, unknown>) : {}

export interface SnapshotInput {
  /** The rollout to describe (the active one, else the latest), null when there is none. */
  readonly rollout: { readonly id: string; readonly state: string } | null
  /** Its hosts by status (Store.countRolloutHosts or the like). */
  readonly hosts: MetricsSnapshot['hosts']
  /** Its stored events in order (Store.listEvents); host-step rows may be left out, they are not read. */
  readonly events: readonly StoredEvent[]
  readonly lastRunAt: Date
  readonly lastSuccessAt: Date | null
}

/**
 * The snapshot from what the store holds: percent from the last `stage-started`, gates from the last
 * `gate-measured` of the current stage's bake, decisions and rollbacks counted from the events
 * (a rollback: a `host-finished` ending `rolled_back` or `rollback_failed`, gate reverts included).
 */
export function snapshotFromEvents(input: SnapshotInput): MetricsSnapshot {
  let percent = 0
  let gates: MetricsSnapshot['gates'] = []
  let decisions = 0
  let rollbacks = 0
  for (const event of input.events) {
    const d = data(event)
    if ((DECISION_TYPES as readonly string[]).includes(event.type)) decisions++
    if (event.type === 'stage-started') {
      if (typeof d.percent === 'number') percent = d.percent
      gates = [] // a new stage's bake has measured nothing yet
    }
    if (event.type === 'host-finished' && (d.status === 'rolled_back' || d.status === 'rollback_failed')) rollbacks++
    if (event.type === 'gate-measured' && Array.isArray(d.gates))
      gates = d.gates.flatMap((g: unknown) => {
        if (typeof g !== 'object' || g === null) return []
        const { name, value, verdict, kind } = g as Record<string, unknown>
        if (typeof name !== 'string') return []
        return [
          {
            name,
            // A check's value is its exit code, not a measurement: left out of fleet_gate_value.
            value: typeof value === 'number' && kind !== 'check' ? value : null,
            verdict: (GATE_VERDICTS as readonly unknown[]).includes(verdict) ? (verdict as GateVerdict) : null,
          },
        ]
      })
  }
  return {
    rolloutId: input.rollout?.id ?? null,
    state: input.rollout?.state ?? null,
    percent,
    hosts: input.hosts,
    gates,
    decisions,
    rollbacks,
    lastRunAt: input.lastRunAt,
    lastSuccessAt: input.lastSuccessAt,
  }
}
