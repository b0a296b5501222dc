/**
 * A simulated host's own OpenSSH sshd on 127.0.0.1: its config, start and stop. sshd passes the
 * host's environment with SetEnv (plus SHLVL=1 so bash does not source the test machine's
 * ~/.bashrc); for other login shells a ForceCommand wrapper (fixtures/sim-session.sh) restores PATH.
 */
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { execFileAsync } from './exec.js'
import type { HostState } from './host-state.js'
import { FIXTURES_DIR } from './origin.js'
import { kill, sleep } from './processes.js'

export const DEFAULT_SSHD = '/usr/sbin/sshd'
const SIM_SESSION = path.join(FIXTURES_DIR, 'sim-session.sh')

const perSourcePenaltiesSupported = new Map<string, Promise<boolean>>()

/** OpenSSH >= 9.8 penalises sources that fail or drop connections; tests do that on purpose. */
export function supportsPerSourcePenalties(sshd: string, probeDir: string, hostKey: string): Promise<boolean> {
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

export function sshdConfig(
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
export async function spawnSshd(sshd: string, h: HostState, switchPort: (() => Promise<void>) | null): Promise<void> {
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

export async function stopSshdListener(h: HostState, signal: NodeJS.Signals): Promise<void> {
  const proc = h.proc
  h.proc = null
  h.sim.sshdPid = 0
  if (!proc || proc.exitCode !== null || proc.signalCode !== null) return
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()))
  kill(proc.pid ?? 0, signal)
  await Promise.race([exited, sleep(5000)])
}
