import { existsSync } from 'node:fs'

import { ExitCode, UsageError } from '../../errors.js'
import { checkFleet } from '../../rollout/host-check.js'
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

    const { hosts: reports, ok } = await checkFleet(hosts, config, makeExecutor(config, store), store)
    const notReady = reports.filter((r) => !r.ready)
    const drifted = reports.filter((r) => r.drift)
    if (ctx.out.json) printJson(ctx.out, { ready: notReady.length === 0, drift: drifted.length > 0, hosts: reports })
    else {
      const sha = (s: string | null): string => (s ? s.slice(0, 12) : 'none')
      for (const r of reports) {
        if (ctx.out.quiet && r.ready && !r.drift) continue
        const problems = r.checks.filter((c) => c.status === 'fail').length
        const state = r.ready ? 'ready' : `NOT READY (${problems} problem${problems === 1 ? '' : 's'})`
        say(ctx.out, `${sanitizeLine(r.name)}  ${r.user}@${endpoint(r)}  ${state}${r.drift ? '  DRIFT' : ''}${r.hold ? '  (held)' : ''}`)
        for (const c of r.checks) say(ctx.out, `  ${c.status === 'fail' ? 'FAIL' : c.status}  ${c.label}: ${c.detail}`)
        if (r.drift) say(ctx.out, `  DRIFT  runs ${sha(r.commit)}, fleet recorded ${sha(r.recorded)}: changed outside fleet`)
        else if (r.commit) say(ctx.out, `  ok  commit ${sha(r.commit)}${r.recorded ? ', as fleet recorded' : ' (fleet has recorded none yet)'}`)
      }
      const listed = (list: typeof reports) => list.slice(0, 10).map((r) => sanitizeLine(r.name)).join(', ') + (list.length > 10 ? ', …' : '')
      say(ctx.out, `${reports.length - notReady.length} of ${reports.length} hosts ready${notReady.length ? `; not ready: ${listed(notReady)}` : ''}${drifted.length ? `; drift on ${drifted.length}: ${listed(drifted)}` : ''}`)
    }
    return ok ? ExitCode.ok : ExitCode.notReady
  })
}
