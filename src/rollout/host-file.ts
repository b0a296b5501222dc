import { parse } from 'csv-parse/sync'

import { jsonProblem } from '../config/json-error.js'
import { UsageError, errorMessage } from '../errors.js'
import type { HostPatch } from '../store/store.js'
import { validateRow, type InventoryRow } from './inventory.js'

export type ImportFormat = 'json' | 'csv'

/** One row of the file, with where it came from (`hosts.csv:7`, `hosts.json[2]`) for messages. */
interface SourceRow {
  readonly where: string
  readonly row?: InventoryRow & { readonly active?: unknown }
  readonly problem?: string
}

const MAX_PROBLEMS = 20
const COLUMNS = ['name', 'address', 'port', 'user', 'app_dir', 'active', 'ring', 'timezone'] as const
/** What an import changes on an existing host only when the file carries it. */
export const OPTIONAL_COLUMNS = ['port', 'user', 'app_dir', 'active', 'ring', 'timezone'] as const
/** `fleet hosts list --json` fields that an import ignores, so its output can be imported back (a hold is `fleet hosts hold`'s). */
const READ_ONLY = new Set(['currentVersion', 'previousVersion', 'status', 'updatedAt', 'hold'])

export const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`
export const bounded = (items: readonly string[], max = MAX_PROBLEMS): string[] =>
  items.length > max ? [...items.slice(0, max), `+${items.length - max} more`] : [...items]

/** csv-parse's record: the fields and where the record ends (a quoted field may span lines). */
interface CsvRecord {
  readonly record: string[]
  readonly info: { readonly lines: number }
}

function parseCsv(text: string, file: string): SourceRow[] {
  let records: CsvRecord[]
  try {
    // RFC 4180 (quoted fields may hold commas, quotes as "" and newlines); spaces around fields are trimmed.
    records = parse(text, { bom: true, info: true, relax_column_count: true, skip_empty_lines: true, trim: true }) as unknown as CsvRecord[]
  } catch (error) {
    const line = (error as { lines?: number }).lines
    throw new UsageError(`${file}${line ? `:${line}` : ''}: not valid CSV: ${errorMessage(error)}; nothing imported`)
  }
  const [header, ...body] = records
  const columns = (header?.record ?? []).map((h) => (h.toLowerCase() === 'appdir' ? 'app_dir' : h.toLowerCase()))
  if (!columns.includes('name') || !columns.includes('address'))
    throw new UsageError(`${file}:1: the first line must be a header naming the columns, e.g. ${COLUMNS.join(',')}`)
  const unknown = columns.filter((col, i) => !(COLUMNS as readonly string[]).includes(col) || columns.indexOf(col) !== i)
  if (unknown.length) throw new UsageError(`${file}:1: unknown or repeated column ${JSON.stringify(unknown[0])} (columns: ${COLUMNS.join(', ')})`)
  return body.map(({ record: fields, info }): SourceRow => {
    // The line the record starts on: its end line minus the newlines inside its quoted fields.
    const where = `${file}:${info.lines - fields.join('').split('\n').length + 1}`
    if (fields.length !== columns.length) return { where, problem: `expected ${columns.length} fields (${columns.join(',')}), got ${fields.length}` }
    // An empty cell is null: that field follows the config's default.
    return { where, row: Object.fromEntries(columns.map((col, k) => [col, fields[k] === '' ? null : fields[k]])) }
  })
}

function parseJson(text: string, file: string): SourceRow[] {
  let data: unknown
  try {
    data = JSON.parse(text.replace(/^\uFEFF/, ''))
  } catch {
    throw new UsageError(`${file}: ${jsonProblem(text.replace(/^\uFEFF/, ''))}; nothing imported`)
  }
  // Also accepts `fleet hosts list --json` output ({ hosts: [...] }).
  const items = Array.isArray(data) ? data : (data as { hosts?: unknown } | null)?.hosts
  if (!Array.isArray(items)) throw new UsageError(`${file}: expected a JSON array of host objects`)
  return items.map((item: unknown, i): SourceRow => {
    const name = (item as { name?: unknown } | null)?.name
    const where = `${file}[${i}]${typeof name === 'string' && name ? ` (${name})` : ''}`
    if (typeof item !== 'object' || item === null || Array.isArray(item)) return { where, problem: 'must be an object with name and address' }
    const record = item as Record<string, unknown>
    const unknown = Object.keys(record).filter((k) => !(COLUMNS as readonly string[]).includes(k) && k !== 'appDir' && !READ_ONLY.has(k))
    if (unknown.length) return { where, problem: `unknown key ${JSON.stringify(unknown[0])} (keys: ${COLUMNS.join(', ')})` }
    const { appDir, ...rest } = record
    // A key the item leaves out is not carried (the host keeps it); null means "the config's default".
    return { where, row: 'app_dir' in record || appDir === undefined ? rest : { ...rest, app_dir: appDir } }
  })
}

/** true/false from JSON, or true/false/yes/no/1/0 from CSV; missing means "keep (new hosts: active)". */
const parseActive = (value: unknown): boolean | undefined | string => {
  if (value == null || typeof value === 'boolean') return value ?? undefined
  const text = String(value).trim().toLowerCase()
  if (['true', 'yes', '1'].includes(text)) return true
  if (['false', 'no', '0'].includes(text)) return false
  return `active ${JSON.stringify(String(value))} must be true or false`
}

/**
 * A host file (`fleet hosts import`) → the patches to apply, every row validated first: one bad row
 * and the whole file is refused (exit 2, every problem listed), so nothing is half-imported.
 * `carried`: the optional columns the file has (the others keep an existing host's value).
 */
export function hostPatches(text: string, file: string, format: ImportFormat, defaults: Parameters<typeof validateRow>[1]): { patches: HostPatch[]; carried: Set<string> } {
  // Validate every row before touching the store: one bad row and nothing is imported.
  const source = format === 'csv' ? parseCsv(text, file) : parseJson(text, file)
  const problems: string[] = []
  const firstSeen = new Map<string, string>()
  const patches: HostPatch[] = []
  const carried = new Set<string>()
  for (const { where, row, problem } of source) {
    if (!row) {
      problems.push(`${where}: ${problem}`)
      continue
    }
    const host = validateRow(row, defaults)
    const active = parseActive(row.active)
    if (!('address' in host)) problems.push(`${where}: ${host.reason}`)
    else if (typeof active === 'string') problems.push(`${where}: ${active}`)
    else if (firstSeen.has(host.name)) problems.push(`${where}: duplicate name "${host.name}" (first at ${firstSeen.get(host.name)})`)
    else {
      firstSeen.set(host.name, where)
      const has = (column: keyof typeof row): boolean => row[column] !== undefined && (carried.add(column), true)
      // Only what the file carries is changed: a column it does not have keeps an existing host's value.
      patches.push({
        name: host.name,
        address: host.address,
        ...(has('port') ? { port: row.port === null ? null : host.port } : {}),
        ...(has('user') ? { user: row.user === null ? null : host.user } : {}),
        ...(has('app_dir') ? { appDir: row.app_dir === null ? null : host.appDir } : {}),
        ...(has('active') && active !== undefined ? { active } : {}),
        // An empty ring or time zone is none (the last ring; windows in their own zone).
        ...(has('ring') ? { ring: host.ring ?? null } : {}),
        ...(has('timezone') ? { timezone: host.timezone ?? null } : {}),
      })
    }
  }
  if (problems.length)
    throw new UsageError([`${file}: ${plural(problems.length, 'problem')}; nothing imported`, ...bounded(problems)].join('\n  '))
  if (patches.length === 0) throw new UsageError(`${file} lists no hosts; nothing imported`)

  return { patches, carried }
}
