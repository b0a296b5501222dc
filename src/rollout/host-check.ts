import pLimit from 'p-limit'

import type { FleetConfig } from '../config/types.js'
import { hostChecks, type HostCheck } from '../remote/checks.js'
import type { Executor, Session } from '../ssh/executor.js'
import { knownHostName } from '../ssh/known-hosts.js'
import type { Store } from '../store/store.js'
import { sanitizeLine } from '../text/sanitize.js'
import type { Host } from '../types.js'

export type CheckStatus = 'ok' | 'fail' | 'skip'

export interface CheckResult {
  readonly id: string
  readonly label: string
  readonly status: CheckStatus
  readonly detail: string
}

export interface HostReport {
  readonly name: string
  readonly address: string
  readonly port: number
  readonly user: string
  readonly appDir: string
  /** Every check passed (drift is told apart: `drift`). */
  readonly ready: boolean
  /** The commit the host runs (`git rev-parse HEAD` in its app dir); null when it could not be read. */
  readonly commit: string | null
  /** The commit fleet last recorded for it (hosts table, else its latest rollout or `fleet rollback`); null: never recorded. */
  readonly recorded: string | null
  /** It runs another commit than fleet recorded: someone changed it by hand. */
  readonly drift: boolean
  /** Why it is not ready or drifted, one line each (failed checks, then drift). */
  readonly problems: string[]
  /** Held out of rollouts (`fleet hosts hold`, or the inventory's hold column): why. */
  readonly hold?: string | null
  readonly ring?: string | null
  readonly timezone?: string | null
  readonly checks: CheckResult[]
}

export interface FleetCheck {
  readonly hosts: HostReport[]
  /** Exit 9 when false: some host is not ready, unreachable or drifted. */
  readonly ok: boolean
}

/**
 * `fleet hosts check`: every host checked (one connection each, `rollout.concurrency` at a time),
 * then compared with what fleet recorded for it.
 */
export async function checkFleet(hosts: readonly Host[], config: FleetConfig, executor: Executor, store: Store): Promise<FleetCheck> {
  const recorded = await recordedVersions(store, hosts.map((h) => h.name))
  const limit = pLimit(config.rollout.concurrency)
  const reports = await Promise.all(hosts.map((h) => limit(async () => withDrift(await checkHost(h, config, executor, store), recorded.get(h.name) ?? null))))
  return { hosts: reports, ok: reports.every((r) => r.ready && !r.drift) }
}

/** What fleet last recorded of each host: its hosts-table row's version, else its rollouts' and rollbacks' records. */
async function recordedVersions(store: Store, names: readonly string[]): Promise<Map<string, string>> {
  const table = new Map((await store.listHosts()).filter((h) => h.currentVersion).map((h) => [h.name, h.currentVersion!]))
  const rest = names.filter((n) => !table.has(n))
  const fromRollouts = rest.length > 0 ? await store.recordedVersions(rest) : new Map<string, string>()
  return new Map([...fromRollouts, ...table])
}

function withDrift(report: HostReport, recorded: string | null): HostReport {
  const drift = report.commit !== null && recorded !== null && report.commit !== recorded
  const problems = [...report.problems]
  if (drift) problems.push(`drift: runs ${report.commit!.slice(0, 12)}, fleet recorded ${recorded!.slice(0, 12)} (changed outside fleet)`)
  return { ...report, recorded, drift, problems }
}

/**
 * One host's preflight (`fleet hosts check`): connect the way a rollout does, then run the read-only
 * checks of remote/checks.ts. The only thing it may write is fleet's own pin of a host key seen for
 * the first time under accept-new, exactly as the first rollout would.
 */
export async function checkHost(host: Host, config: FleetConfig, executor: Executor, store: Store): Promise<HostReport> {
  const checks: CheckResult[] = []
  let commit: string | null = null
  const report = (): HostReport => ({
    ...host,
    ready: checks.every((c) => c.status !== 'fail'),
    commit,
    recorded: null,
    drift: false,
    problems: checks.filter((c) => c.status === 'fail').map((c) => `${c.label}: ${c.detail}`),
    checks,
  })
  const pinName = knownHostName(host.address, host.port)
  const pinnedBefore = await store.getHostKey(pinName)
  let session: Session
  try {
    session = await executor.connect(host, { timeoutMs: config.ssh.connectTimeoutMs })
  } catch (error) {
    checks.push({ id: 'connect', label: 'connect', status: 'fail', detail: sanitizeLine(error instanceof Error ? error.message : String(error)) })
    return report()
  }
  try {
    const newlyPinned = pinnedBefore === null && (await store.getHostKey(pinName)) !== null
    checks.push({
      id: 'connect',
      label: 'connect',
      status: 'ok',
      detail: `logged in; host key ${newlyPinned ? 'seen for the first time, pinned in fleet’s store (accept-new)' : 'matches'}`,
    })
    const specs = hostChecks({ ...config.app, appDir: host.appDir, steps: config.steps })
    let gitOk = true
    for (const spec of specs) {
      const { commit: head, ...result } = await runCheck(spec, session, config.timeouts.commandMs, gitOk)
      if (spec.id === 'git') gitOk = result.status === 'ok'
      if (head) commit = head
      checks.push(result)
    }
  } finally {
    session.close()
  }
  return report()
}

async function runCheck(spec: HostCheck, session: Session, timeoutMs: number, gitOk: boolean): Promise<CheckResult & { commit?: string }> {
  const base = { id: spec.id, label: spec.label }
  if (spec.command === null) return { ...base, status: 'skip', detail: spec.skipped ?? 'cannot be checked' }
  if (spec.needsGit && !gitOk) return { ...base, status: 'skip', detail: 'app dir is not a git work tree' }
  try {
    const outcome = await session.run(spec.command, { timeoutMs })
    const verdict = spec.judge(outcome)
    const commit = verdict.commit && /^[0-9a-f]{40,64}$/.test(verdict.commit) ? { commit: verdict.commit } : {}
    return { ...base, status: verdict.ok ? 'ok' : 'fail', detail: sanitizeLine(verdict.detail), ...commit }
  } catch (error) {
    return { ...base, status: 'fail', detail: sanitizeLine(error instanceof Error ? error.message : String(error)) }
  }
}
