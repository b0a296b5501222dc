import type { ColumnType, Generated } from 'kysely'

/** Timestamps are written as Date and read back as Date on both Postgres and PGlite. */
type Timestamp = ColumnType<Date, Date | string, Date | string>

export interface HostsTable {
  name: string
  address: string
  port: number | null
  ssh_user: string | null
  app_dir: string | null
  active: Generated<boolean>
  current_version: string | null
  previous_version: string | null
  status: string | null
  updated_at: Timestamp | null
  created_at: Generated<Timestamp>
  ring: string | null
  timezone: string | null
}

/** `fleet hosts hold`: fleet's own record, by host name, whatever the inventory source. */
export interface HoldsTable {
  name: string
  reason: string
  actor: string
  since: Generated<Timestamp>
  until: Timestamp | null
}

export interface RolloutsTable {
  id: string
  state: string
  ref: string
  sha: string
  stages: string // JSON array of cumulative percentages
  seed: string
  current_stage: number
  /** The settings the rollout runs with (JSON), so resume/status need no config. */
  settings: string
  owner: string
  started_at: Timestamp
  finished_at: Timestamp | null
  heartbeat_at: Timestamp
  exit_code: number | null
  error: string | null
  /** The epoch of the lease its current owner holds (the fence its writes name). */
  epoch: Generated<number>
}

export interface RolloutHostsTable {
  rollout_id: string
  name: string
  address: string
  port: number
  ssh_user: string
  app_dir: string
  position: number
  stage: number
  status: string
  step: string | null
  previous_version: string | null
  new_version: string | null
  error: string | null
  started_at: Timestamp | null
  finished_at: Timestamp | null
  /** The epoch that claimed the host (its `updating` write). */
  epoch: number | null
}

export interface EventsTable {
  id: Generated<number>
  rollout_id: string | null
  at: Timestamp
  type: string
  host: string | null
  data: string // JSON
}

export interface HostKeysTable {
  host_id: string
  key_type: string
  key: string // base64 of the SSH wire-format public key
  pinned_at: Timestamp
}

export interface LockTable {
  id: number
  rollout_id: string | null
  holder: string | null
  acquired_at: Timestamp | null
  heartbeat_at: Timestamp | null
  /** Incremented by every acquisition: the fencing token. */
  epoch: Generated<number>
  /** This store's identity, so a host compares epochs of one store only. */
  store_id: string | null
}

/** Pause and promote requests, consumed once by id by whoever drives the rollout. */
export interface RequestsTable {
  id: string
  rollout_id: string
  kind: string
  actor: string
  reason: string | null
  skip_bake: Generated<boolean>
  requested_at: Generated<Timestamp>
  settled_at: Timestamp | null
  settled_by: string | null
  outcome: string | null
}

export interface Schema {
  fleet_hosts: HostsTable
  fleet_rollouts: RolloutsTable
  fleet_rollout_hosts: RolloutHostsTable
  fleet_events: EventsTable
  fleet_host_keys: HostKeysTable
  fleet_lock: LockTable
  fleet_requests: RequestsTable
  fleet_holds: HoldsTable
}
