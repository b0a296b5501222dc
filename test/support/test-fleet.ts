/**
 * The simulated fleet (src/sim/fleet.ts, shipped for `fleet demo`) with the tests' defaults, read
 * from the environment here and only here:
 *   FLEET_TEST_SSH=sshd|ssh2   which SSH server serves the hosts (default: sshd when installed;
 *                              under CI always sshd, never the ssh2 fallback)
 *   FLEET_TEST_SSHD=<path>     OpenSSH's sshd (default /usr/sbin/sshd)
 *   FLEET_TEST_FORCECOMMAND=1  serve every session through the ForceCommand wrapper
 *   FLEET_TEST_BUN=<path>      the real bun the hosts run (default: the devDependency)
 */
import { existsSync } from 'node:fs'
import path from 'node:path'
import { DEFAULT_SSHD, startSimFleet, type SshMode, type TestFleet, type TestFleetOptions } from '../../src/sim/fleet.js'
import { REPO_ROOT } from '../../src/sim/origin.js'

export * from '../../src/sim/fleet.js'
export * from '../../src/sim/ssh2-server.js'
export * from '../../src/sim/origin.js'

function testSshMode(sshd: string): SshMode | undefined {
  const wanted = process.env.FLEET_TEST_SSH
  if (wanted !== undefined && wanted !== 'sshd' && wanted !== 'ssh2') {
    throw new Error(`FLEET_TEST_SSH must be "sshd" or "ssh2", got "${wanted}"`)
  }
  if (wanted === 'sshd' || (wanted === undefined && process.env.CI)) {
    if (!existsSync(sshd)) {
      throw new Error(
        `test fleet: ${sshd} not found. The tests must run against a real OpenSSH sshd ` +
          `(install openssh-server)${process.env.CI ? '; CI never falls back to the ssh2 server' : ''}.`,
      )
    }
    return 'sshd'
  }
  return wanted
}

function testBun(): string {
  const candidates = [process.env.FLEET_TEST_BUN, path.join(REPO_ROOT, 'node_modules', '.bin', 'bun')]
  for (const c of candidates) {
    if (c && existsSync(c)) return c
  }
  throw new Error('test fleet: no bun found (expected node_modules/.bin/bun; set FLEET_TEST_BUN)')
}

/** The tests' fleet: the real bun, sshd unless told otherwise. Explicit options win over the environment. */
export function startTestFleet(options: TestFleetOptions = {}): Promise<TestFleet> {
  const sshd = options.sshd ?? process.env.FLEET_TEST_SSHD ?? DEFAULT_SSHD
  return startSimFleet({
    ...options,
    sshd,
    ssh: options.ssh ?? testSshMode(sshd),
    forceCommand: options.forceCommand ?? process.env.FLEET_TEST_FORCECOMMAND === '1',
    bun: options.bun ?? testBun(),
  })
}
