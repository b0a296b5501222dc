/** The simulated fleet's public shapes (fleet.ts re-exports them). */
import type { Origin, Release } from './origin.js'

export type Fault = 'new-release-crashes' | 'service-broken' | 'install-hangs' | 'sudo-password'
export type SshMode = 'sshd' | 'ssh2'

export interface SimHost {
  name: string
  address: '127.0.0.1'
  port: number
  /** The login user: the OS user running the tests. */
  user: string
  /** The app checkout (git clone of the origin, remote `origin`). */
  appDir: string
  /** The host's directory: app/, run/, faults/, sshd/; FLEET_SIM_HOST in its sessions. */
  dir: string
  /** pid of the host's sshd listener; 0 in ssh2 mode or while killed. */
  sshdPid: number
  /**
   * Port (127.0.0.1) where the host's app serves /metrics in Prometheus' text format, whichever
   * release runs (written to run/metrics-port, read by the app; the same across restarts).
   */
  metricsPort: number
}

export interface TestFleetOptions {
  /** Number of hosts, named h01, h02, ... Default 3. */
  hosts?: number
  /** Release each host runs at start: one for all, a map by host name (others: v1) or a function. Default 'v1'. */
  initialRelease?: Release | Partial<Record<string, Release>> | ((name: string, index: number) => Release)
  /** Which SSH server serves the hosts. Default: sshd when `sshd` exists, else ssh2. */
  ssh?: SshMode | undefined
  /** Path of OpenSSH's sshd. Default /usr/sbin/sshd. */
  sshd?: string | undefined
  /** Run every session through the ForceCommand wrapper (normally only for non-bash login shells). */
  forceCommand?: boolean | undefined
  /** The real bun the hosts run (`bun install`, the service). Default: the stand-in fixtures/sim-bun.mjs. */
  bun?: string | undefined
}

export interface ServiceState {
  /** The service's process is alive (not exited, not a zombie). */
  running: boolean
  /** Commit the running process reported at start (run/running-sha); null if none. */
  sha: string | null
}

export interface TestFleet {
  dir: string
  ssh: SshMode
  origin: Origin
  /** Path of the client's private key (ed25519, no passphrase), authorized on every host. */
  clientKey: string
  /** known_hosts with every host's key at start, as `[127.0.0.1]:port ssh-ed25519 AAAA...` lines. */
  knownHosts: string
  hosts: SimHost[]
  host(name: string): SimHost
  /** `git rev-parse HEAD` in the host's app dir (run locally, not over SSH). */
  head(host: string): Promise<string>
  service(host: string): Promise<ServiceState>
  setFault(host: string, fault: Fault, on: boolean): Promise<void>
  /** Successful logins so far ("Accepted publickey" lines in that host's sshd log). */
  acceptedConnections(host: string): number
  /** SIGKILL that host's sshd listener and all its sessions (and the commands they run). */
  killSshd(host: string): Promise<void>
  /** Start that host's sshd again, same port and keys (stops it first if it is running). */
  restartSshd(host: string): Promise<void>
  /** New host key, then sshd restarted; `knownHosts` keeps the old key (host key changed). */
  rotateHostKey(host: string): Promise<void>
  /** The host's current known_hosts line (after rotateHostKey it differs from the one in `knownHosts`). */
  knownHostsLine(host: string): Promise<string>
  /** Modify a tracked file in the app checkout. */
  dirtyWorktree(host: string): Promise<void>
  /** Kill everything the fleet started and remove its dir. Idempotent, never throws. */
  stop(): Promise<void>
}
