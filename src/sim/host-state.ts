/**
 * One simulated host: its directory (app/ checkout, run/, faults/, sshd/), its service, its faults,
 * and what the fleet knows of its SSH server. Read locally, never over SSH.
 */
import type { ChildProcess } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { appendFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { SIM_BIN, type HostEnv } from './environment.js'
import { freePort, keygen, run } from './exec.js'
import { git, shaOf, type Origin, type Release } from './origin.js'
import { isAlive, sleep } from './processes.js'
import type { Ssh2SimServer } from './ssh2-server.js'
import type { Fault, ServiceState, SimHost, TestFleetOptions } from './types.js'

export interface HostState {
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

/** What every host is set up from. */
export interface HostSetup {
  readonly dir: string
  readonly origin: Origin
  readonly count: number
  readonly initialRelease: TestFleetOptions['initialRelease']
  readonly user: string
  readonly home: string
  readonly hostEnv: HostEnv
}

function releaseFor(r: TestFleetOptions['initialRelease'], name: string, index: number): Release {
  if (r === undefined) return 'v1'
  if (typeof r === 'string') return r
  if (typeof r === 'function') return r(name, index)
  return r[name] ?? 'v1'
}

/** The host's directory, checkout at its initial release, host key and running service; no SSH server yet. */
export async function setupHost(setup: HostSetup, index: number): Promise<HostState> {
  const { user, home } = setup
  const width = Math.max(2, String(setup.count).length)
  const name = `h${String(index + 1).padStart(width, '0')}`
  const hostDir = path.join(setup.dir, 'hosts', name)
  const sshdDir = path.join(hostDir, 'sshd')
  for (const d of ['run', 'faults', 'sshd']) await mkdir(path.join(hostDir, d), { recursive: true })
  const appDir = path.join(hostDir, 'app')
  await git(hostDir, ['clone', '-q', setup.origin.path, appDir])
  await git(appDir, ['checkout', '-q', '--detach', shaOf(setup.origin.shas, releaseFor(setup.initialRelease, name, index))])

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
    env: { HOME: home, USER: user, LOGNAME: user, SHELL: '/bin/bash', ...setup.hostEnv(hostDir) },
  })
  return h
}

/** Lets every service report (or die), so tests start from a known state. */
export async function settleServices(states: readonly HostState[]): Promise<void> {
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
}

export async function serviceState(h: HostState): Promise<ServiceState> {
  const run = path.join(h.sim.dir, 'run')
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
}

/** A fault is a file in faults/ that the stand-ins look for. */
export async function setFault(h: HostState, fault: Fault, on: boolean): Promise<void> {
  const file = path.join(h.sim.dir, 'faults', fault)
  if (on) await writeFile(file, `${fault}\n`)
  else await rm(file, { force: true })
}

export function acceptedConnections(h: HostState): number {
  let n = h.ssh2Accepted
  try {
    n += readFileSync(h.log, 'utf8').match(/Accepted publickey/g)?.length ?? 0
  } catch {
    // no log (ssh2 mode)
  }
  return n
}

export async function knownHostsLine(h: HostState): Promise<string> {
  const [type, key] = (await readFile(`${h.hostKey}.pub`, 'utf8')).trim().split(/\s+/)
  return `[127.0.0.1]:${h.sim.port} ${type} ${key}`
}

export async function dirtyWorktree(h: HostState): Promise<void> {
  await appendFile(path.join(h.sim.appDir, 'server.js'), '// local hotfix nobody committed\n')
}
