import { actor } from './who.js'

import { cooldownMessage, cooldownStatus, type Cooldown, type FinishedRollout } from '../audit/cooldown.js'
import { ExitCode, FleetError, UsageError } from '../errors.js'
import type { WindowSpec } from '../config/shape.js'
import type { Host } from '../types.js'
import type { RolloutEvent } from './events.js'
import { closedFor, type IgnoredWindow } from './window.js'
import type { RolloutReader, Store } from '../store/store.js'

/** What a person asked: `--ignore-cooldown --reason <text>`. */
export interface CooldownOverride {
  readonly ignoreCooldown?: boolean | undefined
  readonly reason?: string | undefined
}

/** A cooldown that was in force and ignored on purpose: recorded as a `cooldown-ignored` event. */
export interface IgnoredCooldown {
  readonly until: Date
  /** The rollout whose outcome started the cooldown. */
  readonly cause: 'halted' | 'reverted'
  readonly causedBy: string | null
  readonly reason: string
  /** user@machine of the person who ignored it. */
  readonly actor: string
}

/** How many recent rollouts are looked through for the last finished one (the newest may still run). */
const RECENT = 20


/** Checks the flags alone, before anything is opened: `--ignore-cooldown` needs a reason, a reason needs the flag. */
export function checkCooldownFlags(flags: CooldownOverride & { readonly ignoreWindow?: boolean | undefined }): void {
  const reason = flags.reason?.trim()
  if (flags.ignoreCooldown && !reason) throw new UsageError('--ignore-cooldown needs --reason <text> (it is recorded in the audit trail)')
  if (flags.ignoreWindow && !reason) throw new UsageError('--ignore-window needs --reason <text> (it is recorded in the audit trail)')
  if (!flags.ignoreCooldown && !flags.ignoreWindow && flags.reason !== undefined) throw new UsageError('--reason is only taken with --ignore-cooldown or --ignore-window here')
}

/** Outside every deploy window: exit 6 naming the next opening, unless a person overrides it (then recorded). */
export function windowGate(windows: readonly WindowSpec[], hosts: readonly Host[], now: number, override: { readonly ignoreWindow?: boolean | undefined; readonly reason?: string | undefined }): IgnoredWindow | null {
  const closed = closedFor(windows, hosts, now)
  if (!closed) return null
  if (!override.ignoreWindow)
    throw new FleetError(`outside every deploy window (rollout.windows): ${closed.opensAt ? `the next opens at ${closed.opensAt}` : 'none ever opens for these hosts'}; pass --ignore-window --reason <text> to start anyway`, ExitCode.locked)
  return { opensAt: closed.opensAt, actor: actor(), reason: (override.reason ?? '').trim() }
}

/** The last finished rollout, with `reverted` when gates failed and reverted it (only read when it could matter). */
export async function lastFinishedRollout(store: Pick<RolloutReader, 'listRollouts' | 'listEvents'>, cooldownMs: number, now: Date): Promise<FinishedRollout | null> {
  const last = (await store.listRollouts(RECENT)).find((r) => r.finishedAt !== null)
  if (!last || last.finishedAt === null) return null
  let reverted = false
  // The events are only read when a revert could still block: halted blocks anyway, an old one never does.
  if (last.state !== 'halted' && last.finishedAt.getTime() + cooldownMs > now.getTime())
    reverted = (await store.listEvents(last.id)).some((e) => {
      const data = e.data as Record<string, unknown> | null
      return e.type === 'gates-failed' && (data?.onFail === 'revert' || data?.action === 'revert')
    })
  return { id: last.id, state: last.state, finishedAt: last.finishedAt, reverted }
}

/**
 * The cooldown check of `rollout start` and `rollout tick` (design: `rollout.cooldown`). Refuses with
 * exit 6 and the "cooldown until …" message while a cooldown is in force, unless overridden; returns
 * the ignored cooldown (to record with cooldownIgnoredEvent once the new rollout has an id), or null
 * when none is in force. Call checkCooldownFlags first for the usage errors.
 */
export async function cooldownGate(store: Pick<RolloutReader, 'listRollouts' | 'listEvents'> & Pick<Store, 'now'>, cooldownMs: number, override: CooldownOverride = {}, at?: Date): Promise<IgnoredCooldown | null> {
  if (cooldownMs <= 0) return null
  // The database's clock: a machine whose own clock runs ahead cannot skip a cooldown.
  const now = at ?? (await store.now())
  const cooldown: Cooldown = cooldownStatus(await lastFinishedRollout(store, cooldownMs, now), cooldownMs, now)
  if (!cooldown.blocked) return null
  if (!override.ignoreCooldown) throw new FleetError(cooldownMessage(cooldown), ExitCode.locked)
  return { until: cooldown.until, cause: cooldown.cause, causedBy: cooldown.rolloutId, reason: (override.reason ?? '').trim(), actor: actor() }
}

/** The audit event of an ignored cooldown, on the rollout that went ahead (recorded by its run, after rollout-started). */
export const cooldownIgnoredEvent = (ignored: IgnoredCooldown, rolloutId: string, at: Date): RolloutEvent => ({
  type: 'cooldown-ignored',
  rolloutId,
  until: ignored.until.toISOString(),
  cause: ignored.cause,
  causedBy: ignored.causedBy,
  actor: ignored.actor,
  reason: ignored.reason,
  at: at.toISOString(),
})
