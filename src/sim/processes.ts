/** The simulated fleet's processes, read from Linux /proc; elsewhere these degrade to doing nothing. */
import { existsSync, readFileSync } from 'node:fs'
import { readdir } from 'node:fs/promises'

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

export function isAlive(pid: number): boolean {
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

export function kill(pid: number, signal: NodeJS.Signals = 'SIGKILL'): void {
  if (!(pid > 0) || pid === process.pid) return
  try {
    process.kill(pid, signal)
  } catch {
    // already gone
  }
}

/** pid → parent pid of every process. */
export async function processTable(): Promise<Map<number, number>> {
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

export function descendants(root: number, table: Map<number, number>): number[] {
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
export async function fleetProcesses(dir: string): Promise<number[]> {
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
