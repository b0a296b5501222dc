import type { Host } from '../types.js'

export interface CommandResult {
  /** Exit code, or null when the command was killed or the connection died. */
  readonly code: number | null
  readonly signal: string | null
  /** The last few KiB of each stream, for error reports. */
  readonly stdout: string
  readonly stderr: string
  readonly timedOut: boolean
  readonly durationMs: number
}

export interface RunOptions {
  readonly timeoutMs: number
  readonly signal?: AbortSignal
}

/** One open connection to one host; every step of that host runs over it. */
export interface Session {
  run(command: string, options: RunOptions): Promise<CommandResult>
  close(): void
}

export interface ConnectOptions {
  readonly timeoutMs: number
  readonly signal?: AbortSignal
}

/** The connector seam: ssh2 in production, a scripted one only to make failures happen on cue. */
export interface Executor {
  connect(host: Host, options: ConnectOptions): Promise<Session>
}

/** A connection-level failure (unreachable, auth, host key): nothing ran on the host. */
export class ConnectError extends Error {
  override readonly name = 'ConnectError'
  constructor(
    message: string,
    readonly kind: 'unreachable' | 'auth' | 'host-key' | 'timeout',
  ) {
    super(message)
  }
}

/** The connection dropped while a command ran: its outcome on the host is unknown. */
export class ConnectionLostError extends Error {
  override readonly name = 'ConnectionLostError'
}
