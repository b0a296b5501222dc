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
 *
 * This file assembles the fleet; each part has its own file: host-state.ts (a host's directory,
 * service and faults), host-server.ts with sshd.ts (its SSH server), environment.ts (its sessions'
 * PATH and bun), processes.ts (/proc), exec.ts (local commands, ports), types.ts (the shapes).
 */
import { spawn } from 'node:child_process'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { installFleetBin } from './environment.js'
import { keygen } from './exec.js'
import { killHost, killServer, pickMode, restartServer, startServer, type ServerSetup } from './host-server.js'
import { acceptedConnections, dirtyWorktree, knownHostsLine, serviceState, settleServices, setFault, setupHost, type HostState } from './host-state.js'
import { createOrigin, FIXTURES_DIR, git } from './origin.js'
import { fleetProcesses, kill, processTable } from './processes.js'
import { DEFAULT_SSHD } from './sshd.js'
import type { TestFleet, TestFleetOptions } from './types.js'

export type { Origin, OriginShas, Release } from './origin.js'
export type { Fault, ServiceState, SimHost, SshMode, TestFleet, TestFleetOptions } from './types.js'
export { SIM_BIN } from './environment.js'
export { DEFAULT_SSHD } from './sshd.js'

const SIM_WATCHDOG = path.join(FIXTURES_DIR, 'sim-watchdog.sh')

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
      for (const h of states) await killHost(h, table)
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
    const hostEnv = await installFleetBin(dir, options.bun)

    const clientKey = path.join(dir, 'client_ed25519')
    await keygen(clientKey, 'fleet-test-client')
    const authorizedKeys = path.join(dir, 'authorized_keys')
    await writeFile(authorizedKeys, await readFile(`${clientKey}.pub`, 'utf8'))
    // sshd refuses to start without its privilege separation dir (only root can, and must, create it).
    if (mode === 'sshd') await mkdir('/run/sshd', { recursive: true, mode: 0o755 }).catch(() => {})

    const hostSetup = { dir, origin, count, initialRelease: options.initialRelease, user, home, hostEnv }
    const server: ServerSetup = { mode, sshd, forceCommand, clientKey, authorizedKeys, user, home, hostEnv }

    // Hosts are set up in parallel (bounded: each one runs a handful of processes).
    const indexes = Array.from({ length: count }, (_, i) => i)
    const limit = 8
    for (let i = 0; i < indexes.length; i += limit) {
      const batch = await Promise.all(indexes.slice(i, i + limit).map((index) => setupHost(hostSetup, index)))
      states.push(...batch)
      await Promise.all(batch.map((h) => startServer(server, h)))
    }

    // Let every service report (or die) before handing the fleet over, so tests start from a known state.
    await settleServices(states)

    const knownHosts = path.join(dir, 'known_hosts')
    await writeFile(knownHosts, (await Promise.all(states.map(knownHostsLine))).join('\n') + '\n')

    const byName = (name: string): HostState => {
      const h = states.find((s) => s.sim.name === name)
      if (!h) throw new Error(`test fleet: no host named "${name}" (hosts: ${states.map((s) => s.sim.name).join(', ')})`)
      return h
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
      service: async (name) => serviceState(byName(name)),
      setFault: async (name, fault, on) => setFault(byName(name), fault, on),
      acceptedConnections: (name) => acceptedConnections(byName(name)),
      killSshd: async (name) => killServer(byName(name)),
      restartSshd: async (name) => restartServer(server, byName(name)),
      rotateHostKey: async (name) => {
        const h = byName(name)
        await keygen(h.hostKey, `fleet-test-${name}-rotated`)
        await fleet.restartSshd(name)
      },
      knownHostsLine: async (name) => knownHostsLine(byName(name)),
      dirtyWorktree: async (name) => dirtyWorktree(byName(name)),
      stop,
    }
    return fleet
  } catch (err) {
    await stop()
    throw err
  }
}
