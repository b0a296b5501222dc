import type { Kysely } from 'kysely'

import { fenced, type Fence } from './lease.js'

import { subset, toColumns, toRecord } from './rows.js'
import type { Schema } from './schema.js'

export interface NewEvent {
  readonly rolloutId: string | null
  readonly type: string
  readonly host?: string | null
  readonly data: unknown
  readonly at?: Date
}

export interface EventRecord {
  at: Date
  type: string
  host: string | null
  data: unknown
}

const EVENT = { rolloutId: 'rollout_id', at: 'at', type: 'type', host: 'host', data: 'data' } as const satisfies Record<keyof NewEvent, keyof Schema['fleet_events']>
/** A rollout's log is read by rollout: the rollout id is not repeated in each event. */
const LOGGED = subset(EVENT, 'at', 'type', 'host', 'data')

/** data is stored as JSON text; an event without a host says so with null. */
const eventColumns = (e: NewEvent, at: Date) => toColumns(EVENT, { ...e, at, host: e.host ?? null, data: JSON.stringify(e.data) })

/** Inserts events in order (500 a statement), inside the writer's fenced transaction; their ids, in order. */
export async function insertEvents(tx: Kysely<Schema>, events: readonly (NewEvent & { at: Date })[]): Promise<string[]> {
  const ids: string[] = []
  for (let i = 0; i < events.length; i += 500) {
    const rows = await tx
      .insertInto('fleet_events')
      .values(events.slice(i, i + 500).map((e) => eventColumns(e, e.at)))
      .returning('id')
      .execute()
    ids.push(...rows.map((r) => String(r.id)))
  }
  return ids
}

/** The rollouts' event log (fleet_events), append-only. */
export class Events {
  constructor(private readonly db: Kysely<Schema>) {}

  /** Several events in one INSERT, in order, by the holder of `fence` only; their ids, in order. */
  async appendEvents(fence: Fence, events: readonly (NewEvent & { at: Date })[]): Promise<string[]> {
    if (events.length === 0) return []
    return fenced(this.db, fence, (tx) => insertEvents(tx, events))
  }

  /** The rollout's log in order; only the given event types when `types` is passed. */
  async listEvents(rolloutId: string, types?: readonly string[]): Promise<EventRecord[]> {
    let query = this.db.selectFrom('fleet_events').selectAll().where('rollout_id', '=', rolloutId)
    if (types) query = query.where('type', 'in', [...types])
    const rows = await query.orderBy('id').execute()
    return rows.map((r) => ({ ...toRecord(LOGGED, r), at: new Date(r.at), data: JSON.parse(r.data) as unknown }))
  }
}
