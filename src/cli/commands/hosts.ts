import { UsageError } from '../../errors.js'
import { loadInventory, validateRows } from '../../rollout/inventory.js'
import { shortSha } from '../../render/style.js'
import { knownHostName } from '../../ssh/known-hosts.js'
import { makeContext, withStore, type GlobalFlags } from '../context.js'
import { withReadSource } from '../read-source.js'
import { printJson, say } from '../output.js'

export interface HostAddFlags extends GlobalFlags {
  readonly port?: string
  readonly user?: string
  readonly appDir?: string
  readonly inactive?: boolean
}

export async function hostsAdd(name: string, address: string, flags: HostAddFlags): Promise<number> {
  const ctx = makeContext(flags)
  const { hosts, rejected } = validateRows(
    [{ name, address, port: flags.port ?? null, user: flags.user ?? null, app_dir: flags.appDir ?? null }],
    ctx.config,
  )
  if (rejected[0]) throw new UsageError(`host ${rejected[0].name}: ${rejected[0].reason}`)
  const host = hosts[0]!
  await withStore(ctx.config, (store) =>
    store.upsertHosts([
      {
        name: host.name,
        address: host.address,
        port: flags.port ? host.port : null,
        user: flags.user ? host.user : null,
        appDir: flags.appDir ? host.appDir : null,
        active: !flags.inactive,
      },
    ]),
  )
  if (ctx.out.json) printJson(ctx.out, { added: host.name })
  else say(ctx.out, `added ${host.name} (${host.address})`)
  return 0
}

export async function hostsSetActive(names: readonly string[], active: boolean, flags: GlobalFlags): Promise<number> {
  const ctx = makeContext(flags)
  return withStore(ctx.config, async (store) => {
    const known = new Set((await store.listHosts()).map((h) => h.name))
    const unknown = names.filter((n) => !known.has(n))
    if (unknown.length) throw new UsageError(`unknown host${unknown.length > 1 ? 's' : ''}: ${unknown.join(', ')} (nothing changed)`)
    for (const name of names) await store.setHostActive(name, active)
    if (ctx.out.json) printJson(ctx.out, { [active ? 'enabled' : 'disabled']: names })
    else say(ctx.out, `${active ? 'enabled' : 'disabled'} ${names.join(', ')}`)
    return 0
  })
}

export async function hostsList(flags: GlobalFlags): Promise<number> {
  const ctx = makeContext(flags)
  // Read-only: never creates a store, works while a rollout holds the embedded one (read-source.ts).
  return withReadSource(ctx, async (source) => {
    if (ctx.config.inventory.query) {
      const inventory = await source.inventory()
      if (ctx.out.json) printJson(ctx.out, { source: 'query', hosts: inventory.hosts, rejected: inventory.rejected })
      else {
        say(ctx.out, `inventory from inventory.query: ${inventory.hosts.length} host(s)`)
        for (const h of inventory.hosts) say(ctx.out, `  ${h.name.padEnd(20)} ${h.user}@${h.address}:${h.port} ${h.appDir}`)
        for (const r of inventory.rejected) say(ctx.out, `  ${r.name.padEnd(20)} REJECTED: ${r.reason}`)
      }
      return 0
    }
    const rows = await source.hosts()
    if (ctx.out.json) {
      printJson(ctx.out, { source: 'hosts-table', hosts: rows })
      return 0
    }
    say(ctx.out, `${rows.length} host(s) in the fleet hosts table`)
    for (const h of rows)
      say(
        ctx.out,
        `  ${h.name.padEnd(20)} ${h.active ? 'active  ' : 'disabled'} ${(h.user ?? ctx.config.ssh.user)}@${h.address}:${h.port ?? ctx.config.ssh.port} ${h.appDir ?? ctx.config.app.dir} ${shortSha(h.currentVersion)} ${h.status ?? ''}`,
      )
    return 0
  })
}

/** After a host was really reinstalled: drop fleet's pinned key so the next connection pins the new one. */
export async function hostsForgetKey(name: string, flags: GlobalFlags): Promise<number> {
  const ctx = makeContext(flags)
  return withStore(ctx.config, async (store) => {
    const host = (await loadInventory(store, ctx.config)).hosts.find((h) => h.name === name)
    if (!host) throw new UsageError(`no active host named ${name} in the inventory`)
    const hostId = knownHostName(host.address, host.port)
    const forgotten = await store.forgetHostKey(hostId)
    if (ctx.out.json) printJson(ctx.out, { host: name, hostId, forgotten })
    else say(ctx.out, forgotten ? `forgot the pinned key of ${name} (${hostId}); the next connection pins the key it presents` : `no key was pinned for ${name} (${hostId})`)
    return 0
  })
}
