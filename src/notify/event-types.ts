/**
 * The event types of the `--json` stream (and of the store's event log), by name: what `notify[].on`
 * may name. Kept as plain strings so the config can validate `on` without loading the engine.
 * The gate and control types (gate-measured … cooldown-ignored) are emitted by the decision core.
 */
export const EVENT_TYPES = [
  'rollout-started',
  'stage-started',
  'host-started',
  'host-step',
  'host-finished',
  'stage-finished',
  'stage-delay',
  'bake-started',
  'gate-measured',
  'gates-passed',
  'gates-failed',
  'rollout-paused',
  'rollout-resumed',
  'rollout-promoted',
  'rollout-aborting',
  'rollout-taken-over',
  'rollout-lost',
  'cooldown-ignored',
  'rollout-stopping',
  'store-unavailable',
  'store-recovered',
  'rollout-finished',
  'notification-failed',
] as const
export type EventType = (typeof EVENT_TYPES)[number]

/** `on` omitted: the rollout-level events, plus every `host-finished` whose rollback failed (see wantsEvent). */
export const DEFAULT_NOTIFY_ON: readonly EventType[] = [
  'rollout-started',
  'stage-finished',
  'gates-passed',
  'gates-failed',
  'rollout-paused',
  'rollout-resumed',
  'rollout-finished',
]

/**
 * Any event as stored or streamed: a type, a time, and the type's own fields. The notifier, the
 * summaries and the audit trail read fields defensively, so an event written by an older or newer
 * fleet still renders.
 */
export interface FleetEventLike {
  readonly type: string
  readonly at?: string
  readonly rolloutId?: string | null
  readonly [field: string]: unknown
}

/** Whether a target with this `on` list (null/undefined: the default set) wants the event. */
export function wantsEvent(on: readonly string[] | null | undefined, event: FleetEventLike): boolean {
  if (on) return on.includes(event.type)
  if (event.type === 'host-finished') return event.status === 'rollback_failed'
  return (DEFAULT_NOTIFY_ON as readonly string[]).includes(event.type)
}
