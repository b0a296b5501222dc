/**
 * The catalogue of event types: every event fleet records or streams, with what each one is. Every
 * list of types elsewhere (what `notify[].on` accepts and its default, the manual actions of the
 * audit trail, the progress the trail leaves out, the reference in docs/events.md) is derived from
 * it; the engine's event union (rollout/events.ts) is checked against it at compile time.
 */
interface EventKind {
  /** Said in one line for docs/events.md. */
  readonly about: string
  /** Notified when a target's `on` is omitted. */
  readonly notifyByDefault?: true
  /** A person's action (a command with --reason): the audit trail marks it manual. */
  readonly manual?: true
  /** Host progress only a live view needs: left out of the text and Markdown trail (kept in JSON). */
  readonly progress?: true
  /** Told to the live view and `--json` only, never stored (the store is away, or no longer ours). */
  readonly unstored?: true
}

export const EVENT_CATALOGUE = {
  'rollout-started': { about: 'a rollout was recorded: target, stages, hosts, and who started it', notifyByDefault: true },
  'stage-started': { about: 'a stage began: its percent and hosts' },
  'host-started': { about: 'a host began updating', progress: true },
  'host-step': { about: 'a host began or ended a step (fetch, checkout, install, restart, verify)', progress: true },
  'host-finished': { about: "a host's outcome: status, versions, the failed step and its error" },
  'host-prepared': { about: 'release layout: a host of a later stage prepared the target while a stage baked or waited (ok, or the error)' },
  'stage-finished': { about: "a stage's counts and failure rate; halted when over the threshold", notifyByDefault: true },
  'stage-delay': { about: 'waiting rollout.stageDelay before the next stage', progress: true },
  'bake-started': { about: "a stage's bake began: measured every interval until endsAt" },
  'gate-measured': { about: 'one measurement of every gate, and its verdict' },
  'gates-passed': { about: "the stage's bake passed (or a person promoted it)", notifyByDefault: true },
  'gates-failed': { about: 'the release is unhealthy: the revert or halt that follows', notifyByDefault: true },
  'rollout-paused': { about: 'the rollout waits for a person or for gate data (exit 7)', notifyByDefault: true, manual: true },
  'rollout-resumed': { about: 'a person continued a paused, interrupted or stopped rollout', notifyByDefault: true, manual: true },
  'rollout-promoted': { about: "a person ended the current bake as passed (fleet rollout promote)", manual: true },
  'request-not-applied': { about: 'a pause or promote request was taken in without effect (nothing bakes, the rollout was pausing or had ended, or a later resume, promote or abort came first), with why', manual: true },
  'rollout-aborting': { about: 'a person ended the rollout (fleet rollout abort), with or without moving hosts back', manual: true },
  'rollout-taken-over': { about: 'another command took the rollout over at a new lease epoch: who drives it now' },
  'rollout-lost': { about: 'this process lost the rollout to another holder and stopped', unstored: true },
  'cooldown-ignored': { about: 'a rollout started during a cooldown, by a person with a reason', manual: true },
  'window-ignored': { about: 'a rollout started outside every deploy window, by a person with a reason', manual: true },
  'host-rollback-started': { about: 'fleet rollback <host>: a person moves one host to a previous version', manual: true },
  'host-rollback-step': { about: "a step of a manual host rollback", progress: true },
  'host-rollback-finished': { about: "a manual host rollback's outcome" },
  'rollout-stopping': { about: 'a signal or closed output: no new host starts; a second one kills' },
  'store-unavailable': { about: 'database writes fail and are retried until retryUntil', unstored: true },
  'store-recovered': { about: 'the database is back after an outage' },
  'rollout-finished': { about: "the run's end: state, counts, exit code and why", notifyByDefault: true },
  'trace-started': { about: 'the rollout is traced (otel.endpoint): its OpenTelemetry trace id' },
  'notification-failed': { about: 'a notification could not be delivered (it changes nothing else)' },
} as const satisfies Record<string, EventKind>

export type EventType = keyof typeof EVENT_CATALOGUE

const kinds = Object.entries(EVENT_CATALOGUE) as [EventType, EventKind][]
const where = (test: (kind: EventKind) => boolean | undefined): readonly EventType[] => kinds.filter(([, kind]) => test(kind)).map(([type]) => type)

export const EVENT_TYPES: readonly EventType[] = kinds.map(([type]) => type)
/** `notify[].on` omitted: these, plus every `host-finished` whose rollback failed. */
export const DEFAULT_NOTIFY_ON = where((k) => k.notifyByDefault)
export const MANUAL_TYPES = where((k) => k.manual)
export const PROGRESS_TYPES = where((k) => k.progress)
