/**
 * `rollout.cooldown`: after a rollout that went wrong, no new rollout starts (by `start` or `tick`)
 * for that long, unless `--ignore-cooldown`. "Went wrong" is exactly: it ended `halted` (a stage
 * failed too often, or its gates failed: a gate revert ends `halted` too) or it was reverted (the
 * `reverted` flag, for a revert recorded under another state). Not `failed` (fleet's own error,
 * nothing wrong with the release), `aborted` (a person's decision; they can start again),
 * `interrupted` or `completed`, and not a rollout still active (the lock refuses that one).
 * Only the last finished rollout counts: once a newer one finished, its outcome decides.
 */
export interface FinishedRollout {
  readonly id?: string
  readonly state: string
  readonly finishedAt: Date | null
  /** The rollout's hosts were moved back by a gate revert, whatever state it ended in. */
  readonly reverted?: boolean
}

export type Cooldown =
  | { readonly blocked: false }
  | { readonly blocked: true; readonly until: Date; readonly rolloutId: string | null; readonly cause: 'halted' | 'reverted' }

export function cooldownStatus(last: FinishedRollout | null, cooldownMs: number, now: Date | number): Cooldown {
  if (!last || last.finishedAt === null || cooldownMs <= 0) return { blocked: false }
  const cause = last.reverted ? 'reverted' : last.state === 'halted' ? 'halted' : null
  if (cause === null) return { blocked: false }
  const until = new Date(last.finishedAt.getTime() + cooldownMs)
  const at = typeof now === 'number' ? now : now.getTime()
  return at < until.getTime() ? { blocked: true, until, rolloutId: last.id ?? null, cause } : { blocked: false }
}

/** The exit-6 message: why, until when, and the way out. */
export function cooldownMessage(cooldown: Extract<Cooldown, { blocked: true }>): string {
  const which = cooldown.rolloutId ? `rollout ${cooldown.rolloutId}` : 'the last rollout'
  return `cooldown until ${cooldown.until.toISOString()}: ${which} was ${cooldown.cause} (rollout.cooldown); pass --ignore-cooldown --reason <text> to start anyway`
}
