export type Sha = string & { readonly __brand: 'Sha' }

export const HOST_STATUSES = [
  'pending',
  'updating',
  'success',
  'failed',
  'rolled_back',
  'rollback_failed',
  'skipped',
  /** Held (`fleet hosts hold`) after the rollout began, before it was started: never touched, final, in no failure rate. */
  'held',
] as const
export type HostStatus = (typeof HOST_STATUSES)[number]

export const ROLLOUT_STATES = ['running', 'baking', 'paused', 'completed', 'halted', 'failed', 'aborted', 'interrupted'] as const
export type RolloutState = (typeof ROLLOUT_STATES)[number]

/** A validated inventory entry, with the config's defaults already applied. */
export interface Host {
  readonly name: string
  readonly address: string
  readonly port: number
  readonly user: string
  readonly appDir: string
  /** The ring it belongs to (`rollout.rings`); null or absent: the last ring. */
  readonly ring?: string | null
  /** IANA time zone, for windows with `"timezone": "host"`. */
  readonly timezone?: string | null
  /** Why it is held out of every rollout (`fleet hosts hold`, or the inventory's `hold` column); absent: not held. */
  readonly hold?: string | null
}

export type StepName =
  | 'connect'
  | 'version'
  | 'fetch'
  | 'prepare'
  | 'checkout'
  | 'build'
  | 'activate'
  | 'install'
  | 'restart'
  | 'verify'
  | 'health'
  | 'confirm'
  | 'rollback'
