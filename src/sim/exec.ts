/** What the simulated fleet builds itself with on this machine: local commands (not over SSH) and free ports. */
import { execFile } from 'node:child_process'
import { rm } from 'node:fs/promises'
import net from 'node:net'
import { promisify } from 'node:util'

export const execFileAsync = promisify(execFile)

export async function run(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<string> {
  try {
    const { stdout } = await execFileAsync(cmd, args, { ...opts, timeout: 30_000 })
    return stdout
  } catch (err) {
    const e = err as { stderr?: string; stdout?: string; message: string }
    throw new Error(`${cmd} ${args.join(' ')} failed: ${(e.stderr || e.stdout || e.message).trim()}`)
  }
}

export async function keygen(file: string, comment: string): Promise<void> {
  await rm(file, { force: true })
  await rm(`${file}.pub`, { force: true })
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', file])
}

/** Ports handed out by freePort(): a metrics port is not bound until its app starts, so it looks free. */
const handedOut = new Set<number>()

/** A port outside the ephemeral range (so outgoing connections never grab it) that is free now. */
export async function freePort(): Promise<number> {
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
