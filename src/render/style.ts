import { Chalk, type ChalkInstance } from 'chalk'

import type { HostStatus, RolloutState } from '../types.js'

/** A chalk whose colour is decided by the caller (flags, NO_COLOR), never by global detection. */
export const palette = (color: boolean): ChalkInstance => new Chalk({ level: color ? 1 : 0 })

export const statusColor = (c: ChalkInstance, status: HostStatus | RolloutState): ((s: string) => string) => {
  switch (status) {
    case 'success':
    case 'completed':
      return c.green
    case 'skipped':
    case 'held':
    case 'pending':
      return c.gray
    case 'updating':
    case 'running':
      return c.cyan
    case 'failed':
    case 'rolled_back':
    case 'halted':
    case 'interrupted':
    case 'aborted':
      return c.yellow
    case 'rollback_failed':
      return c.red.bold
    default:
      return (s: string) => s
  }
}

export const shortSha = (sha: string | null | undefined): string => (sha ? sha.slice(0, 12) : '-')
