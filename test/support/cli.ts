import { spawn } from 'node:child_process'
import path from 'node:path'

import { REPO_ROOT } from './origin.js'

export const FLEET_BIN = path.join(REPO_ROOT, 'bin', 'fleet')

export interface FleetRun {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
}

/** Runs the built `fleet` command (npm test builds it first) as a user would. */
export function runFleet(
  args: readonly string[],
  options: { cwd: string; env?: NodeJS.ProcessEnv; timeoutMs?: number; onSpawn?: (pid: number) => void } = { cwd: REPO_ROOT },
): Promise<FleetRun> {
  return new Promise((resolve, reject) => {
    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME, NO_COLOR: '1', ...options.env }
    const child = spawn(process.execPath, [FLEET_BIN, ...args], { cwd: options.cwd, env, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 90_000)
    child.on('error', reject)
    if (child.pid) options.onSpawn?.(child.pid)
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, stdout, stderr })
    })
  })
}
