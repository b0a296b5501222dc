/**
 * A fake clock and a scripted executor, to drive the real engine in milliseconds and make
 * failures happen on cue. The executor models just enough of a host (HEAD, a dirty flag, the
 * commit its service runs) for fleet's real commands, recognised by their shape; a host's script
 * says where it fails. Only for the fast layer: the wiring is tested against real sshd elsewhere.
 */
import type { Clock } from '../../src/rollout/clock.js'
import { ConnectError, type CommandResult, type Executor, type Session } from '../../src/ssh/executor.js'
import type { RolloutRequest } from '../../src/rollout/engine.js'
import type { HostSettings } from '../../src/rollout/host-update.js'
import type { Host } from '../../src/types.js'

let clocks = 0

/** Time moves only when someone sleeps, and at once. Each clock starts an hour after the last one made, so records sort in creation order. */
export function fakeClock(start = Date.parse('2026-01-01T00:00:00Z') + clocks++ * 3_600_000): Clock & { advance(ms: number): void } {
  let now = start
  return {
    now: () => now,
    sleep: async (ms, signal) => {
      if (signal?.aborted) return
      now += Math.max(0, ms)
      await Promise.resolve()
    },
    advance: (ms) => void (now += ms),
  }
}

export type Step = 'connect' | 'fetch' | 'install' | 'restart' | 'verify'

export interface HostScript {
  head: string
  /** The commit the service runs (null: not running). */
  running: string | null
  dirty?: boolean
  /** Steps that fail while the host is being moved to this commit. */
  failOn?: { step: Step; sha?: string; times?: number }[]
  /** Steps that hang (an orchestrator frozen there) until `thaw()`, then go on. */
  hangOn?: { step: Step; sha?: string; times?: number }[]
  /** Commands run, for assertions. */
  readonly log: string[]
}

const ok = (stdout = ''): CommandResult => ({ code: 0, signal: null, stdout, stderr: '', timedOut: false, durationMs: 1 })
const fail = (stderr: string): CommandResult => ({ code: 1, signal: null, stdout: '', stderr, timedOut: false, durationMs: 1 })

export class ScriptedFleet implements Executor {
  readonly hosts = new Map<string, HostScript>()
  connects = 0
  private readonly frozen = new Map<string, { hung: Promise<void>; hang: () => void; go: Promise<void>; thaw: () => void }>()

  constructor(
    names: readonly string[],
    head: string,
    /** Commits the remote knows, by branch name. */
    readonly branches: Record<string, string>,
  ) {
    for (const name of names) this.hosts.set(name, { head, running: head, log: [] })
  }

  host(name: string): HostScript {
    return this.hosts.get(name)!
  }

  async connect(host: Host): Promise<Session> {
    this.connects++
    const h = this.host(host.name)
    if (this.failing(h, 'connect', null)) throw new ConnectError(`cannot connect to ${host.address}:${host.port}: connection refused`, 'unreachable')
    return {
      run: async (command) => {
        const step = (['fetch', 'install', 'restart', 'verify'] as const).find((s) => command.includes(s === 'verify' ? 'is-active' : s === 'fetch' ? ' fetch ' : s))
        if (step && this.failing(h, step, step === 'verify' ? h.running : h.head, 'hangOn')) {
          this.gate(host.name).hang()
          await this.gate(host.name).go
        }
        return this.run(h, command)
      },
      close: () => {},
    }
  }

  private gate(name: string) {
    let gate = this.frozen.get(name)
    if (!gate) {
      const g: Record<string, unknown> = {}
      g.hung = new Promise<void>((resolve) => (g.hang = resolve))
      g.go = new Promise<void>((resolve) => (g.thaw = resolve))
      gate = g as unknown as NonNullable<typeof gate>
      this.frozen.set(name, gate)
    }
    return gate
  }

  /** Resolves once a command of this host hangs (hangOn). */
  hung(name: string): Promise<void> {
    return this.gate(name).hung
  }

  /** Lets the hung commands of one host (or of every host) go on. */
  thaw(name?: string): void {
    for (const host of name === undefined ? this.hosts.keys() : [name]) this.gate(host).thaw()
  }

  private failing(h: HostScript, step: Step, sha: string | null, rules: 'failOn' | 'hangOn' = 'failOn'): boolean {
    const rule = h[rules]?.find((r) => r.step === step && (r.sha === undefined || r.sha === sha) && (r.times ?? 1) > 0)
    if (!rule) return false
    if (rule.times !== undefined) rule.times--
    return true
  }

  private run(h: HostScript, command: string): CommandResult {
    h.log.push(command)
    const known = new Set(Object.values(this.branches))
    if (command.includes(' ls-remote ')) return ok(Object.entries(this.branches).map(([b, sha]) => `${sha}\trefs/heads/${b}`).join('\n'))
    if (command.includes(' rev-parse --verify --quiet ')) {
      const rev = /quiet '?([0-9a-f]+)\^\{commit\}/.exec(command)?.[1] ?? ''
      const sha = [...known].find((s) => s.startsWith(rev))
      return sha ? ok(`${sha}\n`) : fail('')
    }
    if (command.includes(' rev-parse --verify HEAD')) return ok(`${h.head}\n`)
    if (command.includes(' status --porcelain')) return ok(h.dirty ? ' M server.js\n' : '')
    if (command.includes(' fetch ')) return this.failing(h, 'fetch', null) ? fail('fatal: could not read from remote') : ok()
    const checkout = / checkout --quiet --force --detach ([0-9a-f]+)/.exec(command)
    if (checkout) {
      h.head = checkout[1]!
      return ok()
    }
    if (command.includes('install')) return this.failing(h, 'install', h.head) ? fail('install failed: missing dependency') : ok()
    if (command.includes('restart')) {
      if (this.failing(h, 'restart', h.head)) return fail('restart failed')
      h.running = h.head
      return ok()
    }
    if (command.includes('is-active')) return this.failing(h, 'verify', h.running) ? fail('inactive') : ok()
    throw new Error(`scripted host: unexpected command ${command}`)
  }
}

/** A rollout request for scripted hosts: every host on 127.0.0.1, the default steps, short verify; `over` changes any part. */
export function scriptedRequest(names: readonly string[], over: Partial<RolloutRequest> & { readonly verify?: HostSettings['verify'] } = {}): RolloutRequest {
  const { verify, ...rest } = over
  return {
    hosts: names.map((name) => ({ name, address: '127.0.0.1', port: 22, user: 'u', appDir: '/srv/app' })),
    ref: 'main',
    stages: [100],
    failureThreshold: 0.3,
    concurrency: 2,
    stageDelayMs: 0,
    connectTimeoutMs: 1_000,
    settings: {
      remote: 'origin',
      branch: 'main',
      service: 'app',
      steps: { install: 'bun install', restart: 'sudo systemctl restart {service}', verify: 'systemctl is-active --quiet {service}', health: null },
      verify: verify ?? { delayMs: 5_000, retries: 2, intervalMs: 2_000 },
      commandTimeoutMs: 120_000,
    },
    owner: 'test',
    seed: 'scripted',
    ...rest,
  }
}
