import { refuseIfInActiveRollout } from '../../rollout/lease.js'
import { UsageError } from '../../errors.js'
import { loadInventory, validateRow } from '../../rollout/inventory.js'
import { holdHost, holdsInForce, unholdHost } from '../../rollout/host-holds.js'
import { shortSha } from '../../render/style.js'
import { visibleLength } from '../../render/width.js'
import { knownHostName } from '../../ssh/known-hosts.js'
import type { HostPatch, HostRow } from '../../store/store.js'
import { makeContext, withStore, type Context, type GlobalFlags } from '../context.js'
import { withReadSource } from '../../report/read-source.js'
import { printJson, say } from '../output.js'

export interface HostFieldFlags extends GlobalFlags {
  readonly port?: string
  readonly user?: string
  readonly appDir?: string
  readonly ring?: string
  readonly timezone?: string
}
export interface HostAddFlags extends HostFieldFlags {
  readonly inactive?: boolean
}
export interface HostUpdateFlags extends HostFieldFlags {
  readonly address?: string
}

/** A name as the operator would type it back into a shell (the name itself never reaches one). */
const asArgument = (name: string): string => (/^[\w@%+=:,./-]+$/u.test(name) ? name : `'${name.replaceAll("'", `'\\''`)}'`)

/** Checks a row with the same rules as the inventory; a problem is bad input (exit 2, nothing changed). */
function checkRow(ctx: Context, row: Parameters<typeof validateRow>[0]): void {
  const result = validateRow(row, { ...ctx.config.ssh, appDir: ctx.config.app.dir })
  if ('reason' in result) throw new UsageError(`host ${result.name}: ${result.reason} (nothing changed)`)
}

const queryNote = (ctx: Context): void => {
  if (ctx.config.inventory.query) ctx.out.stderr.write('fleet: note: inventory.query is configured, so rollouts read that query, not the hosts table\n')
}

/** Adds a new host; an existing name is refused so nothing the operator did not name changes. */
export async function hostsAdd(typed: string, address: string, flags: HostAddFlags): Promise<number> {
  const ctx = makeContext(flags)
  const name = typed.normalize('NFC') // the form the inventory compares
  checkRow(ctx, { name, address, port: flags.port ?? null, user: flags.user ?? null, app_dir: flags.appDir ?? null, ring: flags.ring ?? null, timezone: flags.timezone ?? null })
  const added = await withStore(ctx.config, (store) =>
    store.addHost({
      name,
      address,
      port: flags.port !== undefined ? Number(flags.port) : null,
      user: flags.user ?? null,
      appDir: flags.appDir ?? null,
      active: !flags.inactive,
      ring: flags.ring?.normalize('NFC') || null,
      timezone: flags.timezone || null,
    }),
  )
  if (!added)
    throw new UsageError(
      `host ${name} already exists (nothing changed); to change it: fleet hosts update ${asArgument(name)} [--address <address>] [--port <port>] [--user <user>] [--app-dir <path>] [--ring <name>] [--timezone <zone>]`,
    )
  if (ctx.out.json) printJson(ctx.out, { added: name })
  else say(ctx.out, `added ${name} (${address})${flags.inactive ? ', disabled' : ''}`)
  queryNote(ctx)
  return 0
}

/** Changes only the fields given on the command line. */
export async function hostsUpdate(name: string, flags: HostUpdateFlags): Promise<number> {
  const ctx = makeContext(flags)
  const patch: Omit<HostPatch, 'name'> = {
    ...(flags.address !== undefined ? { address: flags.address } : {}),
    ...(flags.port !== undefined ? { port: Number(flags.port) } : {}),
    ...(flags.user !== undefined ? { user: flags.user } : {}),
    ...(flags.appDir !== undefined ? { appDir: flags.appDir } : {}),
    // '' clears them: the last ring, windows in their own time zone.
    ...(flags.ring !== undefined ? { ring: flags.ring.normalize('NFC') || null } : {}),
    ...(flags.timezone !== undefined ? { timezone: flags.timezone || null } : {}),
  }
  if (Object.keys(patch).length === 0) throw new UsageError('nothing to change: give --address, --port, --user, --app-dir, --ring or --timezone')
  const changed = await withStore(ctx.config, async (store) => {
    const before = (await store.listHosts()).find((h) => h.name === name)
    if (!before) throw new UsageError(`no host named ${name} in the hosts table (add it with: fleet hosts add ${asArgument(name)} <address>)`)
    // The given values are checked raw (so "--port 22x" is refused, not read as NaN); the rest as stored.
    checkRow(ctx, {
      name,
      address: flags.address ?? before.address,
      port: flags.port ?? before.port,
      user: flags.user ?? before.user,
      app_dir: flags.appDir ?? before.appDir,
      ring: flags.ring ?? before.ring,
      timezone: flags.timezone ?? before.timezone,
    })
    await refuseIfInActiveRollout(store, [name], `\`fleet hosts update\``, { interrupted: true })
    await store.updateHost(name, patch)
    return (Object.keys(patch) as (keyof typeof patch)[]).filter((k) => before[k] !== patch[k]).map((k) => `${k} ${show(before[k])} → ${show(patch[k])}`)
  })
  if (ctx.out.json) printJson(ctx.out, { updated: name, fields: Object.keys(patch) })
  else say(ctx.out, changed.length ? `updated ${name}: ${changed.join(', ')}` : `${name} already had these values; nothing changed`)
  queryNote(ctx)
  return 0
}

const show = (value: HostRow[keyof HostRow] | undefined): string => (value == null ? '(default)' : String(value))

export async function hostsSetActive(names: readonly string[], active: boolean, flags: GlobalFlags): Promise<number> {
  const ctx = makeContext(flags)
  return withStore(ctx.config, async (store) => {
    const known = new Set((await store.listHosts()).map((h) => h.name))
    const unknown = names.filter((n) => !known.has(n))
    if (unknown.length) throw new UsageError(`unknown host${unknown.length > 1 ? 's' : ''}: ${unknown.join(', ')} (nothing changed)`)
    // Enabling changes no rollout in progress (its hosts were chosen when it started); disabling would.
    if (!active) await refuseIfInActiveRollout(store, names, `\`fleet hosts disable\``, { interrupted: true })
    for (const name of names) await store.setHostActive(name, active)
    if (ctx.out.json) printJson(ctx.out, { [active ? 'enabled' : 'disabled']: names })
    else say(ctx.out, `${active ? 'enabled' : 'disabled'} ${names.join(', ')}`)
    return 0
  })
}

/** Aligned plain columns under a header (names may be wide characters, so widths are terminal columns). */
function columns(head: readonly string[], rows: readonly string[][]): string {
  const lines = [head, ...rows]
  const widths = head.map((_, i) => lines.reduce((w, cells) => Math.max(w, visibleLength(cells[i]!)), 0))
  return lines.map((cells) => cells.map((c, i) => c + ' '.repeat(widths[i]! - visibleLength(c))).join('  ').trimEnd()).join('\n')
}

export async function hostsList(flags: GlobalFlags): Promise<number> {
  const ctx = makeContext(flags)
  // Read-only: never creates a store, works while a rollout holds the embedded one (read-source.ts).
  return withReadSource(ctx, async (source) => {
    const holds = holdsInForce(await source.holds(), new Date())
    const held = (name: string): string => {
      const h = holds.get(name)
      return h ? `held${h.until ? ` until ${h.until.toISOString().slice(0, 16)}Z` : ''}` : '-'
    }
    if (ctx.config.inventory.query) {
      const inventory = await source.inventory()
      // fleet's hold, else the inventory's own hold column.
      const hosts = inventory.hosts.map((h) => ({ ...h, hold: holds.get(h.name) ?? (h.hold ? { reason: h.hold, source: 'inventory' } : null) }))
      if (ctx.out.json) printJson(ctx.out, { source: 'query', hosts, rejected: inventory.rejected })
      else {
        say(ctx.out, `inventory from inventory.query: ${inventory.hosts.length} host(s)`)
        const rows = inventory.hosts.map((h) => [h.name, h.user, h.address, String(h.port), h.appDir, h.ring ?? '-', h.timezone ?? '-', h.hold && !holds.has(h.name) ? 'held (inventory)' : held(h.name)])
        if (rows.length) say(ctx.out, columns(['name', 'user', 'address', 'port', 'app_dir', 'ring', 'timezone', 'hold'], rows))
        for (const r of inventory.rejected) say(ctx.out, `rejected ${r.name}: ${r.reason}`)
      }
      return 0
    }
    const rows = await source.hosts()
    if (ctx.out.json) {
      printJson(ctx.out, { source: 'hosts-table', hosts: rows.map((h) => ({ ...h, hold: holds.get(h.name) ?? null })) })
      return 0
    }
    say(ctx.out, `${rows.length} host(s) in the fleet hosts table`)
    // A row's own user, port and app dir, else the config's: what a rollout would use.
    const cells = rows.map((h) => [
      h.name,
      h.active ? 'active' : 'disabled',
      h.user ?? ctx.config.ssh.user,
      h.address,
      String(h.port ?? ctx.config.ssh.port),
      h.appDir ?? ctx.config.app.dir,
      shortSha(h.currentVersion),
      h.status ?? '-',
      h.ring ?? '-',
      h.timezone ?? '-',
      held(h.name),
    ])
    if (cells.length) say(ctx.out, columns(['name', 'state', 'user', 'address', 'port', 'app_dir', 'version', 'status', 'ring', 'timezone', 'hold'], cells))
    return 0
  })
}

/** After a host was really reinstalled: drop fleet's pinned key so the next connection pins the new one. */
export async function hostsForgetKey(name: string, flags: GlobalFlags): Promise<number> {
  const ctx = makeContext(flags)
  return withStore(ctx.config, async (store) => {
    // Disabled hosts too: a reinstalled host is typically disabled until it is ready again.
    const host = (await loadInventory(store, ctx.config, { includeDisabled: true })).hosts.find((h) => h.name === name)
    if (!host) throw new UsageError(`no host named ${name} in the inventory (${ctx.config.inventory.query ? 'inventory.query' : 'the hosts table'})`)
    const hostId = knownHostName(host.address, host.port)
    const forgotten = await store.forgetHostKey(hostId)
    if (ctx.out.json) printJson(ctx.out, { host: name, hostId, forgotten })
    else say(ctx.out, forgotten ? `forgot the pinned key of ${name} (${hostId}); the next connection pins the key it presents` : `no key was pinned for ${name} (${hostId})`)
    return 0
  })
}

/** `fleet hosts hold <name> --reason <text> [--until <time>]`: kept out of every rollout until unheld (or until). */
export async function hostsHold(name: string, flags: GlobalFlags & { reason?: string; until?: string }): Promise<number> {
  const ctx = makeContext(flags)
  const hold = await withStore(ctx.config, (store) => holdHost(store, ctx.config, { name, reason: flags.reason, until: flags.until }))
  if (ctx.out.json) printJson(ctx.out, { held: hold.name, reason: hold.reason, actor: hold.actor, since: hold.since, until: hold.until })
  else say(ctx.out, `held ${hold.name} ${hold.until ? `until ${hold.until.toISOString()}` : 'until `fleet hosts unhold`'}: ${hold.reason} (${hold.actor}); rollouts leave it alone`)
  return 0
}

export async function hostsUnhold(name: string, flags: GlobalFlags): Promise<number> {
  const ctx = makeContext(flags)
  const lifted = await withStore(ctx.config, (store) => unholdHost(store, name))
  if (ctx.out.json) printJson(ctx.out, { unheld: name, was: lifted })
  else say(ctx.out, lifted ? `unheld ${name} (held since ${lifted.since.toISOString()} by ${lifted.actor}: ${lifted.reason})` : `${name} was not held; nothing changed`)
  return 0
}
