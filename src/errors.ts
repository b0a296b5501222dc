/** The design's exit codes: the whole story for cron and CI. */
export const ExitCode = {
  ok: 0,
  internal: 1,
  usage: 2,
  halted: 3,
  rolledBack: 4,
  rollbackFailed: 5,
  locked: 6,
  paused: 7,
  /** `rollout status --watch --timeout`: the rollout was still in progress. */
  watchTimeout: 8,
  /** `hosts check`: a host is not ready, unreachable or drifted. */
  notReady: 9,
  interrupted: 130,
} as const
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode]

/** An error we expected and can explain; main() turns it into its exit code. */
export class FleetError extends Error {
  override readonly name = 'FleetError'
  constructor(
    message: string,
    readonly exitCode: ExitCode = ExitCode.usage,
  ) {
    super(message)
  }
}

/** Bad usage, bad configuration or bad input: exit 2, nothing changed. */
export class UsageError extends FleetError {
  constructor(message: string) {
    super(message, ExitCode.usage)
  }
}

/** Another rollout holds the lock: exit 6. */
export class LockedError extends FleetError {
  constructor(message: string) {
    super(message, ExitCode.locked)
  }
}

export const errorMessage = (error: unknown): string =>
  error instanceof Error ? error.message : String(error)
