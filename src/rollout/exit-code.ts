import { ExitCode } from '../errors.js'
import type { StatusCounts } from './events.js'
import type { RolloutState } from '../types.js'

/**
 * The design's exit codes, most urgent first: a host that may be down (5)
 * outranks a halt (3), which outranks hosts rolled back under the threshold (4).
 */
export interface FinishOptions {
  /** Moving hosts back (abort --rollback, a gate revert) stopped after a stage failed too often. */
  readonly revertHalted?: boolean
  /** A stop cut moving hosts back short: hosts are still on the target. */
  readonly revertInterrupted?: boolean
}

export function exitCodeFor(state: RolloutState, counts: StatusCounts, options: FinishOptions = {}): ExitCode {
  // A command a stop cut short before it did what it promised never exits 0.
  if (state === 'interrupted' || options.revertInterrupted) return ExitCode.interrupted
  // Waiting for a person or for gate data: nothing was promoted or rolled back by the pause.
  if (state === 'paused') return ExitCode.paused
  if (counts.rollback_failed > 0) return ExitCode.rollbackFailed
  if (state === 'halted') return ExitCode.halted
  if (state === 'failed') return ExitCode.internal
  // `fleet rollout abort` did what it was asked, unless moving hosts back had to stop.
  if (state === 'aborted') return options.revertHalted ? ExitCode.halted : ExitCode.ok
  if (counts.failed + counts.rolled_back > 0) return ExitCode.rolledBack
  // Hosts held since the rollout began were never tried: they count in no failure (the outcome line names them).
  return ExitCode.ok
}

export const EXIT_CODE_MEANING: Record<number, string> = {
  0: 'every targeted host succeeded or was already on the target',
  1: 'unexpected internal error',
  2: 'bad usage, configuration or input; nothing was changed',
  3: 'halted: a stage failed too often; hosts that failed were rolled back, later hosts untouched',
  4: 'completed, but some hosts failed and were rolled back (under the threshold)',
  5: 'a rollback failed: at least one host may be down and needs a person',
  6: 'another rollout holds the lock',
  7: 'paused: waiting for a person or for gate data; `fleet rollout resume` or `promote` continues',
  130: 'interrupted; every host was left in a recorded state',
}
