import { readFile } from 'node:fs/promises'
import { extname } from 'node:path'

import { UsageError, errorMessage } from '../../errors.js'
import { validateRow, type InventoryRow } from '../../rollout/inventory.js'
import type { NewHost } from '../../store/store.js'
import { makeContext, withStore, type GlobalFlags } from '../context.js'
import { printJson, say } from '../output.js'

export type ImportFormat = 'json' | 'csv'

export interface HostsImportFlags extends GlobalFlags {
  readonly format?: ImportFormat
  readonly deactivateMissing?: boolean
}

/** One row of the file, with where it came from (`hosts.csv:7`, `hosts.json[2]`) for messages. */
interface SourceRow {
  readonly where: string
  readonly row?: InventoryRow & { readonly active?: unknown }
  readonly problem?: string
}

const MAX_PROBLEMS = 20
const COLUMNS = ['name', 'address', 'port', 'user', 'app_dir', 'active'] as const
/** `fleet hosts list --json` fields that an import ignores, so its output can be imported back. */
const READ_ONLY = new Set(['currentVersion', 'previousVersion', 'status', 'updatedAt'])

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`
const bounded = (items: readonly string[], max = MAX_PROBLEMS): string[] =>
  items.length > max ? [...items.slice(0, max), `+${items.length - max} more`] : [...items]

/** Splits one CSV line: commas, optional "quoted fields" with "" for a quote; unquoted fields are trimmed. */
export function splitCsvLine(line: string): string[] | string {
  const fields: string[] = []
  let i = 0
  for (;;) {
    while (line[i] === ' ' || line[i] === '\t') i++
    let field = ''
    if (line[i] === '"') {
      for (i++; ; i++) {
        if (i >= line.length) return 'unterminated quoted field'
        if (line[i] !== '"') field += line[i]
        else if (line[i + 1] === '"') field += line[++i]
        else break
      }
      i++
      while (line[i] === ' ' || line[i] === '\t') i++
      if (i < line.length && line[i] !== ',') return 'unexpected text after a quoted field'
    } else {
      const end = line.indexOf(',', i) === -1 ? line.length : line.indexOf(',', i)
      field = line.slice(i, end).trim()
      if (field.includes('"')) return 'a quote inside an unquoted field (quote the whole field)'
      i = end
    }
    fields.push(field)
    if (i >= line.length) return fields
    i++
  }
}

function parseCsv(text: string, file: string): SourceRow[] {
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/)
  const header = splitCsvLine(lines[0] ?? '')
  const columns = typeof header === 'string' ? [] : header.map((h) => (h.toLowerCase() === 'appdir' ? 'app_dir' : h.toLowerCase()))
  if (!columns.includes('name') || !columns.includes('address'))
    throw new UsageError(`${file}:1: the first line must be a header naming the columns, e.g. ${COLUMNS.join(',')}`)
  const unknown = columns.filter((col, i) => !(COLUMNS as readonly string[]).includes(col) || columns.indexOf(col) !== i)
  if (unknown.length) throw new UsageError(`${file}:1: unknown or repeated column ${JSON.stringify(unknown[0])} (columns: ${COLUMNS.join(', ')})`)
  const rows: SourceRow[] = []
  lines.forEach((line, i) => {
    if (i === 0 || line.trim() === '') return
    const where = `${file}:${i + 1}`
    const fields = splitCsvLine(line)
    if (typeof fields === 'string') return rows.push({ where, problem: fields })
    if (fields.length !== columns.length) return rows.push({ where, problem: `expected ${columns.length} fields (${columns.join(',')}), got ${fields.length}` })
    rows.push({ where, row: Object.fromEntries(columns.map((col, k) => [col, fields[k] === '' ? null : fields[k]])) })
  })
  return rows
}

function parseJson(text: string, file: string): SourceRow[] {
  let data: unknown
  try {
    data = JSON.parse(text)
  } catch (error) {
    throw new UsageError(`${file}: not valid JSON: ${errorMessage(error)}`)
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
    return { where, row: { ...record, app_dir: record.app_dir ?? record.appDir } }
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

export async function hostsImport(file: string, flags: HostsImportFlags): Promise<number> {
  const ctx = makeContext(flags)
  const ext = extname(file).toLowerCase().slice(1)
  const format = flags.format ?? (ext === 'json' || ext === 'csv' ? ext : null)
  if (!format) throw new UsageError(`cannot tell the format of ${file} from its extension: pass --format json or --format csv`)
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    throw new UsageError(`cannot read ${file}: ${code === 'ENOENT' ? 'no such file' : errorMessage(error)}`)
  }

  // Validate every row before touching the store: one bad row and nothing is imported.
  const source = format === 'csv' ? parseCsv(text, file) : parseJson(text, file)
  const defaults = { ...ctx.config.ssh, appDir: ctx.config.app.dir }
  const problems: string[] = []
  const firstSeen = new Map<string, string>()
  const hosts: (NewHost & { active: boolean | undefined })[] = []
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
      // Only what the file says is stored; the rest keeps following the config's defaults.
      hosts.push({
        name: host.name,
        address: host.address,
        port: row.port != null ? host.port : null,
        user: row.user != null ? host.user : null,
        appDir: row.app_dir != null ? host.appDir : null,
        active,
      })
    }
  }
  if (problems.length)
    throw new UsageError([`${file}: ${plural(problems.length, 'problem')}; nothing imported`, ...bounded(problems)].join('\n  '))
  if (hosts.length === 0) throw new UsageError(`${file} lists no hosts; nothing imported`)

  const result = await withStore(ctx.config, async (store) => {
    const existing = new Map((await store.listHosts()).map((h) => [h.name, h]))
    const missing = flags.deactivateMissing ? [...existing.values()].filter((h) => h.active && !firstSeen.has(h.name)) : []
    // One transaction: the file's hosts (an omitted `active` keeps the host's flag), and the missing ones disabled.
    await store.upsertHosts([
      ...hosts.map((h) => ({ ...h, active: h.active ?? existing.get(h.name)?.active ?? true })),
      ...missing.map((h) => ({ name: h.name, address: h.address, port: h.port, user: h.user, appDir: h.appDir, active: false })),
    ])
    const updated = hosts.filter((h) => existing.has(h.name)).length
    return { imported: hosts.length, added: hosts.length - updated, updated, deactivated: missing.map((h) => h.name) }
  })

  if (ctx.out.json) printJson(ctx.out, result)
  else {
    say(ctx.out, `imported ${plural(result.imported, 'host')} (${result.added} added, ${result.updated} updated)`)
    if (result.deactivated.length)
      say(ctx.out, `deactivated ${plural(result.deactivated.length, 'host')} not in ${file}: ${bounded(result.deactivated).join(', ')}`)
  }
  if (ctx.config.inventory.query) ctx.out.stderr.write('fleet: note: inventory.query is configured, so rollouts read that query, not the hosts table\n')
  return 0
}
