/**
 * What a simulated host's sessions run with. Commands run with FLEET_SIM_HOST=<host dir> and
 * PATH=fixtures/sim-bin:<fleet>/bin:<system dirs>:<caller's PATH>, so `sudo`, `systemctl` and `bun`
 * are the stand-ins; fixtures/sim-bin/bun forwards to <fleet>/bin/bun.
 */
import { existsSync, realpathSync } from 'node:fs'
import { mkdir, symlink, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { quote } from '../remote/shell.js'
import { FIXTURES_DIR } from './origin.js'

export const SIM_BIN = path.join(FIXTURES_DIR, 'sim-bin')
const SIM_BUN_STANDIN = path.join(FIXTURES_DIR, 'sim-bun.mjs')
const SYSTEM_PATH = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin']

/** The environment of every session on the host whose directory is given. */
export type HostEnv = (hostDir: string) => Record<string, string>

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

/** Makes <fleet>/bin (with its bun) and returns the hosts' environment. */
export async function installFleetBin(dir: string, realBun: string | undefined): Promise<HostEnv> {
  const fleetBin = path.join(dir, 'bin')
  await mkdir(fleetBin)
  const simBun = await installBun(fleetBin, realBun)
  const extra = (process.env.PATH ?? '').split(':').filter((p) => p && !SYSTEM_PATH.includes(p))
  const simPath = [SIM_BIN, fleetBin, ...SYSTEM_PATH, ...extra].join(':')
  return (hostDir) => ({
    FLEET_SIM_HOST: hostDir,
    FLEET_SIM_BUN: simBun,
    FLEET_SIM_PATH: simPath,
    PATH: simPath,
  })
}
