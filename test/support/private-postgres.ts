/**
 * A PRIVATE PostgreSQL server for one test: its own cluster (initdb) in a temp dir, on 127.0.0.1 and
 * a free port, trust auth, that the test may stop, kill (immediate) and start again. The shared
 * server on 5432 is used by other test files in parallel and is never touched.
 *
 * Binaries: /usr/lib/postgresql/<newest>/bin (FLEET_TEST_PG_BIN overrides). Postgres refuses to run
 * as root, so under root every command runs as the `postgres` OS user (runuser), with the data dir
 * chowned to it. Without the binaries: null outside CI (skip), an error under CI.
 *
 *   const pg = await startPrivatePostgres()      // running
 *   await pg.stop({ mode: 'immediate' })          // like a crash: connections cut, no checkpoint
 *   await pg.start()                              // crash recovery, same port and data
 *   await pg.destroy()
 */
import { execFile, execFileSync } from 'node:child_process'
import { existsSync, readdirSync, rmSync } from 'node:fs'
import { appendFile, chown, mkdir, mkdtemp, rm } from 'node:fs/promises'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'

const execFileAsync = promisify(execFile)

export interface PrivatePostgres {
  /** postgres://postgres@127.0.0.1:<port>/postgres (trust auth, no password). */
  readonly url: string
  readonly port: number
  /** Its data dir, socket dir and log live here. */
  readonly dir: string
  readonly running: boolean
  /** Starts the server (same port, same data) and waits until it accepts connections. */
  start(): Promise<void>
  /** `fast`: clean shutdown (clients disconnected); `immediate`: abort without a checkpoint, as a crash. */
  stop(options?: { mode?: 'fast' | 'immediate' }): Promise<void>
  restart(options?: { mode?: 'fast' | 'immediate' }): Promise<void>
  /**
   * Immediate stop, synchronously: blocks the caller's event loop until the server is down, so a
   * test can cut the database at an exact point (e.g. inside a rollout event listener) with no
   * store write slipping through in between.
   */
  crashSync(): void
  /** Stops it (immediate) and removes everything. Idempotent, never throws. */
  destroy(): Promise<void>
  /** The server log (for failure messages). */
  log(): Promise<string>
}

function findBinDir(): string | null {
  const given = process.env.FLEET_TEST_PG_BIN
  if (given) return existsSync(path.join(given, 'pg_ctl')) ? given : null
  const root = '/usr/lib/postgresql'
  if (!existsSync(root)) return null
  const versions = readdirSync(root)
    .filter((v) => existsSync(path.join(root, v, 'bin', 'pg_ctl')) && existsSync(path.join(root, v, 'bin', 'initdb')))
    .sort((a, b) => Number.parseFloat(b) - Number.parseFloat(a))
  return versions[0] ? path.join(root, versions[0], 'bin') : null
}

/** Why startPrivatePostgres() would return null (no binaries), or null when it can run. */
export function privatePostgresSkipReason(): string | null {
  return findBinDir() ? null : 'no PostgreSQL server binaries (initdb, pg_ctl) in /usr/lib/postgresql/*/bin'
}

async function freePort(): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const port = 33000 + Math.floor(Math.random() * 7000)
    const ok = await new Promise<boolean>((resolve) => {
      const srv = net.createServer()
      srv.once('error', () => resolve(false))
      srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)))
    })
    if (ok) return port
  }
  throw new Error('private postgres: no free port found')
}

const isRoot = (): boolean => typeof process.getuid === 'function' && process.getuid() === 0

export async function startPrivatePostgres(): Promise<PrivatePostgres | null> {
  const bin = findBinDir()
  if (!bin) {
    if (process.env.CI) throw new Error(`private postgres: ${privatePostgresSkipReason()} (CI requires them)`)
    return null
  }
  const root = isRoot()
  const dir = await mkdtemp(path.join(os.tmpdir(), 'fleet-private-pg-'))
  const data = path.join(dir, 'data')
  const sockets = path.join(dir, 'sock')
  const logFile = path.join(dir, 'postgres.log')
  await mkdir(sockets)
  if (root) {
    const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim())
    const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim())
    for (const p of [dir, sockets]) await chown(p, uid, gid)
  }

  // Every server command runs as `postgres` under root; cwd is our dir (postgres may not enter the test's cwd).
  const command = (tool: string, args: string[]): [string, string[]] =>
    root ? ['runuser', ['-u', 'postgres', '--', path.join(bin, tool), ...args]] : [path.join(bin, tool), args]
  const run = async (tool: string, args: string[], timeoutMs = 60_000): Promise<string> => {
    const [cmd, argv] = command(tool, args)
    try {
      const { stdout } = await execFileAsync(cmd, argv, { cwd: dir, timeout: timeoutMs, env: { PATH: process.env.PATH, LC_ALL: 'C' } })
      return stdout
    } catch (error) {
      const e = error as { stderr?: string; stdout?: string; message: string }
      throw new Error(`private postgres: ${tool} ${args.join(' ')} failed: ${(e.stderr || e.stdout || e.message).trim()}`)
    }
  }

  let running = false
  let destroyed = false
  const stopSync = (): void => {
    if (!running) return
    running = false
    try {
      const [cmd, argv] = command('pg_ctl', ['-D', data, '-m', 'immediate', '-w', '-t', '10', 'stop'])
      execFileSync(cmd, argv, { cwd: dir, stdio: 'ignore', timeout: 15_000 })
    } catch {
      // already gone
    }
    try {
      rmSync(dir, { recursive: true, force: true })
    } catch {
      // best effort
    }
  }
  // Safety net: a test process that dies without destroy() must not leave a postmaster behind.
  process.once('exit', stopSync)

  try {
    await run('initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C', '--no-sync'])
    let port = 0
    const configure = async () => {
      port = await freePort()
      await appendFile(
        path.join(data, 'postgresql.conf'),
        [
          '',
          '# private test server (test/support/private-postgres.ts); later lines win',
          `port = ${port}`,
          "listen_addresses = '127.0.0.1'",
          `unix_socket_directories = '${sockets}'`,
          // fsync off is safe here: only the server process is ever killed, never the OS. Commits stay synchronous.
          'fsync = off',
          'full_page_writes = off',
          'max_connections = 50',
          '',
        ].join('\n'),
      )
    }
    await configure()

    const start = async (): Promise<void> => {
      if (destroyed) throw new Error('private postgres: destroyed')
      if (running) return
      await run('pg_ctl', ['-D', data, '-l', logFile, '-w', '-t', '60', 'start'])
      running = true
    }
    // First start: if the port was taken meanwhile, pick another one.
    for (let attempt = 1; ; attempt++) {
      try {
        await start()
        break
      } catch (error) {
        const log = await readLog(logFile)
        if (attempt >= 5 || !/could not bind|Address already in use/i.test(log)) throw new Error(`${(error as Error).message}\n${log}`)
        await configure()
      }
    }

    const crashSync = (): void => {
      if (!running) return
      const [cmd, argv] = command('pg_ctl', ['-D', data, '-m', 'immediate', '-w', '-t', '30', 'stop'])
      execFileSync(cmd, argv, { cwd: dir, stdio: 'ignore', timeout: 35_000, env: { PATH: process.env.PATH, LC_ALL: 'C' } })
      running = false
    }

    const stop = async (options: { mode?: 'fast' | 'immediate' } = {}): Promise<void> => {
      if (!running) return
      await run('pg_ctl', ['-D', data, '-m', options.mode ?? 'fast', '-w', '-t', '60', 'stop'])
      running = false
    }

    return {
      get url() {
        return `postgres://postgres@127.0.0.1:${port}/postgres`
      },
      get port() {
        return port
      },
      dir,
      get running() {
        return running
      },
      start,
      stop,
      crashSync,
      restart: async (options = {}) => {
        await stop(options)
        await start()
      },
      destroy: async () => {
        if (destroyed) return
        destroyed = true
        process.off('exit', stopSync)
        await stop({ mode: 'immediate' }).catch(() => {})
        await rm(dir, { recursive: true, force: true }).catch(() => {})
      },
      log: () => readLog(logFile),
    }
  } catch (error) {
    stopSync()
    process.off('exit', stopSync)
    await rm(dir, { recursive: true, force: true }).catch(() => {})
    throw error
  }
}

async function readLog(file: string): Promise<string> {
  try {
    const { readFile } = await import('node:fs/promises')
    return (await readFile(file, 'utf8')).split('\n').slice(-30).join('\n')
  } catch {
    return '(no log)'
  }
}
