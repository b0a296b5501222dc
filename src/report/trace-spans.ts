import { createHash, randomBytes } from 'node:crypto'

/**
 * One trace per rollout, built from the journal's stored events (no OpenTelemetry here: trace.ts
 * turns what this returns into spans). The tree:
 *
 *   rollout <id>                       rollout-started → rollout-finished (a final state)
 *     stage <n>                        stage-started → stage-finished
 *       host <name>                    host-started → host-finished
 *         fetch, checkout, …           host-step → the next step or host-finished
 *     bake stage <n>                   bake-started → gates-passed / gates-failed / the end
 *
 * Gate measurements are events of the bake span, decisions (gates passed or failed, a halt, a
 * pause, a promote, a resume, an abort, a takeover) events of the root. The trace id and the ids
 * of the root, stage and bake spans are derived from the rollout id, so every process that drives
 * one rollout (a start that pauses, the resume; cron's ticks) adds to the same trace.
 */

export type Attributes = Record<string, string | number | boolean>

export interface SpanEvent {
  readonly name: string
  readonly at: number
  readonly attributes: Attributes
}

/** A finished span, ready to export. */
export interface FinishedSpan {
  readonly traceId: string
  readonly spanId: string
  /** null: the root. */
  readonly parentId: string | null
  readonly name: string
  readonly start: number
  readonly end: number
  readonly attributes: Attributes
  readonly events: readonly SpanEvent[]
  /** Set when the span failed: its error. */
  readonly error: string | null
}

export interface TraceEvent {
  readonly rolloutId: string | null
  readonly type: string
  readonly data: unknown
  readonly at: Date
}

const hex = (text: string, chars: number): string => createHash('sha256').update(text).digest('hex').slice(0, chars)

/** The trace id of a rollout (32 hex), the same in every process. */
export const traceIdOf = (rolloutId: string): string => hex(`fleet trace ${rolloutId}`, 32)
const spanIdOf = (rolloutId: string, key: string): string => hex(`fleet span ${rolloutId} ${key}`, 16)
const randomSpanId = (): string => randomBytes(8).toString('hex')

const FINAL_STATES = new Set(['completed', 'halted', 'failed', 'aborted'])
/** Decisions and a person's actions: events of the root span. */
const DECISIONS = new Set(['gates-passed', 'gates-failed', 'rollout-paused', 'rollout-resumed', 'rollout-promoted', 'request-not-applied', 'rollout-aborting', 'rollout-taken-over', 'cooldown-ignored', 'rollout-stopping', 'store-recovered'])
/** What a process that did not start the rollout reads back to know which spans are open. */
export const REPLAYED_TYPES = ['rollout-started', 'stage-started', 'stage-finished', 'bake-started', 'gate-measured', ...DECISIONS]
/** Bounds: a rollout that runs for days keeps at most this many root events and gate events per bake. */
const MAX_EVENTS = 500

interface Open {
  readonly spanId: string
  readonly parentId: string
  readonly name: string
  readonly start: number
  readonly attributes: Attributes
  readonly events: SpanEvent[]
}

interface RolloutTrace {
  readonly traceId: string
  readonly rootId: string
  start: number | null
  readonly attributes: Attributes
  readonly events: SpanEvent[]
  readonly stages: Map<number, Open>
  readonly bakes: Map<number, Open>
  readonly hosts: Map<string, Open>
  readonly steps: Map<string, Open>
}

type Data = Record<string, unknown>
const str = (d: Data, k: string): string | null => (typeof d[k] === 'string' ? (d[k] as string) : null)
const num = (d: Data, k: string): number | null => (typeof d[k] === 'number' && Number.isFinite(d[k]) ? (d[k] as number) : null)
const cut = (text: string, n = 500): string => (text.length > n ? `${text.slice(0, n)}…` : text)
/** Attribute keys from gate names (a user's text): letters, digits and `_` only. */
const key = (name: string): string => name.replace(/[^A-Za-z0-9_]/g, '_').slice(0, 60)

function attrs(d: Data, ...keys: string[]): Attributes {
  const out: Attributes = {}
  for (const k of keys) {
    const v = d[k]
    if (typeof v === 'string') out[`fleet.${k}`] = cut(v)
    else if (typeof v === 'number' || typeof v === 'boolean') out[`fleet.${k}`] = v
  }
  return out
}

function gateAttributes(d: Data): Attributes {
  const out: Attributes = { 'fleet.verdict': str(d, 'verdict') ?? '?' }
  const gates = Array.isArray(d.gates) ? (d.gates as Data[]) : []
  for (const g of gates.slice(0, 20)) {
    if (typeof g !== 'object' || g === null) continue
    const k = `fleet.gate.${key(str(g, 'name') ?? '?')}`
    for (const field of ['value', 'min', 'max'] as const) if (num(g, field) !== null) out[`${k}.${field}`] = num(g, field)!
    out[`${k}.verdict`] = str(g, 'verdict') ?? '?'
    if (str(g, 'reason')) out[`${k}.reason`] = cut(str(g, 'reason')!, 200)
  }
  return out
}

const push = (list: SpanEvent[], event: SpanEvent): void => {
  if (list.length < MAX_EVENTS) list.push(event)
}

/** Feeds stored events in order; returns the spans they finish. */
export class TraceBuilder {
  private readonly rollouts = new Map<string, RolloutTrace>()

  /** Whether this builder has seen the rollout (else its earlier events should be replayed first). */
  knows(rolloutId: string): boolean {
    return this.rollouts.has(rolloutId)
  }

  /** Events from before this process: they open spans (and add root events) but finish nothing. */
  replay(events: readonly TraceEvent[], rolloutId: string): void {
    this.of(rolloutId)
    for (const event of events) this.feed(event, true)
  }

  feed(event: TraceEvent, replaying = false): FinishedSpan[] {
    const id = event.rolloutId
    if (!id) return []
    const r = this.of(id)
    const d = (typeof event.data === 'object' && event.data !== null ? event.data : {}) as Data
    const at = event.at.getTime()
    const out: FinishedSpan[] = []
    const finish = (span: Open | undefined, end: number, error: string | null = null, more: Attributes = {}): void => {
      if (span && !replaying) out.push({ traceId: r.traceId, spanId: span.spanId, parentId: span.parentId, name: span.name, start: span.start, end: Math.max(end, span.start), attributes: { ...span.attributes, ...more }, events: span.events, error })
    }
    const stage = num(d, 'stage') ?? 0
    const host = str(d, 'host') ?? '?'
    const endStep = (end: number, error: string | null = null): void => {
      finish(r.steps.get(host), end, error)
      r.steps.delete(host)
    }
    const openHost = (start: number): Open => {
      const span: Open = { spanId: randomSpanId(), parentId: r.stages.get(stage)?.spanId ?? spanIdOf(id, `stage ${stage}`), name: `host ${host}`, start, attributes: { 'fleet.host': host, 'fleet.stage': stage, ...attrs(d, 'address') }, events: [] }
      r.hosts.set(host, span)
      return span
    }
    if (DECISIONS.has(event.type)) push(r.events, { name: event.type, at, attributes: attrs(d, 'stage', 'reason', 'actor', 'onFail', 'owner', 'from', 'skipBake', 'rollback', 'cause') })
    switch (event.type) {
      case 'rollout-started':
        r.start = at
        Object.assign(r.attributes, attrs(d, 'ref', 'sha', 'hosts', 'concurrency', 'failureThreshold', 'seed'), { 'fleet.stages': (Array.isArray(d.stages) ? d.stages : []).join(',') })
        break
      case 'stage-started':
        r.stages.set(stage, { spanId: spanIdOf(id, `stage ${stage}`), parentId: r.rootId, name: `stage ${stage}`, start: at, attributes: { 'fleet.stage': stage, ...attrs(d, 'percent'), 'fleet.hosts': Array.isArray(d.hosts) ? d.hosts.length : 0 }, events: [] })
        break
      case 'stage-finished': {
        const halted = d.halted === true
        const counts = (typeof d.counts === 'object' && d.counts !== null ? d.counts : {}) as Data
        const more: Attributes = { ...attrs(d, 'failureRate', 'halted') }
        for (const [k, v] of Object.entries(counts)) if (typeof v === 'number') more[`fleet.count.${key(k)}`] = v
        if (halted) push(r.events, { name: 'stage-halted', at, attributes: { 'fleet.stage': stage, ...attrs(d, 'failureRate') } })
        finish(r.stages.get(stage) ?? this.orphan(id, 'stage', stage, at), at, halted ? `stage ${stage} halted: failure rate ${num(d, 'failureRate') ?? '?'}` : null, more)
        r.stages.delete(stage)
        break
      }
      case 'host-started':
        if (r.hosts.has(host)) {
          endStep(at)
          finish(r.hosts.get(host), at)
        }
        openHost(at)
        break
      case 'host-step': {
        const parent = r.hosts.get(host) ?? openHost(at)
        endStep(at)
        const step = str(d, 'step') ?? '?'
        r.steps.set(host, { spanId: randomSpanId(), parentId: parent.spanId, name: d.phase === 'rollback' ? `rollback ${step}` : step, start: at, attributes: { 'fleet.host': host, 'fleet.step': step, ...attrs(d, 'phase') }, events: [] })
        break
      }
      case 'host-finished': {
        const status = str(d, 'status') ?? '?'
        const error = status === 'success' || status === 'skipped' || status === 'held' ? null : `${status}${str(d, 'failedStep') ? ` at ${str(d, 'failedStep')}` : ''}${str(d, 'error') ? `: ${cut(str(d, 'error')!)}` : ''}`
        const span = r.hosts.get(host) ?? openHost(at - (num(d, 'durationMs') ?? 0))
        endStep(at, error)
        finish(span, at, error, attrs(d, 'status', 'previousVersion', 'newVersion', 'failedStep', 'error', 'durationMs'))
        r.hosts.delete(host)
        break
      }
      case 'bake-started':
        r.bakes.set(stage, { spanId: spanIdOf(id, `bake ${stage}`), parentId: r.rootId, name: `bake stage ${stage}`, start: at, attributes: { 'fleet.stage': stage, ...attrs(d, 'bakeMs', 'intervalMs', 'endsAt') }, events: [] })
        break
      case 'gate-measured': {
        const bake = r.bakes.get(stage) ?? this.orphan(id, 'bake', stage, at)
        r.bakes.set(stage, bake)
        push(bake.events, { name: 'gate-measured', at, attributes: gateAttributes(d) })
        break
      }
      case 'gates-passed':
      case 'gates-failed': {
        const bake = r.bakes.get(stage)
        bake?.events.push({ name: event.type, at, attributes: attrs(d, 'reason', 'onFail') })
        finish(bake, at, event.type === 'gates-failed' ? `gates failed: ${cut(str(d, 'reason') ?? '?')}` : null)
        r.bakes.delete(stage)
        break
      }
      case 'rollout-finished': {
        const state = str(d, 'state') ?? '?'
        if (!FINAL_STATES.has(state)) break // paused, detached, interrupted: another process goes on with this trace
        for (const step of r.steps.values()) finish(step, at)
        for (const open of [...r.hosts.values(), ...r.stages.values(), ...r.bakes.values()]) finish(open, at)
        const error = state === 'completed' ? null : `rollout ${state}${str(d, 'error') ? `: ${cut(str(d, 'error')!)}` : ''}`
        const start = r.start ?? at - (num(d, 'durationMs') ?? 0)
        if (!replaying)
          out.push({ traceId: r.traceId, spanId: r.rootId, parentId: null, name: `rollout ${id}`, start, end: Math.max(at, start), attributes: { 'fleet.rollout_id': id, ...r.attributes, ...attrs(d, 'state', 'exitCode', 'durationMs', 'error') }, events: r.events, error })
        this.rollouts.delete(id)
        break
      }
    }
    return out
  }

  private of(rolloutId: string): RolloutTrace {
    let r = this.rollouts.get(rolloutId)
    if (!r) {
      r = { traceId: traceIdOf(rolloutId), rootId: spanIdOf(rolloutId, 'root'), start: null, attributes: {}, events: [], stages: new Map(), bakes: new Map(), hosts: new Map(), steps: new Map() }
      this.rollouts.set(rolloutId, r)
    }
    return r
  }

  /** A span whose start this process never saw (and the store did not have): it starts where it ends. */
  private orphan(rolloutId: string, kind: 'stage' | 'bake', stage: number, at: number): Open {
    const r = this.of(rolloutId)
    return { spanId: spanIdOf(rolloutId, `${kind} ${stage}`), parentId: r.rootId, name: kind === 'stage' ? `stage ${stage}` : `bake stage ${stage}`, start: at, attributes: { 'fleet.stage': stage }, events: [] }
  }
}
