/**
 * Hosts that misbehave the way real VPSs do, on 127.0.0.1: real TCP listeners
 * that never finish an SSH handshake, and a proxy in front of a real sshd that
 * can reset every connection through it mid-command.
 */
import net from 'node:net'

export type HostileKind =
  /** accepts TCP and never sends a byte */
  | 'silent'
  /** sends an SSH banner, then nothing */
  | 'banner-stall'
  /** answers with escape sequences and junk instead of SSH */
  | 'garbage'
  /** sends its banner one byte a second */
  | 'slow'

export interface HostileListener {
  readonly kind: HostileKind
  readonly port: number
  /** Connections accepted so far. */
  readonly accepted: number
  close(): Promise<void>
}

const BANNER = 'SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n'
export const GARBAGE = 'HTTP/1.1 400 Bad Request\r\n\x1b]0;PWNED\x07\x1b[2J\x1b[H\xff\xfe garbage\r\n'

async function listen(server: net.Server): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve())
  })
  return (server.address() as net.AddressInfo).port
}

function closer(server: net.Server, sockets: Set<net.Socket>, timers: Set<NodeJS.Timeout>): () => Promise<void> {
  return () =>
    new Promise<void>((resolve) => {
      for (const t of timers) clearInterval(t)
      for (const s of sockets) s.destroy()
      server.close(() => resolve())
    })
}

export async function startHostile(kind: HostileKind): Promise<HostileListener> {
  const sockets = new Set<net.Socket>()
  const timers = new Set<NodeJS.Timeout>()
  let accepted = 0
  const server = net.createServer((socket) => {
    accepted++
    sockets.add(socket)
    socket.on('error', () => {})
    socket.on('close', () => sockets.delete(socket))
    switch (kind) {
      case 'silent':
        return
      case 'banner-stall':
        socket.write(BANNER)
        return
      case 'garbage': {
        const timer = setInterval(() => socket.write(Buffer.from(GARBAGE, 'latin1')), 100)
        timers.add(timer)
        socket.on('close', () => clearInterval(timer))
        return
      }
      case 'slow': {
        let i = 0
        const timer = setInterval(() => {
          if (i < BANNER.length) socket.write(BANNER[i++]!)
        }, 1_000)
        timers.add(timer)
        socket.on('close', () => clearInterval(timer))
        return
      }
    }
  })
  const port = await listen(server)
  return {
    kind,
    port,
    get accepted() {
      return accepted
    },
    close: closer(server, sockets, timers),
  }
}

export interface ResettingProxy {
  readonly port: number
  /** Connections through the proxy so far. */
  readonly accepted: number
  /** Sends a TCP RST on every open connection (both sides), as a flaky network or a rebooting router would. */
  reset(): void
  close(): Promise<void>
}

/** A TCP proxy to a real sshd whose connections can be reset on cue; new connections still go through. */
export async function startResettingProxy(targetPort: number): Promise<ResettingProxy> {
  const pairs = new Set<[net.Socket, net.Socket]>()
  const sockets = new Set<net.Socket>()
  let accepted = 0
  const server = net.createServer((client) => {
    accepted++
    const upstream = net.connect(targetPort, '127.0.0.1')
    const pair: [net.Socket, net.Socket] = [client, upstream]
    pairs.add(pair)
    for (const s of pair) {
      sockets.add(s)
      s.on('error', () => {})
      s.on('close', () => {
        sockets.delete(s)
        pairs.delete(pair)
        for (const other of pair) other.destroy()
      })
    }
    client.pipe(upstream)
    upstream.pipe(client)
  })
  const port = await listen(server)
  return {
    port,
    get accepted() {
      return accepted
    },
    reset: () => {
      for (const pair of pairs) for (const s of pair) s.resetAndDestroy()
    },
    close: closer(server, sockets, new Set()),
  }
}
