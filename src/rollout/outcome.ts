import type { StatusCounts } from './events.js'
import { EXIT_CODE_MEANING } from './exit-code.js'
import type { RolloutState } from '../types.js'

const plural = (n: number, one: string, many = `${one}s`): string => `${n} ${n === 1 ? one : many}`

/**
 * What happened to the hosts that did not simply succeed, from the recorded
 * counts only: a host that failed before anything changed is never said to
 * have been rolled back, and hosts never started are called untouched.
 */
export function describeHosts(counts: StatusCounts): string[] {
  const parts: string[] = []
  if (counts.rollback_failed) parts.push(`${plural(counts.rollback_failed, 'host')} could not be rolled back and may be down`)
  if (counts.rolled_back) parts.push(`${plural(counts.rolled_back, 'host')} rolled back to ${counts.rolled_back === 1 ? 'its' : 'their'} previous version`)
  if (counts.failed) parts.push(`${plural(counts.failed, 'host')} failed before anything changed on ${counts.failed === 1 ? 'it' : 'them'}`)
  if (counts.updating) parts.push(`${plural(counts.updating, 'host')} left updating (run \`fleet rollout resume\`)`)
  if (counts.pending) parts.push(`${plural(counts.pending, 'host')} not started`)
  return parts
}

/**
 * The one line that explains an exit code to a person, derived from the
 * recorded state and counts so that it is always true of this rollout.
 */
export function describeOutcome(outcome: { readonly state: RolloutState; readonly exitCode: number; readonly counts: StatusCounts }): string {
  const hosts = describeHosts(outcome.counts)
  const detail = hosts.length ? `: ${hosts.join(', ')}` : ''
  switch (outcome.exitCode) {
    case 0:
      return outcome.state === 'aborted' ? `aborted${detail}` : (EXIT_CODE_MEANING[0] ?? '')
    case 3:
      return outcome.state === 'aborted' ? `aborted, but moving hosts back halted${detail}` : `halted: a stage failed too often${detail}`
    case 4:
      return `completed, but some hosts failed${detail}`
    case 5:
      return `a rollback failed: at least one host may be down and needs a person${detail}`
    case 130:
      return `interrupted; every host is in a recorded state${detail}; \`fleet rollout resume\` continues`
    default:
      return `${EXIT_CODE_MEANING[outcome.exitCode] ?? 'unknown exit code'}${detail}`
  }
}
