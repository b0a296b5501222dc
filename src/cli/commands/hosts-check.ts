import { existsSync } from 'node:fs'
import pLimit from 'p-limit'

import { ExitCode, UsageError } from '../../errors.js'
import { checkHost } from '../../rollout/host-check.js'
import { loadInventory } from '../../rollout/inventory.js'
import { sanitizeLine } from '../../text/sanitize.js'
import { makeContext, makeExecutor, withStore, type GlobalFlags } from '../context.js'
import { printJson, say } from '../output.js'

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
    return notReady.length === 0 ? ExitCode.ok : ExitCode.notReady
  })
}
