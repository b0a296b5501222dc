import { readFileSync } from 'node:fs'
import type { Client, ClientChannel, ConnectConfig } from 'ssh2'

import type { HostKeyPolicy } from '../config/types.js'
import type { Host } from '../types.js'
import {
  ConnectError,
  ConnectionLostError,
  type CommandResult,
  type ConnectOptions,
  type Executor,
  type RunOptions,
  type Session,
} from './executor.js'
import { sanitize, sanitizeLine } from '../text/sanitize.js'
import { readKnownHosts, verifyHostKey, type KnownHostEntry, type PinnedKeys } from './known-hosts.js'

export interface Ssh2ExecutorConfig {
  /** Path to the private key; null to rely on the agent only. */
  readonly privateKey: string | null
  /** ssh-agent socket; null to use none. */
  readonly agent: string | null
  readonly knownHosts: string
  readonly hostKeyPolicy: HostKeyPolicy
  readonly pins: PinnedKeys
}

/** Bytes of each stream kept for error reports. */
const TAIL_BYTES = 4096

const keepTail = (chunks: Buffer[], size: { n: number }, chunk: Buffer): void => {
  chunks.push(chunk)
  size.n += chunk.length
  while (size.n - (chunks[0]?.length ?? 0) >= TAIL_BYTES && chunks.length > 1) size.n -= chunks.shift()!.length
}

/** The kept tail as text, cleaned: what a host prints is untrusted and ends up in terminals, logs and the store. */
const tailText = (chunks: Buffer[]): string => {
  const all = Buffer.concat(chunks)
  return sanitize(all.subarray(Math.max(0, all.length - TAIL_BYTES)).toString('utf8'))
}

/** Executor over ssh2: one TCP connection per host, verified against known_hosts and the store's pins. */
export class Ssh2Executor implements Executor {
  private readonly key: Buffer | null
  private knownHosts: readonly KnownHostEntry[] | null = null
  /** Only for tests and benchmarks: how many connections this executor opened. */
  connectionsOpened = 0

  constructor(private readonly config: Ssh2ExecutorConfig) {
    // Read once; the key's contents never leave this object.
    this.key = config.privateKey ? readFileSync(config.privateKey) : null
  }

  async connect(host: Host, options: ConnectOptions): Promise<Session> {
    const { Client } = await import('ssh2')
    this.knownHosts ??= readKnownHosts(this.config.knownHosts)
    const knownHosts = this.knownHosts
    const client = new Client()
    this.connectionsOpened++
    let hostKeyProblem: string | null = null
    const endpoint = host.address.includes(':') ? `[${host.address}]:${host.port}` : `${host.address}:${host.port}`

    const connectConfig: ConnectConfig = {
      host: host.address,
      port: host.port,
      username: host.user,
      readyTimeout: options.timeoutMs,
      keepaliveInterval: 15_000,
      keepaliveCountMax: 4,
      ...(this.key ? { privateKey: this.key } : {}),
      ...(this.config.agent ? { agent: this.config.agent } : {}),
      hostVerifier: (key: Buffer, verify: (ok: boolean) => void) => {
        verifyHostKey({
          address: host.address,
          port: host.port,
          key,
          knownHosts,
          pins: this.config.pins,
          policy: this.config.hostKeyPolicy,
        }).then(
          (verdict) => {
            if (!verdict.ok) hostKeyProblem = verdict.reason
            verify(verdict.ok)
          },
          (error: unknown) => {
            hostKeyProblem = `cannot check the host key: ${String(error)}`
            verify(false)
          },
        )
      },
    }

    await new Promise<void>((resolve, reject) => {
      // ssh2 can emit 'error' more than once (a timeout, then "Connection lost before
      // handshake" after destroy()) and 'close' without an error: the listeners stay for
      // the client's whole life and the first outcome wins, so nothing is ever unhandled.
      let settled = false
      const settle = (error: ConnectError | null) => {
        if (settled) return
        settled = true
        clearTimeout(deadline)
        options.signal?.removeEventListener('abort', onAbort)
        if (error) {
          client.destroy()
          reject(error)
        } else resolve()
      }
      const onAbort = () => settle(new ConnectError('connect aborted', 'unreachable'))
      // readyTimeout covers the handshake; this also covers a peer that stalls elsewhere.
      const deadline = setTimeout(() => settle(new ConnectError(`connect timed out after ${options.timeoutMs} ms`, 'timeout')), options.timeoutMs + 1_000)
      if (options.signal?.aborted) return onAbort()
      options.signal?.addEventListener('abort', onAbort, { once: true })
      client.once('ready', () => settle(null))
      client.on('error', (error: Error & { level?: string }) => {
        if (hostKeyProblem) return settle(new ConnectError(hostKeyProblem, 'host-key'))
        if (error.level === 'client-authentication')
          return settle(new ConnectError(`authentication as ${host.user} failed (check ssh.privateKey / ssh.agent)`, 'auth'))
        if (/timed out/i.test(error.message)) return settle(new ConnectError(`connect timed out after ${options.timeoutMs} ms`, 'timeout'))
        // The message may quote what the peer sent (a banner, garbage): untrusted text.
        settle(new ConnectError(`cannot connect to ${endpoint}: ${sanitizeLine(error.message)}`, 'unreachable'))
      })
      client.on('close', () => settle(new ConnectError(`cannot connect to ${endpoint}: the connection closed during the SSH handshake`, 'unreachable')))
      try {
        client.connect(connectConfig)
      } catch (error) {
        settle(new ConnectError(`cannot connect to ${endpoint}: ${sanitizeLine(String(error))}`, 'unreachable'))
      }
    })
    return new Ssh2Session(client)
  }
}

class Ssh2Session implements Session {
  private closed = false
  private lost: Error | null = null
  private readonly inFlight = new Set<(error: Error) => void>()

  constructor(private readonly client: Client) {
    const onGone = (error?: Error) => {
      if (this.closed) return
      this.lost = new ConnectionLostError(`connection lost${error ? `: ${sanitizeLine(error.message)}` : ''}`)
      for (const fail of this.inFlight) fail(this.lost)
    }
    client.on('error', onGone)
    client.on('close', () => onGone())
  }

  run(command: string, options: RunOptions): Promise<CommandResult> {
    if (this.lost) return Promise.reject(this.lost)
    if (this.closed) return Promise.reject(new ConnectionLostError('session already closed'))
    const started = Date.now()
    return new Promise<CommandResult>((resolve, reject) => {
      const out: Buffer[] = []
      const err: Buffer[] = []
      const outSize = { n: 0 }
      const errSize = { n: 0 }
      let channel: ClientChannel | null = null
      let timedOut = false
      let settled = false

      const finish = (result: Omit<CommandResult, 'stdout' | 'stderr' | 'durationMs' | 'timedOut'> | Error) => {
        if (settled) return
        settled = true
        clearTimeout(timer)
        options.signal?.removeEventListener('abort', onAbort)
        this.inFlight.delete(finish)
        if (result instanceof Error) return reject(result)
        resolve({ ...result, stdout: tailText(out), stderr: tailText(err), timedOut, durationMs: Date.now() - started })
      }
      const kill = () => {
        // OpenSSH delivers the signal to the remote process; closing the channel makes sure we stop waiting.
        try {
          channel?.signal('KILL')
        } catch {
          /* the channel may already be gone */
        }
        channel?.close()
      }
      const timer = setTimeout(() => {
        timedOut = true
        kill()
        finish({ code: null, signal: 'KILL' })
      }, options.timeoutMs)
      const onAbort = () => {
        kill()
        finish(new Error('aborted'))
      }
      options.signal?.addEventListener('abort', onAbort, { once: true })
      this.inFlight.add(finish)

      this.client.exec(command, (error, stream) => {
        if (error) return finish(new ConnectionLostError(`cannot start a command: ${sanitizeLine(error.message)}`))
        channel = stream
        if (settled) return kill()
        stream.on('data', (chunk: Buffer) => keepTail(out, outSize, chunk))
        stream.stderr.on('data', (chunk: Buffer) => keepTail(err, errSize, chunk))
        let exit: { code: number | null; signal: string | null } = { code: null, signal: null }
        stream.on('exit', (code: number | null, signal?: string) => {
          exit = { code: code ?? null, signal: signal ?? null }
        })
        stream.on('close', () => finish(exit))
      })
    })
  }

  close(): void {
    if (this.closed) return
    this.closed = true
    this.client.end()
  }
}
