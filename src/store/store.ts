import type { Kysely } from 'kysely'

import type { HostStatus } from '../types.js'
import type { Database, StoreKind } from './database.js'
import { Events, insertEvents, type EventRecord, type NewEvent } from './events.js'
import { HostKeys } from './host-keys.js'
import { Hosts, writeHostState, type HoldRow, type HostPatch, type HostRow, type HostState, type NewHost } from './hosts-table.js'
import { fenced, Lease, type Fence, type LeaseResult, type LeaseState, type LostLeaseError } from './lease.js'
import { claimRequestFiles, removeRequestFile, writeAnswerFile } from './request-files.js'
import { Requests, type NewRequest, type RolloutRequestRecord } from './requests.js'
import { patchRolloutHost, RolloutHosts, type RolloutHostPatch, type RolloutHostRecord, type RolloutHostState } from './rollout-hosts.js'
import { Rollouts, type RolloutPatch, type RolloutRecord } from './rollouts.js'
import type { Schema } from './schema.js'

export type { HoldRow, HostPatch, HostRow, HostState, NewHost } from './hosts-table.js'
export type { RolloutHostPatch, RolloutHostRecord, RolloutHostState } from './rollout-hosts.js'
export type { RolloutRecord } from './rollouts.js'
export type { Fence, LeaseResult, LeaseState } from './lease.js'
export { LostLeaseError } from './lease.js'
export type { NewRequest, RequestKind, RolloutRequestRecord } from './requests.js'

/**
 * fleet's own tables: the built-in inventory, rollouts, per-host results, events, pinned host keys,
 * the lease. The one object the rest of fleet passes around; each table's queries live in its own
 * file, and every method here hands its call to that table as is.
 */
export class Store {
  readonly db: Kysely<Schema>
  readonly kind: StoreKind
  /** The embedded store's directory (null on Postgres): where requests from other processes wait as files. */
  readonly dir: string | null
  private readonly hosts: Hosts
  private readonly rollouts: Rollouts
  private readonly rolloutHosts: RolloutHosts
  private readonly events: Events
  private readonly hostKeys: HostKeys
  private readonly lease: Lease
  private readonly requests: Requests
  /** Requests this process took in from files beside the embedded store: answered by file when settled. */
  private readonly answerByFile = new Set<string>()

  constructor(database: Database) {
    this.db = database.db
    this.kind = database.kind
    this.dir = database.dir
    this.hosts = new Hosts(this.db)
    this.rollouts = new Rollouts(this.db)
    this.rolloutHosts = new RolloutHosts(this.db)
    this.events = new Events(this.db)
    this.hostKeys = new HostKeys(this.db)
    this.lease = new Lease(this.db)
    this.requests = new Requests(this.db)
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

  recordHostState(fence: Fence, name: string, state: HostState): Promise<void> {
    return this.hosts.recordHostState(fence, name, state)
  }

  listHolds(): Promise<HoldRow[]> {
    return this.hosts.listHolds()
  }

  hold(hold: Omit<HoldRow, 'since'>): Promise<void> {
    return this.hosts.hold(hold)
  }

  unhold(name: string): Promise<boolean> {
    return this.hosts.unhold(name)
  }

  runReadOnlyQuery(query: string, options: { readonly timeoutMs: number; readonly maxRows: number }): Promise<Record<string, unknown>[]> {
    return this.hosts.runReadOnlyQuery(query, options)
  }

  // ---- rollouts (rollouts.ts) and their hosts (rollout-hosts.ts) -----------
  // Every write names the fence (lease epoch) its writer holds; see lease.ts.

  createRollout(fence: Fence, rollout: Omit<RolloutRecord, 'epoch'>, hosts: readonly RolloutHostRecord[]): Promise<void> {
    return this.rollouts.createRollout(fence, rollout, hosts)
  }

  updateRollout(fence: Fence, patch: RolloutPatch): Promise<void> {
    return this.rollouts.updateRollout(fence, patch)
  }

  getRollout(id?: string): Promise<RolloutRecord | null> {
    return this.rollouts.getRollout(id)
  }

  listRollouts(limit: number): Promise<RolloutRecord[]> {
    return this.rollouts.listRollouts(limit)
  }

  updateRolloutHost(fence: Fence, name: string, patch: RolloutHostPatch): Promise<void> {
    return this.rolloutHosts.updateRolloutHost(fence, name, patch)
  }

  recordHandRollback(fence: Fence, rolloutId: string, name: string, patch: RolloutHostPatch): Promise<boolean> {
    return this.rolloutHosts.recordHandRollback(fence, rolloutId, name, patch)
  }

  claimRolloutHost(fence: Fence, name: string, expected: HostStatus, patch: RolloutHostPatch): Promise<boolean> {
    return this.rolloutHosts.claimRolloutHost(fence, name, expected, patch)
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

  latestRolloutOf(name: string): Promise<string | null> {
    return this.rolloutHosts.latestRolloutOf(name)
  }

  latestPreviousVersion(name: string): Promise<string | null> {
    return this.rolloutHosts.latestPreviousVersion(name)
  }

  recordedVersions(names: readonly string[]): Promise<Map<string, string>> {
    return this.rolloutHosts.recordedVersions(names)
  }

  /**
   * A host's outcome as one unit, in one fenced transaction: its rollout row, its inventory row and
   * the events that tell it (the outcome's event last, after the progress written in batches before
   * it). A crash or a takeover leaves all of it or none: never a finished row without its event.
   */
  recordHostOutcome(fence: Fence, name: string, patch: RolloutHostPatch, state: HostState, events: readonly (NewEvent & { at: Date })[]): Promise<string[]> {
    return fenced(this.db, fence, async (tx) => {
      await patchRolloutHost(tx, fence.leaseId, name, patch)
      await writeHostState(tx, name, state)
      return insertEvents(tx, events)
    })
  }

  // ---- events (events.ts) --------------------------------------------------

  appendEvents(fence: Fence, events: readonly (NewEvent & { at: Date })[]): Promise<string[]> {
    return this.events.appendEvents(fence, events)
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

  // ---- requests to the rollout in progress (requests.ts) -------------------

  addRequest(request: NewRequest): Promise<void> {
    return this.requests.addRequest(request)
  }

  getRequest(id: string): Promise<RolloutRequestRecord | null> {
    return this.requests.getRequest(id)
  }

  /**
   * Requests nobody consumed yet, after taking in those left as files beside the embedded store:
   * a file sent to this process is for the rollout it drives; one sent to a process that ended
   * before taking it in is recorded as not applied (never applied to a later rollout).
   */
  async pendingRequests(rolloutId: string): Promise<RolloutRequestRecord[]> {
    if (this.dir)
      for (const { request, path } of claimRequestFiles(this.dir)) {
        const { to, ...fields } = request
        if (to?.pid === process.pid) {
          await this.requests.addRequest({ ...fields, rolloutId: fields.rolloutId ?? rolloutId })
          this.answerByFile.add(fields.id)
        } else
          await this.requests.addRequest(
            { ...fields, rolloutId: fields.rolloutId ?? rolloutId },
            { by: 'fleet', outcome: `not applied: sent to ${to ? `pid ${to.pid}` : 'a process'} that ended before taking it in` },
          )
        removeRequestFile(path)
      }
    return this.requests.pendingRequests(rolloutId)
  }

  listRequests(rolloutId: string): Promise<RolloutRequestRecord[]> {
    return this.requests.listRequests(rolloutId)
  }

  /** Consumes a request once; one that came as a file gets its answer as a file too (its sender waits for it). */
  async settleRequest(fence: Fence, id: string, settledBy: string, outcome: string): Promise<boolean> {
    const settled = await this.requests.settleRequest(fence, id, settledBy, outcome)
    if (settled && this.dir && this.answerByFile.delete(id)) writeAnswerFile(this.dir, id, { outcome, rolloutId: fence.leaseId })
    return settled
  }

  // ---- the one-rollout-at-a-time lease, a fence on the database's clock (lease.ts)

  acquireLease(leaseId: string, holder: string): Promise<LeaseResult> {
    return this.lease.acquireLease(leaseId, holder)
  }

  takeOverLease(seen: { leaseId: string; epoch: number }, holder: string, holderDead: boolean): Promise<Fence | null> {
    return this.lease.takeOverLease(seen, holder, holderDead)
  }

  heartbeat(fence: Fence): Promise<{ held: boolean; now: Date }> {
    return this.lease.heartbeat(fence)
  }

  releaseLease(fence: Pick<Fence, 'leaseId' | 'epoch'>): Promise<boolean> {
    return this.lease.releaseLease(fence)
  }

  leaseState(): Promise<LeaseState> {
    return this.lease.leaseState()
  }

  /** Who `fence`'s holder lost its lease to (the holder now, or the rollout's last owner once released). */
  lostLease(fence: Fence): Promise<LostLeaseError> {
    return this.lease.lost(fence)
  }

  /** The database's clock: the one clock every process driving a rollout agrees on. */
  now(): Promise<Date> {
    return this.lease.now()
  }
}

/*
 * Narrow views of the store, one per kind of consumer: the type says what each part of fleet may
 * touch (the journal only appends events, the inbox only settles requests, …), and a test double
 * of one consumer needs only those methods.
 */
/** The journal and the notifier: append events under a fence. */
export type EventWriter = Pick<Store, 'appendEvents'>
/** A run's inbox of pause/promote requests. */
export type RequestInbox = Pick<Store, 'pendingRequests' | 'settleRequest'>
/** Which hosts are held (admission of hosts into a running rollout). */
export type HoldReader = Pick<Store, 'listHolds'>
/** One host's work: its row and the inventory's mirror, under the fence. */
export type HostRecorder = Pick<Store, 'claimRolloutHost' | 'recordHostState' | 'updateRolloutHost' | 'recordHostOutcome'>
/** What the read-only views (history, metrics, cooldown) read of past rollouts. */
export type RolloutReader = Pick<Store, 'listRollouts' | 'countRolloutHosts' | 'listEvents'>
