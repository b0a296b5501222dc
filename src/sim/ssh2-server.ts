/**
 * Fallback SSH server for simulated hosts where no OpenSSH sshd is installed: ssh2's in-process
 * Server on 127.0.0.1. Public-key auth against the fleet's client key only; `exec` requests run
 * `bash --norc -c <command>` in the user's home with the simulated host's environment, streaming
 * stdout/stderr and the exit status like sshd does. No shell, pty, sftp or forwarding.
 *
 * One difference from sshd: when its connection or channel goes away, a command still running is
 * killed (its process group), so nothing started through this server outlives its client.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import net, { type Socket } from 'node:net'
import { timingSafeEqual } from 'node:crypto'
import ssh2 from 'ssh2'
import type { Connection, ParsedKey, PublicKeyAuthContext, ServerChannel } from 'ssh2'

const { Server, utils } = ssh2

export interface Ssh2SimServerOptions {
  /** Port to listen on (127.0.0.1); 0 or undefined picks a free one. */
  port?: number | undefined
  /** Path of the host's private key (OpenSSH format). */
  hostKey: string
  /** Path of the one public key allowed to log in. */
  clientPublicKey: string
  /** The only user name accepted. */
  user: string
  /** Working directory of commands (sshd uses the user's home). */
  home: string
  /** Environment added to every command (FLEET_SIM_HOST, PATH, ...). */
  env: Record<string, string>
  /** Called once per successful login (sshd's "Accepted publickey"). */
  onAccepted?: () => void
}

export interface Ssh2SimServer {
  port: number
  /** Stop listening; sessions already open keep running (like restarting sshd). */
  close(): Promise<void>
  /** Stop listening, drop every connection at once and kill their commands (like SIGKILL to sshd and its sessions). */
  kill(): Promise<void>
}

function parse(file: string, what: string): ParsedKey {
  const key = utils.parseKey(readFileSync(file))
  if (key instanceof Error) throw new Error(`ssh2 sim server: cannot parse ${what} ${file}: ${key.message}`)
  return key
}

function sameBytes(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b)
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return
  try {
    process.kill(-child.pid, signal)
  } catch {
    try {
      child.kill(signal)
    } catch {
      // already gone
    }
  }
}

export async function startSsh2SimServer(opts: Ssh2SimServerOptions): Promise<Ssh2SimServer> {
  const hostKey = readFileSync(opts.hostKey)
  const allowed = parse(opts.clientPublicKey, 'client public key')
  const allowedUser = Buffer.from(opts.user)
  const sockets = new Set<Socket>()
  const children = new Set<ChildProcess>()

  const server = new Server({ hostKeys: [hostKey] }, (client: Connection, info) => {
    const own = new Set<ChildProcess>()
    client.on('error', () => {})

    client.on('authentication', (ctx) => {
      if (ctx.method !== 'publickey' || !sameBytes(Buffer.from(ctx.username), allowedUser)) {
        return ctx.reject(['publickey'])
      }
      const pk = ctx as PublicKeyAuthContext
      if (pk.key.algo !== allowed.type || !sameBytes(pk.key.data, allowed.getPublicSSH())) return ctx.reject(['publickey'])
      if (!pk.signature) return ctx.accept() // the client only asks whether this key would do
      if (!pk.blob || allowed.verify(pk.blob, pk.signature, pk.hashAlgo) !== true) return ctx.reject(['publickey'])
      opts.onAccepted?.()
      ctx.accept()
    })

    client.on('ready', () => {
      client.on('session', (acceptSession) => {
        const session = acceptSession()
        let child: ChildProcess | null = null
        session.on('env', (_accept, reject) => reject?.()) // like sshd without AcceptEnv
        session.on('pty', (_accept, reject) => reject?.())
        session.on('shell', (_accept, reject) => reject())
        session.on('signal', (accept, _reject, sig) => {
          if (child) killGroup(child, `SIG${sig.name}` as NodeJS.Signals)
          accept?.()
        })
        session.once('exec', (accept, _reject, req) => {
          const stream: ServerChannel = accept()
          const proc = spawn('/bin/bash', ['--norc', '-c', req.command], {
            cwd: opts.home,
            detached: true, // own process group, so the whole command tree can be killed
            env: {
              HOME: opts.home,
              USER: opts.user,
              LOGNAME: opts.user,
              SHELL: '/bin/bash',
              SSH_CLIENT: `${info.ip} ${info.port} ${port}`,
              SSH_CONNECTION: `${info.ip} ${info.port} 127.0.0.1 ${port}`,
              ...opts.env,
            },
            stdio: ['pipe', 'pipe', 'pipe'],
          })
          child = proc
          own.add(proc)
          children.add(proc)
          proc.stdin?.on('error', () => {})
          stream.on('data', (d: Buffer) => proc.stdin?.write(d))
          stream.on('end', () => proc.stdin?.end())
          proc.stdout?.pipe(stream, { end: false })
          proc.stderr?.pipe(stream.stderr, { end: false })
          proc.on('error', (err) => {
            stream.stderr.write(`bash: ${err.message}\n`)
          })
          proc.on('close', (code, signal) => {
            own.delete(proc)
            children.delete(proc)
            try {
              if (code !== null) stream.exit(code)
              else stream.exit((signal ?? 'SIGKILL').replace(/^SIG/, ''), false, '')
              stream.end()
            } catch {
              // the client went away first
            }
          })
          stream.on('close', () => killGroup(proc, 'SIGKILL'))
        })
      })
    })

    client.on('close', () => {
      for (const c of own) killGroup(c, 'SIGKILL')
    })
  })

  // Our own listener hands sockets to ssh2, so kill() can drop them all abruptly.
  const tcp = net.createServer((sock) => {
    sockets.add(sock)
    sock.on('close', () => sockets.delete(sock))
    server.injectSocket(sock)
  })

  const port = await new Promise<number>((resolve, reject) => {
    tcp.once('error', reject)
    tcp.listen(opts.port ?? 0, '127.0.0.1', () => {
      tcp.off('error', reject)
      const addr = tcp.address()
      resolve(typeof addr === 'object' && addr ? addr.port : 0)
    })
  })

  const close = () => new Promise<void>((resolve) => tcp.close(() => resolve()))
  return {
    port,
    close: async () => {
      // net.Server#close waits for open connections; sshd's restart does not, so neither do we.
      void close()
    },
    kill: async () => {
      const closed = close()
      for (const s of sockets) s.destroy()
      for (const c of children) killGroup(c, 'SIGKILL')
      await closed
    },
  }
}
