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
  readonly ready: boolean
  readonly checks: CheckResult[]
}

/**
 * One host's preflight (`fleet hosts check`): connect the way a rollout does, then run the read-only
 * checks of remote/checks.ts. The only thing it may write is fleet's own pin of a host key seen for
 * the first time under accept-new, exactly as the first rollout would.
 */
export async function checkHost(host: Host, config: FleetConfig, executor: Executor, store: Store): Promise<HostReport> {
  const checks: CheckResult[] = []
  const report = (): HostReport => ({ ...host, ready: checks.every((c) => c.status !== 'fail'), checks })
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
      const result = await runCheck(spec, session, config.timeouts.commandMs, gitOk)
      if (spec.id === 'git') gitOk = result.status === 'ok'
      checks.push(result)
    }
  } finally {
    session.close()
  }
  return report()
}

async function runCheck(spec: HostCheck, session: Session, timeoutMs: number, gitOk: boolean): Promise<CheckResult> {
  const base = { id: spec.id, label: spec.label }
  if (spec.command === null) return { ...base, status: 'skip', detail: spec.skipped ?? 'cannot be checked' }
  if (spec.needsGit && !gitOk) return { ...base, status: 'skip', detail: 'app dir is not a git work tree' }
  try {
    const outcome = await session.run(spec.command, { timeoutMs })
    const verdict = spec.judge(outcome)
    return { ...base, status: verdict.ok ? 'ok' : 'fail', detail: sanitizeLine(verdict.detail) }
  } catch (error) {
    return { ...base, status: 'fail', detail: sanitizeLine(error instanceof Error ? error.message : String(error)) }
  }
}
