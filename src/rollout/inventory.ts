import type { FleetConfig } from '../config/types.js'
import { formatDuration } from '../duration.js'
import { UsageError } from '../errors.js'
import { sanitizeLine } from '../text/sanitize.js'
import { checkAbsolutePath, checkAddress, checkHostName, checkPort, checkUser, codePoint, INVISIBLE } from '../remote/validate.js'
import type { Store } from '../store/store.js'
import type { Host } from '../types.js'

export interface RejectedHost {
  /** The row's name; if the name itself is invalid, its raw value JSON-quoted (or "(no name)"). */
  readonly name: string
  readonly reason: string
}

export interface Inventory {
  readonly hosts: readonly Host[]
  readonly rejected: readonly RejectedHost[]
  readonly source: 'hosts-table' | 'query'
}

/** A raw inventory row: from fleet_hosts or the operator's query (snake_case columns). */
export interface InventoryRow {
  readonly name?: unknown
  readonly address?: unknown
  readonly port?: unknown
  readonly user?: unknown
  readonly app_dir?: unknown
  readonly ring?: unknown
  readonly timezone?: unknown
  /** true, or the reason: held out of every rollout. */
  readonly hold?: unknown
}

/** A rejected value, quoted, every control and invisible character shown as its code point. */
const printable = (value: unknown): string =>
  JSON.stringify(String(value))
    .replace(new RegExp(`${INVISIBLE.source}|[\\u007f-\\u009f\\u2028\\u2029\\u202a-\\u202e\\u2066-\\u2069]`, 'gu'), (ch) => `<${codePoint(ch)}>`)
    .slice(0, 80)

/**
 * Validates one row; a malformed row is rejected whole, never half-used.
 * Host fields come from a database fleet does not own, so they are untrusted.
 */
export function validateRow(row: InventoryRow, defaults: FleetConfig['ssh'] & { appDir: string }): Host | RejectedHost {
  // NFC: a name typed with a composed é and one with e + a combining accent are the same host.
  const name = (typeof row.name === 'string' ? row.name : row.name == null ? '' : String(row.name)).normalize('NFC')
  const nameProblem = checkHostName(name)
  // A valid name labels its row as is; an invalid one is shown quoted and escaped, so a newline in it never starts a line.
  const label = !nameProblem ? name : row.name == null ? '(no name)' : printable(row.name)
  const fail = (reason: string): RejectedHost => ({ name: label, reason })
  if (nameProblem) return fail(`name ${nameProblem}`)
  if (typeof row.address !== 'string') return fail('address is missing')
  const addressProblem = checkAddress(row.address)
  if (addressProblem) return fail(`address ${printable(row.address)} ${addressProblem}`)
  let port = defaults.port
  if (row.port != null) {
    port = typeof row.port === 'number' ? row.port : /^\d+$/.test(String(row.port)) ? Number(row.port) : NaN
    const portProblem = checkPort(port)
    if (portProblem) return fail(`port ${printable(row.port)} ${portProblem}`)
  }
  let user = defaults.user
  if (row.user != null) {
    if (typeof row.user !== 'string' || checkUser(row.user)) return fail(`user ${printable(row.user)} ${checkUser(String(row.user))}`)
    user = row.user
  }
  let appDir = defaults.appDir
  if (row.app_dir != null) {
    const dirProblem = typeof row.app_dir === 'string' ? checkAbsolutePath(row.app_dir) : 'must be a string'
    if (dirProblem) return fail(`app_dir ${printable(row.app_dir)} ${dirProblem}`)
    appDir = row.app_dir as string
  }
  const shape = shapeOf(row)
  if (typeof shape === 'string') return fail(shape)
  return { name, address: row.address, port, user, appDir, ...shape }
}

/** A host's ring, time zone and hold from its row: checked like its name (they are shown everywhere). */
function shapeOf(row: InventoryRow): { ring?: string; timezone?: string; hold?: string } | string {
  const shape: { ring?: string; timezone?: string; hold?: string } = {}
  if (row.ring != null && row.ring !== '') {
    const ring = String(row.ring).normalize('NFC')
    const problem = checkHostName(ring)
    if (problem || [...ring].length > 64) return `ring ${printable(row.ring)} ${problem ?? 'must be at most 64 characters'}`
    shape.ring = ring
  }
  if (row.timezone != null && row.timezone !== '') {
    const zone = String(row.timezone)
    if (!isTimeZone(zone)) return `timezone ${printable(row.timezone)} is not an IANA time zone (like Europe/Berlin)`
    shape.timezone = zone
  }
  // A hold column: true or a reason holds the host; false, null, '' or 'false' does not.
  const hold = row.hold
  if (hold === true || (typeof hold === 'string' && hold.trim() !== '' && !/^(false|f|no|0)$/i.test(hold.trim())))
    shape.hold = hold === true || /^(true|t|yes|1)$/i.test(String(hold).trim()) ? 'held by the inventory' : sanitizeLine(String(hold)).slice(0, 200)
  return shape
}

/** An IANA zone name Intl knows (its tables follow the tzdata Node ships). */
export function isTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: zone })
    return /^[A-Za-z_+-]+(\/[A-Za-z0-9_+-]+)*$/.test(zone)
  } catch {
    return false
  }
}

const isHost = (value: Host | RejectedHost): value is Host => 'address' in value

export function validateRows(rows: readonly InventoryRow[], config: FleetConfig): { hosts: Host[]; rejected: RejectedHost[] } {
  const hosts: Host[] = []
  const rejected: RejectedHost[] = []
  const seen = new Set<string>()
  const defaults = { ...config.ssh, appDir: config.app.dir }
  for (const row of rows) {
    const result = validateRow(row, defaults)
    if (!isHost(result)) rejected.push(result)
    else if (seen.has(result.name)) rejected.push({ name: result.name, reason: 'duplicate name; only the first row is used' })
    else {
      seen.add(result.name)
      hosts.push(result)
    }
  }
  return { hosts, rejected }
}

/** More hosts than any fleet fleet drives: a query that returns more is a mistake (a join gone wrong). */
export const MAX_INVENTORY_ROWS = 100_000

/** The operator's query under its guards (store/hosts-table.ts); every way it can go wrong is bad configuration (exit 2). */
export async function runInventoryQuery(store: Store, inventory: FleetConfig['inventory']): Promise<Record<string, unknown>[]> {
  try {
    return await store.runReadOnlyQuery(inventory.query!, { timeoutMs: inventory.timeoutMs, maxRows: MAX_INVENTORY_ROWS })
  } catch (error) {
    const message = sanitizeLine(error instanceof Error ? error.message : String(error))
    const why = /statement timeout/i.test(message)
      ? `it ran longer than inventory.timeout (${formatDuration(inventory.timeoutMs)}) and was cancelled`
      : /multiple commands|prepared statement/i.test(message)
        ? 'it must be one SELECT statement (several statements are refused)'
        : /read-only transaction|data-modifying/i.test(message)
          ? `it tried to write (${message}); it runs in a read-only transaction and nothing was written`
          : message
    throw new UsageError(`inventory.query failed: ${why}`)
  }
}

/**
 * The active inventory: fleet's hosts table, or the operator's read-only query.
 * includeDisabled also returns the table's disabled hosts (for maintenance such as forget-key).
 */
export async function loadInventory(store: Store, config: FleetConfig, options: { readonly includeDisabled?: boolean } = {}): Promise<Inventory> {
  let inventory: Inventory
  if (config.inventory.query) {
    const rows = await runInventoryQuery(store, config.inventory)
    const first = rows[0]
    if (first && (!('name' in first) || !('address' in first)))
      throw new UsageError(`inventory.query must return the columns "name" and "address" (got: ${Object.keys(first).join(', ')})`)
    inventory = { ...validateRows(rows, config), source: 'query' }
  } else {
    const rows = await store.listHosts({ activeOnly: !options.includeDisabled })
    const table = rows.map((r) => ({ name: r.name, address: r.address, port: r.port, user: r.user, app_dir: r.appDir, ring: r.ring, timezone: r.timezone }))
    inventory = { ...validateRows(table, config), source: 'hosts-table' }
  }
  return { ...inventory, hosts: await withHolds(store, inventory.hosts) }
}

/** fleet's own holds (`fleet hosts hold`), by name, still in force by the database's clock, on top of the inventory's. */
async function withHolds(store: Store, hosts: readonly Host[]): Promise<Host[]> {
  const holds = await store.listHolds()
  if (holds.length === 0) return [...hosts]
  const now = (await store.now()).getTime()
  const held = new Map(holds.filter((h) => h.until === null || h.until.getTime() > now).map((h) => [h.name, `held by ${h.actor}: ${h.reason}${h.until ? ` (until ${h.until.toISOString()})` : ''}`]))
  return hosts.map((h) => (held.has(h.name) ? { ...h, hold: held.get(h.name)! } : h))
}
