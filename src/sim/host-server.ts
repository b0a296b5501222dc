/**
 * The SSH server in front of each simulated host: its own OpenSSH sshd (sshd.ts), or without one
 * ssh2's in-process server (ssh2-server.ts). Started, killed and restarted the same way for both.
 */
import { existsSync, readFileSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import path from 'node:path'
import type { HostEnv } from './environment.js'
import { freePort } from './exec.js'
import type { HostState } from './host-state.js'
import { descendants, kill, processTable } from './processes.js'
import { spawnSshd, sshdConfig, stopSshdListener, supportsPerSourcePenalties } from './sshd.js'
import { startSsh2SimServer } from './ssh2-server.js'
import type { SshMode } from './types.js'

export function pickMode(requested: SshMode | undefined, sshd: string): SshMode {
  if (requested !== undefined && requested !== 'sshd' && requested !== 'ssh2') {
    throw new Error(`ssh must be "sshd" or "ssh2", got "${String(requested)}"`)
  }
  const haveSshd = existsSync(sshd)
  if (requested === 'sshd' && !haveSshd) throw new Error(`simulated fleet: ${sshd} not found (install openssh-server)`)
  return requested ?? (haveSshd ? 'sshd' : 'ssh2')
}

/** What every host's server is started with. */
export interface ServerSetup {
  readonly mode: SshMode
  readonly sshd: string
  readonly forceCommand: boolean
  readonly clientKey: string
  readonly authorizedKeys: string
  readonly user: string
  readonly home: string
  readonly hostEnv: HostEnv
}

/** Starts the host's server; the first start picks its port, later ones keep it. */
export async function startServer(s: ServerSetup, h: HostState): Promise<void> {
  if (s.mode === 'ssh2') {
    h.ssh2 = await startSsh2SimServer({
      port: h.sim.port || undefined,
      hostKey: h.hostKey,
      clientPublicKey: `${s.clientKey}.pub`,
      user: s.user,
      home: s.home,
      env: s.hostEnv(h.sim.dir),
      onAccepted: () => {
        h.ssh2Accepted++
      },
    })
    h.sim.port = h.ssh2.port
    return
  }
  const penalties = await supportsPerSourcePenalties(s.sshd, h.sshdDir, h.hostKey)
  const configure = async () => {
    h.sim.port = await freePort()
    await writeFile(h.config, sshdConfig(h, h.sim.port, s.authorizedKeys, s.hostEnv(h.sim.dir), penalties, s.forceCommand))
  }
  const firstStart = h.sim.port === 0
  if (firstStart) await configure()
  await spawnSshd(s.sshd, h, firstStart ? configure : null)
}

/** Kills the server, its sessions and the commands they run. */
export async function killServer(h: HostState): Promise<void> {
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

/** Stops listening (sessions already open keep running), then starts again on the same port. */
export async function restartServer(s: ServerSetup, h: HostState): Promise<void> {
  if (h.ssh2) {
    await h.ssh2.close()
    h.ssh2 = null
  } else {
    await stopSshdListener(h, 'SIGTERM')
  }
  await startServer(s, h)
}

/** At the fleet's stop: the server, every process under it, and (without /proc) the service. */
export async function killHost(h: HostState, table: Map<number, number>): Promise<void> {
  if (h.ssh2) await h.ssh2.kill().catch(() => {})
  h.ssh2 = null
  const pid = h.proc?.pid ?? 0
  const tree = pid > 0 ? descendants(pid, table) : []
  await stopSshdListener(h, 'SIGKILL')
  tree.forEach((p) => kill(p))
  // Without /proc (no scan by fleetProcesses) the pidfile is all there is; with it, the scan is safer (pid reuse).
  if (!existsSync('/proc/self')) {
    try {
      kill(Number(readFileSync(path.join(h.sim.dir, 'run', 'service.pid'), 'utf8').trim()) || 0)
    } catch {
      // no service pid
    }
  }
}
