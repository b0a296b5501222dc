import { FENCE_MARK, FENCE_REFUSED, fenceCheck, fenceClaim, type FenceToken } from '../remote/fence.js'
import type { CommandResult, RunOptions, Session } from './executor.js'

/**
 * This process may no longer touch the host: the host's fence refused it (a
 * newer epoch claimed the host), or this process lost its lease. Whatever it
 * was doing there is abandoned, not recorded: the new holder owns the host.
 */
export class FencedError extends Error {
  override readonly name = 'FencedError'
}

export interface HostFence {
  readonly appDir: string
  readonly token: FenceToken
  /** Written to the host's fence log with each claim: who claimed it. */
  readonly label: string
  /** Aborted when this process lost its lease: no further command starts. */
  readonly lost?: AbortSignal
}

/**
 * A session whose first command claims the host's fence and whose every later
 * command checks it first (remote/fence.ts). A refusal is a FencedError.
 */
export function fencedSession(session: Session, fence: HostFence): Session {
  let claimed = false
  return {
    async run(command: string, options: RunOptions): Promise<CommandResult> {
      if (fence.lost?.aborted) throw new FencedError(`not run: ${String(fence.lost.reason ?? 'this process lost its lease')}`)
      const fencedCommand = claimed ? fenceCheck(fence.appDir, fence.token, command) : fenceClaim(fence.appDir, fence.token, fence.label, command)
      const result = await session.run(fencedCommand, options)
      // The mark starts a line: a command the fence stopped mid-way may have printed before it ("Terminated").
      const refusal = result.code === FENCE_REFUSED ? result.stderr.split('\n').find((line) => line.startsWith(FENCE_MARK)) : undefined
      if (refusal !== undefined) throw new FencedError(refusal.trim())
      if (result.code === 0) claimed = true
      return result
    },
    close: () => session.close(),
  }
}
