import type { Kysely } from 'kysely'

import type { HostStatus } from '../types.js'
import type { Database, StoreKind } from './database.js'
import { Events, type EventRecord, type NewEvent } from './events.js'
import { HostKeys } from './host-keys.js'
import { Hosts, type HostPatch, type HostRow, type NewHost } from './hosts-table.js'
import { Lease, type LeaseResult, type LeaseState } from './lease.js'
import { RolloutHosts, type RolloutHostPatch, type RolloutHostRecord, type RolloutHostState } from './rollout-hosts.js'
import { Rollouts, type RolloutPatch, type RolloutRecord } from './rollouts.js'
import type { Schema } from './schema.js'

export type { HostPatch, HostRow, NewHost } from './hosts-table.js'
export type { RolloutHostPatch, RolloutHostRecord, RolloutHostState } from './rollout-hosts.js'
export type { RolloutRecord } from './rollouts.js'
export type { LeaseResult } from './lease.js'

/**
 * fleet's own tables: the built-in inventory, rollouts, per-host results, events, pinned host keys,
 * the lease. The one object the rest of fleet passes around; each table's queries live in its own
 * file, and every method here hands its call to that table as is.
 */
export class Store {
  readonly db: Kysely<Schema>
  readonly kind: StoreKind
  private readonly hosts: Hosts
  private readonly rollouts: Rollouts
  private readonly rolloutHosts: RolloutHosts
  private readonly events: Events
  private readonly hostKeys: HostKeys
  private readonly lease: Lease

  constructor(database: Database) {
    this.db = database.db
    this.kind = database.kind
    this.hosts = new Hosts(this.db)
    this.rollouts = new Rollouts(this.db)
    this.rolloutHosts = new RolloutHosts(this.db)
    this.events = new Events(this.db)
    this.hostKeys = new HostKeys(this.db)
    this.lease = new Lease(this.db)
  }

  // ---- built-in inventory (hosts-table.ts) ---------------------------------

  listHosts(options: { activeOnly?: boolean } = {}): Promise<HostRow[]> {
    return this.hosts.listHosts(options)
  }

  upsertHosts(hosts: readonly NewHost[]): Promise<void> {
    return this.hosts.upsertHosts(hosts)
  }

  addHost(host: NewHost): Promise<boolean> {
    return this.hosts.addHost(host)
  }

  updateHost(name: string, patch: Omit<HostPatch, 'name'>): Promise<boolean> {
    return this.hosts.updateHost(name, patch)
  }

  importHosts(patches: readonly HostPatch[], options: { readonly deactivateMissing?: boolean } = {}): Promise<{ added: string[]; updated: string[]; deactivated: string[] }> {
    return this.hosts.importHosts(patches, options)
  }

  setHostActive(name: string, active: boolean): Promise<boolean> {
    return this.hosts.setHostActive(name, active)
  }

  recordHostState(name: string, state: { status: HostStatus; currentVersion?: string | null; previousVersion?: string | null }): Promise<void> {
    return this.hosts.recordHostState(name, state)
  }

  runReadOnlyQuery(query: string): Promise<Record<string, unknown>[]> {
    return this.hosts.runReadOnlyQuery(query)
  }

  // ---- rollouts (rollouts.ts) and their hosts (rollout-hosts.ts) -----------

  createRollout(rollout: RolloutRecord, hosts: readonly RolloutHostRecord[]): Promise<void> {
    return this.rollouts.createRollout(rollout, hosts)
  }

  updateRollout(id: string, patch: RolloutPatch): Promise<void> {
    return this.rollouts.updateRollout(id, patch)
  }

  getRollout(id?: string): Promise<RolloutRecord | null> {
    return this.rollouts.getRollout(id)
  }

  listRollouts(limit: number): Promise<RolloutRecord[]> {
    return this.rollouts.listRollouts(limit)
  }

  updateRolloutHost(id: string, name: string, patch: RolloutHostPatch): Promise<void> {
    return this.rolloutHosts.updateRolloutHost(id, name, patch)
  }

  listRolloutHosts(id: string): Promise<RolloutHostRecord[]> {
    return this.rolloutHosts.listRolloutHosts(id)
  }

  listRolloutHostStates(id: string): Promise<RolloutHostState[]> {
    return this.rolloutHosts.listRolloutHostStates(id)
  }

  countRolloutHosts(ids: readonly string[]): Promise<Map<string, Record<string, number>>> {
    return this.rolloutHosts.countRolloutHosts(ids)
  }

  latestPreviousVersion(name: string): Promise<string | null> {
    return this.rolloutHosts.latestPreviousVersion(name)
  }

  // ---- events (events.ts) --------------------------------------------------

  appendEvent(event: NewEvent): Promise<void> {
    return this.events.appendEvent(event)
  }

  appendEvents(events: readonly (NewEvent & { at: Date })[]): Promise<void> {
    return this.events.appendEvents(events)
  }

  listEvents(rolloutId: string, types?: readonly string[]): Promise<EventRecord[]> {
    return this.events.listEvents(rolloutId, types)
  }

  // ---- pinned host keys (host-keys.ts) -------------------------------------

  getHostKey(hostId: string): Promise<{ keyType: string; key: string } | null> {
    return this.hostKeys.getHostKey(hostId)
  }

  pinHostKey(hostId: string, keyType: string, key: string): Promise<boolean> {
    return this.hostKeys.pinHostKey(hostId, keyType, key)
  }

  forgetHostKey(hostId: string): Promise<boolean> {
    return this.hostKeys.forgetHostKey(hostId)
  }

  // ---- the one-rollout-at-a-time lease (lease.ts) --------------------------

  acquireLease(rolloutId: string, holder: string, now = new Date()): Promise<LeaseResult> {
    return this.lease.acquireLease(rolloutId, holder, now)
  }

  takeOverLease(rolloutId: string, holder: string, now = new Date()): Promise<boolean> {
    return this.lease.takeOverLease(rolloutId, holder, now)
  }

  heartbeat(rolloutId: string, now = new Date()): Promise<void> {
    return this.lease.heartbeat(rolloutId, now)
  }

  releaseLease(rolloutId: string): Promise<void> {
    return this.lease.releaseLease(rolloutId)
  }

  leaseState(): Promise<LeaseState> {
    return this.lease.leaseState()
  }
}
