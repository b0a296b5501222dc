import { createHash } from 'node:crypto'

import { auditEntries } from '../audit/index.js'
import type { FleetConfig } from '../config/types.js'
import { errorMessage } from '../errors.js'
import type { HistoryEntry } from '../rollout/history.js'
import type { RolloutStatus } from '../rollout/status.js'
import { storeSource, withReadSource, type ReadSource } from '../report/read-source.js'
import type { Trail } from '../report/snapshot-data.js'
import { openDatabase, type Database } from '../store/database.js'

/** What the dashboard shows of the store at one moment. */
export interface View {
  readonly readAt: string
  /** Where it came from when not the store itself (the snapshot of a running process), or why a part is missing. */
  readonly note: string | null
  readonly history: readonly HistoryEntry[]
  readonly status: RolloutStatus | null
  readonly trail: Trail | null
}

export interface Reader {
  /** The given rollout (or the latest) as the store has it now. */
  read(id?: string): Promise<View>
  close(): Promise<void>
}

/** Rollouts listed on the page. */
const HISTORY = 100

/**
 * Reads the way the read-only commands do, so the dashboard works beside whichever process drives
 * a rollout: on Postgres the tables (one pool, kept open); on PGlite the snapshot of the process
 * holding the store, or the store's final snapshot, opening the store only when neither answers
 * (read-source.ts), so the dashboard never holds the embedded store for longer than one read.
 */
export async function openReader(config: FleetConfig): Promise<Reader> {
  const gather = async (source: ReadSource, id: string | undefined, notes: string[]): Promise<View> => {
    const history = await source.history(HISTORY)
    let status: RolloutStatus | null = null
    let trail: Trail | null = null
    try {
      status = await source.status(id ?? history[0]?.id)
      trail = status ? await source.trail(status.id) : null
    } catch (error) {
      // A running process's snapshot has the latest rollout only: an older one waits for the store.
      notes.push(errorMessage(error))
    }
    return { readAt: new Date().toISOString(), note: notes.join('; ') || null, history, status, trail }
  }
  if (config.database.url) {
    const database: Database = await openDatabase(config.database)
    const { Store } = await import('../store/store.js')
    const source = storeSource(new Store(database), config)
    return { read: (id) => gather(source, id, []), close: () => database.close() }
  }
  return {
    read: async (id) => {
      const notes: string[] = []
      const ctx = { config, configSource: null, out: { stderr: { write: (text: string) => notes.push(String(text).replace(/^fleet: /, '').trim()) } } }
      return withReadSource(ctx, (source) => gather(source, id, notes))
    },
    close: async () => {},
  }
}

/** At most one read a second, however many browsers poll: concurrent requests share it. */
export function cachedReader(reader: Reader, maxAgeMs = 1_000): Reader & { state(id?: string): Promise<{ etag: string; body: string; view: View }> } {
  const cache = new Map<string, { at: number; value: Promise<{ etag: string; body: string; view: View }> }>()
  const state = (id?: string) => {
    const key = id ?? ''
    const hit = cache.get(key)
    if (hit && Date.now() - hit.at < maxAgeMs) return hit.value
    const value = reader.read(id).then((view) => {
      const body = JSON.stringify(statePayload(view))
      // The read time and the note's "(3 s ago)" change on every read: the tag is of the content only.
      const etag = `"${createHash('sha1').update(JSON.stringify({ ...view, readAt: null, note: null, status: view.status && { ...view.status, readAt: null } })).digest('hex').slice(0, 20)}"`
      return { etag, body, view }
    })
    cache.set(key, { at: Date.now(), value })
    value.catch(() => cache.delete(key))
    if (cache.size > 20) cache.delete(cache.keys().next().value!)
    return value
  }
  return { read: (id) => state(id).then((s) => s.view), close: () => reader.close(), state }
}

/** Stage sizes and how far each got, for the progress bar. */
function stageProgress(status: RolloutStatus) {
  return status.stages.map((percent, stage) => {
    const counts: Record<string, number> = {}
    let hosts = 0
    for (const h of status.hosts) {
      if (h.stage !== stage) continue
      hosts++
      counts[h.status] = (counts[h.status] ?? 0) + 1
    }
    return { stage, percent, hosts, counts }
  })
}

/** `gate-measured` events as series per bake and gate: [time, value, verdict], with the last thresholds. */
function gateSeries(trail: Trail | null) {
  const stages = new Map<number, Map<string, { name: string; kind: string; min: number | null; max: number | null; points: [string, number | null, string][] }>>()
  for (const e of trail?.events ?? []) {
    if (e.type !== 'gate-measured') continue
    const d = e.data as { stage?: unknown; gates?: unknown }
    const stage = typeof d.stage === 'number' ? d.stage : 0
    const gates = stages.get(stage) ?? new Map()
    stages.set(stage, gates)
    for (const g of Array.isArray(d.gates) ? (d.gates as Record<string, unknown>[]) : []) {
      const name = typeof g.name === 'string' ? g.name : '?'
      const series = gates.get(name) ?? { name, kind: String(g.kind ?? 'metric'), min: null, max: null, points: [] }
      gates.set(name, series)
      series.min = typeof g.min === 'number' ? g.min : null
      series.max = typeof g.max === 'number' ? g.max : null
      series.points.push([e.at, typeof g.value === 'number' ? g.value : null, String(g.verdict ?? '?')])
    }
  }
  return [...stages].map(([stage, gates]) => ({ stage, gates: [...gates.values()] }))
}

/** The page's state: everything but the hosts themselves (a page of those is `hostsPayload`). */
export function statePayload(view: View) {
  const s = view.status
  const trail = view.trail ? auditEntries(view.trail.events.slice(-300)).reverse() : []
  return {
    readAt: view.readAt,
    note: view.note,
    rollouts: view.history,
    rollout: s && {
      id: s.id,
      state: s.state,
      target: s.target,
      stages: stageProgress(s),
      currentStage: s.currentStage,
      startedAt: s.startedAt,
      finishedAt: s.finishedAt,
      owner: s.owner,
      orchestrator: s.orchestrator,
      exitCode: s.exitCode,
      error: s.error,
      counts: s.counts,
      hosts: s.hosts.length,
      gates: s.gates && { phase: s.gates.phase, verdict: s.gates.verdict, stage: s.gates.stage, reason: s.gates.reason },
    },
    plots: gateSeries(view.trail),
    trail: trail.map((e) => ({ at: e.at, type: e.type, who: e.who, manual: e.manual, what: e.what, why: e.why })),
  }
}

export interface HostQuery {
  readonly offset: number
  readonly limit: number
  readonly status: string | null
  readonly q: string | null
}

export const MAX_PAGE = 500

/** One page of the rollout's hosts, filtered by status and by a text in name, address or error. */
export function hostsPayload(view: View, query: HostQuery) {
  const hosts = view.status?.hosts ?? []
  const q = query.q?.toLowerCase() ?? null
  const matched = hosts.filter(
    (h) => (!query.status || h.status === query.status) && (!q || h.name.toLowerCase().includes(q) || h.address.toLowerCase().includes(q) || (h.error ?? '').toLowerCase().includes(q)),
  )
  const offset = Math.max(0, Math.min(query.offset, Math.max(0, matched.length - 1)))
  return { rolloutId: view.status?.id ?? null, total: hosts.length, matched: matched.length, offset, hosts: matched.slice(offset, offset + Math.min(MAX_PAGE, query.limit)) }
}
