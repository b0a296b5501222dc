import { existsSync } from 'node:fs'
import pLimit from 'p-limit'

import { UsageError } from '../../errors.js'
import type { FleetConfig } from '../../config/types.js'
import { hostChecks, type HostCheck } from '../../remote/checks.js'
import { loadInventory } from '../../rollout/inventory.js'
import type { Host } from '../../types.js'
import type { Executor, Session } from '../../ssh/executor.js'
import { knownHostName } from '../../ssh/known-hosts.js'
import type { Store } from '../../store/store.js'
import { sanitizeLine } from '../../text/sanitize.js'
import { makeContext, makeExecutor, withStore, type GlobalFlags } from '../context.js'
import { printJson, say } from '../output.js'

/**
 * No row of the exit-code table means "a preflight found hosts that are not ready", and this is
 * not bad input (2) either; 1 until the table has a code for it (proposed: 8).
 */
export const NOT_READY_EXIT = 1

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

const endpoint = (h: { readonly address: string; readonly port: number }): string => (h.address.includes(':') ? `[${h.address}]:${h.port}` : `${h.address}:${h.port}`)

/**
 * `fleet hosts check [<name>...]`: connects to each active host (or the named ones, disabled too)
 * the way a rollout does and runs read-only checks (remote/checks.ts). The only thing it may
 * write is fleet's own pin of a host key seen for the first time under accept-new, exactly as the
 * first rollout would.
 */
export async function hostsCheck(names: readonly string[], flags: GlobalFlags): Promise<number> {
  const ctx = makeContext(flags)
  const { config } = ctx
  if (!config.database.url && !existsSync(config.database.dir)) {
    throw new UsageError(`no embedded store at ${config.database.dir}: nothing to check (add hosts with \`fleet hosts add\`, or set database.url)`)
  }
  return withStore(config, async (store) => {
    const inventory = await loadInventory(store, config, { includeDisabled: names.length > 0 })
    for (const r of inventory.rejected) say(ctx.out, `${sanitizeLine(r.name)}: left out, invalid inventory row: ${sanitizeLine(r.reason)}`)
    let hosts = inventory.hosts
    if (names.length > 0) {
      const unknown = names.filter((n) => !hosts.some((h) => h.name === n))
      if (unknown.length > 0) throw new UsageError(`no host named ${unknown.map((n) => JSON.stringify(n)).join(', ')} in the inventory`)
      hosts = hosts.filter((h) => names.includes(h.name))
    }
    if (hosts.length === 0) throw new UsageError('no active hosts in the inventory: nothing to check')

    const executor = makeExecutor(config, store)
    const limit = pLimit(config.rollout.concurrency)
    const reports = await Promise.all(hosts.map((h) => limit(() => checkHost(h, config, executor, store))))
    const notReady = reports.filter((r) => !r.ready)
    if (ctx.out.json) printJson(ctx.out, { ready: notReady.length === 0, hosts: reports })
    else {
      for (const r of reports) {
        if (ctx.out.quiet && r.ready) continue
        const problems = r.checks.filter((c) => c.status === 'fail').length
        say(ctx.out, `${sanitizeLine(r.name)}  ${r.user}@${endpoint(r)}  ${r.ready ? 'ready' : `NOT READY (${problems} problem${problems === 1 ? '' : 's'})`}`)
        for (const c of r.checks) say(ctx.out, `  ${c.status === 'fail' ? 'FAIL' : c.status}  ${c.label}: ${c.detail}`)
      }
      const shown = notReady.slice(0, 10).map((r) => sanitizeLine(r.name)).join(', ') + (notReady.length > 10 ? ', …' : '')
      say(ctx.out, `${reports.length - notReady.length} of ${reports.length} hosts ready${notReady.length ? `; not ready: ${shown}` : ''}`)
    }
    return notReady.length === 0 ? 0 : NOT_READY_EXIT
  })
}

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
