import type { StatusCounts } from './events.js'
import { EXIT_CODE_MEANING } from './exit-code.js'
import type { RolloutState } from '../types.js'
import { sanitizeLine } from '../text/sanitize.js'

const plural = (n: number, one: string, many = `${one}s`): string => `${n} ${n === 1 ? one : many}`

/**
 * What happened to the hosts that did not simply succeed, from the recorded
 * counts only: a host that failed before anything changed is never said to
 * have been rolled back, and hosts never started (or held meanwhile) are called untouched.
 */
export function describeHosts(counts: StatusCounts): string[] {
  const parts: string[] = []
  if (counts.rollback_failed) parts.push(`${plural(counts.rollback_failed, 'host')} could not be rolled back and may be down`)
  if (counts.rolled_back) parts.push(`${plural(counts.rolled_back, 'host')} rolled back to ${counts.rolled_back === 1 ? 'its' : 'their'} previous version`)
  if (counts.failed) parts.push(`${plural(counts.failed, 'host')} failed before anything changed on ${counts.failed === 1 ? 'it' : 'them'}`)
  if (counts.updating) parts.push(`${plural(counts.updating, 'host')} left updating (run \`fleet rollout resume\`)`)
  if (counts.pending) parts.push(`${plural(counts.pending, 'host')} not started`)
  if (counts.held) parts.push(`${plural(counts.held, 'host')} held, never touched`)
  return parts
}

/** Why a halted rollout halted, from its recorded error: gates (and what their revert did), else the stage threshold. */
const haltCause = (error: string | null | undefined): string => (error && /^(gates failed|failure budget|no deploy window)\b/.test(error) ? error : 'a stage failed too often')

/**
 * The one line that explains an exit code to a person, derived from the
 * recorded state, counts and error, so that it is always true of this
 * rollout and names the cause (threshold, gates, revert, interrupt).
 */
export function describeOutcome(outcome: { readonly state: RolloutState; readonly exitCode: number; readonly counts: StatusCounts; readonly error?: string | null }): string {
  const hosts = describeHosts(outcome.counts)
  const detail = hosts.length ? `: ${hosts.join(', ')}` : ''
  const error = outcome.error ? sanitizeLine(outcome.error) : null
  switch (outcome.exitCode) {
    case 0:
      if (outcome.state === 'aborted') return `aborted${detail}`
      // Hosts held meanwhile still run what they ran: the line never claims every host succeeded then.
      return hosts.length ? `every other targeted host succeeded or was already on the target; ${hosts.join(', ')}` : (EXIT_CODE_MEANING[0] ?? '')
    case 3:
      return outcome.state === 'aborted' ? `aborted, but moving hosts back halted${detail}` : `halted: ${haltCause(error)}${detail}`
    case 4:
      return `completed, but some hosts failed${detail}`
    case 5:
      return `a rollback failed: at least one host may be down and needs a person${detail}`
    case 7:
      return `paused${error ? `: ${error}` : ''}; \`fleet rollout resume\` or \`promote --reason …\` continues`
    case 130:
      // A stop that cut a revert short says so: those hosts are still on the target.
      if (error && /interrupted\b/.test(error) && /revert|abort --rollback/.test(error)) return `interrupted: ${error}${detail}`
      return `interrupted; every host is in a recorded state${detail}; \`fleet rollout resume\` continues`
    default:
      return `${EXIT_CODE_MEANING[outcome.exitCode] ?? 'unknown exit code'}${detail}`
  }
}
