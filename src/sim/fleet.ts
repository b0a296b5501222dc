/**
 * A real, disposable fleet for the tests and `fleet demo`: a bare origin repo (see origin.ts), N simulated hosts, each
 * with its own git checkout of the app, a service run by a systemctl stand-in (fixtures/sim-bin) and
 * its own real OpenSSH sshd on 127.0.0.1. Faults are injected for real (kill sshd, rotate its host
 * key, make installs hang, make releases crash).
 *
 * Without sshd each host is served by ssh2's in-process server instead (ssh2-server.ts); the
 * `ssh` option forces one or the other. Everything is an explicit option: this file is shipped
 * (`fleet demo`) and reads no environment; the tests' own defaults live in test/support/test-fleet.ts.
 *
 * On a host, commands run (cwd: the user's home) with FLEET_SIM_HOST=<host dir> and
 * PATH=fixtures/sim-bin:<fleet>/bin:<system dirs>:<caller's PATH>, so `sudo`, `systemctl` and `bun` are
 * the stand-ins. fixtures/sim-bin/bun forwards to <fleet>/bin/bun: the real bun when the `bun` option
 * names one (the tests), else fixtures/sim-bun.mjs run by this Node (the demo; see there what it
 * does and does not do). sshd passes them with SetEnv (plus
 * SHLVL=1 so bash does not source the test machine's ~/.bashrc); for other login shells a
 * ForceCommand wrapper (fixtures/sim-session.sh) restores PATH.
 *
 * A process is killed by stop() if its environment has FLEET_SIM_HOST under the fleet dir or its
 * command line names the fleet dir; fixtures/sim-watchdog.sh does the same if the test process
 * dies without calling stop().
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { existsSync, readFileSync, realpathSync } from 'node:fs'
import { appendFile, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { quote } from '../remote/shell.js'
import { createOrigin, FIXTURES_DIR, git, shaOf, type Origin, type Release } from './origin.js'
import { startSsh2SimServer, type Ssh2SimServer } from './ssh2-server.js'

export type { Origin, OriginShas, Release } from './origin.js'

const execFileAsync = promisify(execFile)

export const SIM_BIN = path.join(FIXTURES_DIR, 'sim-bin')
const SIM_SESSION = path.join(FIXTURES_DIR, 'sim-session.sh')
const SIM_WATCHDOG = path.join(FIXTURES_DIR, 'sim-watchdog.sh')
const SIM_BUN_STANDIN = path.join(FIXTURES_DIR, 'sim-bun.mjs')
export const DEFAULT_SSHD = '/usr/sbin/sshd'
const SYSTEM_PATH = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin']

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

interface HostState {
  sim: SimHost
  index: number
  sshdDir: string
  hostKey: string
  config: string
  log: string
  proc: ChildProcess | null
  ssh2: Ssh2SimServer | null
  ssh2Accepted: number
}

function pickMode(requested: SshMode | undefined, sshd: string): SshMode {
  if (requested !== undefined && requested !== 'sshd' && requested !== 'ssh2') {
    throw new Error(`ssh must be "sshd" or "ssh2", got "${String(requested)}"`)
  }
  const haveSshd = existsSync(sshd)
  if (requested === 'sshd' && !haveSshd) throw new Error(`simulated fleet: ${sshd} not found (install openssh-server)`)
  return requested ?? (haveSshd ? 'sshd' : 'ssh2')
}

/**
 * <fleet>/bin/bun, what fixtures/sim-bin/bun forwards to: a link to the real bun if one is given,
 * else a script running the stand-in with this very Node (no node needed on the hosts' PATH).
 */
async function installBun(fleetBin: string, realBun: string | undefined): Promise<string> {
  const target = path.join(fleetBin, 'bun')
  if (realBun !== undefined) {
    if (!existsSync(realBun)) throw new Error(`simulated fleet: bun not found at ${realBun}`)
    await symlink(realpathSync(realBun), target)
  } else {
    await writeFile(target, `#!/bin/sh\nexec ${quote(process.execPath)} ${quote(SIM_BUN_STANDIN)} "$@"\n`, { mode: 0o755 })
  }
  return target
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

/** Ports handed out by freePort(): a metrics port is not bound until its app starts, so it looks free. */
const handedOut = new Set<number>()

/** A port outside the ephemeral range (so outgoing connections never grab it) that is free now. */
async function freePort(): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const port = 20000 + Math.floor(Math.random() * 12000)
    if (handedOut.has(port)) continue
    const ok = await new Promise<boolean>((resolve) => {
      const srv = net.createServer()
      srv.once('error', () => resolve(false))
      srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)))
    })
    if (ok) {
      handedOut.add(port)
      return port
    }
  }
  throw new Error('test fleet: no free port found')
}

async function run(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<string> {
  try {
    const { stdout } = await execFileAsync(cmd, args, { ...opts, timeout: 30_000 })
    return stdout
  } catch (err) {
    const e = err as { stderr?: string; stdout?: string; message: string }
    throw new Error(`${cmd} ${args.join(' ')} failed: ${(e.stderr || e.stdout || e.message).trim()}`)
  }
}

async function keygen(file: string, comment: string): Promise<void> {
  await rm(file, { force: true })
  await rm(`${file}.pub`, { force: true })
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', file])
}

// ---- processes (Linux /proc; elsewhere these degrade to doing nothing) ----

function isAlive(pid: number): boolean {
  if (!(pid > 0)) return false
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z'
  } catch {
    if (existsSync('/proc/self')) return false
    try {
      process.kill(pid, 0)
      return true
    } catch {
      return false
    }
  }
}

function kill(pid: number, signal: NodeJS.Signals = 'SIGKILL'): void {
  if (!(pid > 0) || pid === process.pid) return
  try {
    process.kill(pid, signal)
  } catch {
    // already gone
  }
}

async function processTable(): Promise<Map<number, number>> {
  const table = new Map<number, number>()
  let entries: string[] = []
  try {
    entries = await readdir('/proc')
  } catch {
    return table
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8')
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
      table.set(Number(e), ppid)
    } catch {
      // exited meanwhile
    }
  }
  return table
}

function descendants(root: number, table: Map<number, number>): number[] {
  const out: number[] = []
  const queue = [root]
  while (queue.length > 0) {
    const p = queue.shift()!
    for (const [pid, ppid] of table) {
      if (ppid === p && !out.includes(pid)) {
        out.push(pid)
        queue.push(pid)
      }
    }
  }
  return out
}

/** Every process that belongs to the fleet: its sessions' environment or its command line names the fleet dir. */
async function fleetProcesses(dir: string): Promise<number[]> {
  const found: number[] = []
  for (const pid of (await processTable()).keys()) {
    if (pid === process.pid) continue
    try {
      const environ = readFileSync(`/proc/${pid}/environ`, 'utf8')
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8')
      if (environ.includes(`\0FLEET_SIM_HOST=${dir}/`) || environ.startsWith(`FLEET_SIM_HOST=${dir}/`) || cmdline.includes(`${dir}/`)) {
        found.push(pid)
      }
    } catch {
      // exited meanwhile, or not ours to read
    }
  }
  return found
}

// ---- sshd ----

const perSourcePenaltiesSupported = new Map<string, Promise<boolean>>()

/** OpenSSH >= 9.8 penalises sources that fail or drop connections; tests do that on purpose. */
function supportsPerSourcePenalties(sshd: string, probeDir: string, hostKey: string): Promise<boolean> {
  let known = perSourcePenaltiesSupported.get(sshd)
  if (known) return known
  known = (async () => {
    const cfg = path.join(probeDir, 'probe_config')
    await writeFile(cfg, `HostKey ${hostKey}\nPerSourcePenalties no\nUsePAM no\n`)
    try {
      await execFileAsync(sshd, ['-t', '-f', cfg])
      return true
    } catch {
      return false
    } finally {
      await rm(cfg, { force: true })
    }
  })()
  perSourcePenaltiesSupported.set(sshd, known)
  return known
}

/** Whether the login shell leaves SetEnv's PATH alone for `ssh host cmd` (bash with SHLVL=1, sh). */
function plainShell(forceCommand: boolean): boolean {
  if (forceCommand) return false // to exercise the wrapper
  const shell = path.basename(os.userInfo().shell ?? '/bin/sh')
  return ['bash', 'sh', 'dash', 'ash'].includes(shell)
}

function sshdConfig(
  h: HostState,
  port: number,
  authorizedKeys: string,
  env: Record<string, string>,
  penalties: boolean,
  forceCommand: boolean,
): string {
  const setEnv = Object.entries(env)
    .map(([k, v]) => `"${k}=${v}"`)
    .join(' ')
  return [
    `# sshd for simulated host ${h.sim.name} (test fleet)`,
    `ListenAddress 127.0.0.1:${port}`,
    `HostKey ${h.hostKey}`,
    `AuthorizedKeysFile ${authorizedKeys}`,
    'AuthenticationMethods publickey',
    'PubkeyAuthentication yes',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'UsePAM no',
    'PermitRootLogin prohibit-password',
    'StrictModes no',
    'PermitUserRC no',
    'PrintMotd no',
    'PrintLastLog no',
    'UseDNS no',
    'X11Forwarding no',
    'LogLevel VERBOSE',
    'PidFile none',
    // Rollout tests open many connections at once; sshd's default (10:30:100) drops some.
    'MaxStartups 200',
    'MaxSessions 64',
    ...(penalties ? ['PerSourcePenalties no'] : []),
    // sshd runs commands as `<login shell> -c <command>` with PATH from SetEnv. SHLVL=1: bash
    // sources ~/.bashrc when it thinks sshd started it (SSH_CLIENT set, SHLVL < 2), and the test
    // machine's rc files (root's adds pyenv and cargo to PATH here) are not the simulated host's.
    `SetEnv SHLVL=1 ${setEnv}`,
    // Other login shells read rc files regardless: a wrapper restores PATH (sshd then refuses signal requests).
    ...(plainShell(forceCommand) ? [] : [`ForceCommand ${SIM_SESSION}`]),
    '',
  ].join('\n')
}

function logSize(file: string): number {
  try {
    return readFileSync(file).length
  } catch {
    return 0
  }
}

/**
 * Starts the host's sshd and waits until it logs that it listens. If the port is taken,
 * `switchPort` (first start) moves to another one; otherwise (restart: same port) it retries.
 */
async function spawnSshd(sshd: string, h: HostState, switchPort: (() => Promise<void>) | null): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    const logOffset = logSize(h.log)
    const proc = spawn(sshd, ['-D', '-f', h.config, '-E', h.log], { stdio: 'ignore' })
    proc.unref()
    let exited = false
    proc.once('exit', () => (exited = true))
    proc.once('error', () => (exited = true))
    const listening = `Server listening on 127.0.0.1 port ${h.sim.port}`
    const deadline = Date.now() + 10_000
    let log = ''
    for (;;) {
      try {
        log = readFileSync(h.log).subarray(logOffset).toString('utf8')
      } catch {
        // not created yet
      }
      if (log.includes(listening) && !exited) {
        h.proc = proc
        h.sim.sshdPid = proc.pid ?? 0
        return
      }
      if (exited) break
      if (Date.now() > deadline) {
        kill(proc.pid ?? 0)
        throw new Error(`sshd for ${h.sim.name} did not start listening within 10 s:\n${log.trim()}`)
      }
      await sleep(15)
    }
    if (!/Address already in use/.test(log) || attempt >= 50) {
      throw new Error(`sshd for ${h.sim.name} exited at start:\n${log.trim()}`)
    }
    if (switchPort) await switchPort()
    else await sleep(100) // e.g. the port is still held by a dying sshd
  }
}

async function stopSshdListener(h: HostState, signal: NodeJS.Signals): Promise<void> {
  const proc = h.proc
  h.proc = null
  h.sim.sshdPid = 0
  if (!proc || proc.exitCode !== null || proc.signalCode !== null) return
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()))
  kill(proc.pid ?? 0, signal)
  await Promise.race([exited, sleep(5000)])
}

// ---- the fleet ----

export async function startSimFleet(options: TestFleetOptions = {}): Promise<TestFleet> {
  const sshd = options.sshd ?? DEFAULT_SSHD
  const mode = pickMode(options.ssh, sshd)
  const forceCommand = options.forceCommand ?? false
  const count = options.hosts ?? 3
  if (!Number.isInteger(count) || count < 1) throw new Error(`hosts must be a positive integer, got ${count}`)
  const user = os.userInfo().username
  const home = os.userInfo().homedir

  const dir = await mkdtemp(path.join(os.tmpdir(), 'fleet-test-'))
  // Safety net: if this process dies without stop(), the watchdog cleans up after it.
  const watchdog = spawn(SIM_WATCHDOG, [dir], { stdio: ['pipe', 'ignore', 'ignore'], detached: true })
  watchdog.on('error', () => {})
  watchdog.unref()
  ;(watchdog.stdin as unknown as { unref?: () => void } | null)?.unref?.()

  const states: HostState[] = []

  let stopping: Promise<void> | undefined
  const stop = (): Promise<void> => (stopping ??= stopNow())
  const stopNow = async (): Promise<void> => {
    try {
      const table = await processTable()
      for (const h of states) {
        if (h.ssh2) await h.ssh2.kill().catch(() => {})
        h.ssh2 = null
        const pid = h.proc?.pid ?? 0
        const tree = pid > 0 ? descendants(pid, table) : []
        await stopSshdListener(h, 'SIGKILL')
        tree.forEach((p) => kill(p))
        // Without /proc (no scan below) the pidfile is all there is; with it, the scan is safer (pid reuse).
        if (!existsSync('/proc/self')) {
          try {
            kill(Number(readFileSync(path.join(h.sim.dir, 'run', 'service.pid'), 'utf8').trim()) || 0)
          } catch {
            // no service pid
          }
        }
      }
      for (let round = 0; round < 2; round++) (await fleetProcesses(dir)).forEach((p) => kill(p))
    } catch {
      // best effort: the watchdog and rm below still run
    }
    await rm(dir, { recursive: true, force: true, maxRetries: 3 }).catch(() => {})
    try {
      watchdog.stdin?.end()
    } catch {
      // already gone
    }
  }

  try {
    const origin = await createOrigin(dir)

    const fleetBin = path.join(dir, 'bin')
    await mkdir(fleetBin)
    const simBun = await installBun(fleetBin, options.bun)
    const extra = (process.env.PATH ?? '').split(':').filter((p) => p && !SYSTEM_PATH.includes(p))
    const simPath = [SIM_BIN, fleetBin, ...SYSTEM_PATH, ...extra].join(':')

    const clientKey = path.join(dir, 'client_ed25519')
    await keygen(clientKey, 'fleet-test-client')
    const authorizedKeys = path.join(dir, 'authorized_keys')
    await writeFile(authorizedKeys, await readFile(`${clientKey}.pub`, 'utf8'))
    // sshd refuses to start without its privilege separation dir (only root can, and must, create it).
    if (mode === 'sshd') await mkdir('/run/sshd', { recursive: true, mode: 0o755 }).catch(() => {})

    const releaseFor = (name: string, index: number): Release => {
      const r = options.initialRelease
      if (r === undefined) return 'v1'
      if (typeof r === 'string') return r
      if (typeof r === 'function') return r(name, index)
      return r[name] ?? 'v1'
    }

    const width = Math.max(2, String(count).length)
    const hostEnv = (hostDir: string): Record<string, string> => ({
      FLEET_SIM_HOST: hostDir,
      FLEET_SIM_BUN: simBun,
      FLEET_SIM_PATH: simPath,
      PATH: simPath,
    })

    const setupHost = async (index: number): Promise<HostState> => {
      const name = `h${String(index + 1).padStart(width, '0')}`
      const hostDir = path.join(dir, 'hosts', name)
      const sshdDir = path.join(hostDir, 'sshd')
      for (const d of ['run', 'faults', 'sshd']) await mkdir(path.join(hostDir, d), { recursive: true })
      const appDir = path.join(hostDir, 'app')
      await git(hostDir, ['clone', '-q', origin.path, appDir])
      await git(appDir, ['checkout', '-q', '--detach', shaOf(origin.shas, releaseFor(name, index))])

      const h: HostState = {
        sim: { name, address: '127.0.0.1', port: 0, user, appDir, dir: hostDir, sshdPid: 0, metricsPort: await freePort() },
        index,
        sshdDir,
        hostKey: path.join(sshdDir, 'ssh_host_ed25519_key'),
        config: path.join(sshdDir, 'sshd_config'),
        log: path.join(sshdDir, 'sshd.log'),
        proc: null,
        ssh2: null,
        ssh2Accepted: 0,
      }
      await keygen(h.hostKey, `fleet-test-${name}`)
      await writeFile(path.join(hostDir, 'run', 'metrics-port'), `${h.sim.metricsPort}\n`)

      // Bring the service up the way `systemctl restart` does over SSH.
      await run(path.join(SIM_BIN, 'systemctl'), ['restart', 'rachel8'], {
        cwd: hostDir,
        env: { HOME: home, USER: user, LOGNAME: user, SHELL: '/bin/bash', ...hostEnv(hostDir) },
      })
      return h
    }

    const startServer = async (h: HostState): Promise<void> => {
      if (mode === 'ssh2') {
        h.ssh2 = await startSsh2SimServer({
          port: h.sim.port || undefined,
          hostKey: h.hostKey,
          clientPublicKey: `${clientKey}.pub`,
          user,
          home,
          env: hostEnv(h.sim.dir),
          onAccepted: () => {
            h.ssh2Accepted++
          },
        })
        h.sim.port = h.ssh2.port
        return
      }
      const penalties = await supportsPerSourcePenalties(sshd, h.sshdDir, h.hostKey)
      const configure = async () => {
        h.sim.port = await freePort()
        await writeFile(h.config, sshdConfig(h, h.sim.port, authorizedKeys, hostEnv(h.sim.dir), penalties, forceCommand))
      }
      const firstStart = h.sim.port === 0
      if (firstStart) await configure()
      await spawnSshd(sshd, h, firstStart ? configure : null)
    }

    // Hosts are set up in parallel (bounded: each one runs a handful of processes).
    const indexes = Array.from({ length: count }, (_, i) => i)
    const limit = 8
    for (let i = 0; i < indexes.length; i += limit) {
      const batch = await Promise.all(indexes.slice(i, i + limit).map(setupHost))
      states.push(...batch)
      await Promise.all(batch.map(startServer))
    }

    // Let every service report (or die) before handing the fleet over, so tests start from a known state.
    const settleDeadline = Date.now() + 10_000
    for (const h of states) {
      const run = path.join(h.sim.dir, 'run')
      while (Date.now() < settleDeadline && !existsSync(path.join(run, 'running-sha'))) {
        let pid = 0
        try {
          pid = Number(readFileSync(path.join(run, 'service.pid'), 'utf8').trim())
        } catch {
          break
        }
        if (!isAlive(pid)) break
        await sleep(20)
      }
    }

    const knownHostsLine = async (h: HostState): Promise<string> => {
      const [type, key] = (await readFile(`${h.hostKey}.pub`, 'utf8')).trim().split(/\s+/)
      return `[127.0.0.1]:${h.sim.port} ${type} ${key}`
    }
    const knownHosts = path.join(dir, 'known_hosts')
    await writeFile(knownHosts, (await Promise.all(states.map(knownHostsLine))).join('\n') + '\n')

    const byName = (name: string): HostState => {
      const h = states.find((s) => s.sim.name === name)
      if (!h) throw new Error(`test fleet: no host named "${name}" (hosts: ${states.map((s) => s.sim.name).join(', ')})`)
      return h
    }

    const killServer = async (h: HostState): Promise<void> => {
      if (h.ssh2) {
        await h.ssh2.kill()
        h.ssh2 = null
        return
      }
      const pid = h.proc?.pid ?? 0
      if (pid > 0) {
        // Freeze first so no new session is forked while we collect the tree.
        kill(pid, 'SIGSTOP')
        const tree = descendants(pid, await processTable())
        await stopSshdListener(h, 'SIGKILL')
        tree.forEach((p) => kill(p))
      }
    }

    const fleet: TestFleet = {
      dir,
      ssh: mode,
      origin,
      clientKey,
      knownHosts,
      hosts: states.map((s) => s.sim),
      host: (name) => byName(name).sim,
      head: async (name) => git(byName(name).sim.appDir, ['rev-parse', 'HEAD']),
      service: async (name) => {
        const run = path.join(byName(name).sim.dir, 'run')
        let pid = 0
        try {
          pid = Number((await readFile(path.join(run, 'service.pid'), 'utf8')).trim())
        } catch {
          // never started, or stopped
        }
        let sha: string | null = null
        try {
          sha = (await readFile(path.join(run, 'running-sha'), 'utf8')).trim() || null
        } catch {
          // the current process has not reported (yet), or crashed before it could
        }
        return { running: isAlive(pid), sha }
      },
      setFault: async (name, fault, on) => {
        const file = path.join(byName(name).sim.dir, 'faults', fault)
        if (on) await writeFile(file, `${fault}\n`)
        else await rm(file, { force: true })
      },
      acceptedConnections: (name) => {
        const h = byName(name)
        let n = h.ssh2Accepted
        try {
          n += readFileSync(h.log, 'utf8').match(/Accepted publickey/g)?.length ?? 0
        } catch {
          // no log (ssh2 mode)
        }
        return n
      },
      killSshd: async (name) => killServer(byName(name)),
      restartSshd: async (name) => {
        const h = byName(name)
        if (h.ssh2) {
          await h.ssh2.close()
          h.ssh2 = null
        } else {
          await stopSshdListener(h, 'SIGTERM')
        }
        await startServer(h)
      },
      rotateHostKey: async (name) => {
        const h = byName(name)
        await keygen(h.hostKey, `fleet-test-${name}-rotated`)
        await fleet.restartSshd(name)
      },
      knownHostsLine: async (name) => knownHostsLine(byName(name)),
      dirtyWorktree: async (name) => {
        await appendFile(path.join(byName(name).sim.appDir, 'server.js'), '// local hotfix nobody committed\n')
      },
      stop,
    }
    return fleet
  } catch (err) {
    await stop()
    throw err
  }
}
