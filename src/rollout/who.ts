import { hostname, userInfo } from 'node:os'

/** user@machine: a person, for the audit trail. */
export const actor = (): string => {
  let user = 'unknown'
  try {
    user = userInfo().username
  } catch {
    /* no passwd entry in some containers */
  }
  return `${user}@${hostname()}`
}

/** user@machine pid n: this process, for the lease and the record. */
export const owner = (): string => `${actor()} pid ${process.pid}`

/** The person behind an owner (its pid dropped). */
export const actorOf = (owner: string): string => owner.replace(/ pid \d+$/, '')
