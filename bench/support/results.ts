/**
 * Each benchmark records its section in bench/results/<id>.json (figures, tables, raw data); the
 * global teardown renders every recorded section into bench/RESULTS.md. Rows are keyed, so running
 * one piece (`npm run bench -- -t "N=20"`) refreshes only that piece's rows and keeps the others;
 * rows from an earlier run are marked with it. A whole `npm run bench` rewrites everything in one run.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { inject } from 'vitest'

import { machineInfo, REPO_ROOT } from './measure.js'

export const RESULTS_DIR = path.join(REPO_ROOT, 'bench', 'results')
export const RESULTS_MD = path.join(REPO_ROOT, 'bench', 'RESULTS.md')

export interface SummaryRow {
  readonly metric: string
  readonly target: string
  readonly value: string
  /** null: no target, informational. */
  readonly ok: boolean | null
}

export interface TableSpec {
  readonly header: readonly string[]
  /** key → cells; a key recorded again replaces its row. */
  readonly rows: Readonly<Record<string, readonly (string | number)[]>>
}

export interface SectionUpdate {
  readonly id: string
  readonly title: string
  /** Position in RESULTS.md. */
  readonly order: number
  readonly summary?: readonly SummaryRow[]
  readonly tables?: Readonly<Record<string, TableSpec>>
  /** Free text under the tables (replaced, not merged). */
  readonly notes?: string
  /** Raw figures, merged by key. */
  readonly data?: Readonly<Record<string, unknown>>
}

interface Stamped<T> {
  readonly value: T
  readonly runId: string
  readonly ranAt: string
}

interface StoredSection {
  id: string
  title: string
  order: number
  summary: Record<string, Stamped<SummaryRow>>
  tables: Record<string, { header: readonly string[]; rows: Record<string, Stamped<readonly (string | number)[]>> }>
  notes: string
  data: Record<string, Stamped<unknown>>
  machine: Record<string, string>
  lastRunAt: string
}

/** One id per `npm run bench` (provided by the global setup). */
export const runId = (): string => {
  try {
    return inject('benchRunId') ?? 'adhoc'
  } catch {
    return 'adhoc'
  }
}

const fileOf = (id: string) => path.join(RESULTS_DIR, `${id}.json`)

export function record(update: SectionUpdate): void {
  mkdirSync(RESULTS_DIR, { recursive: true })
  const file = fileOf(update.id)
  const ranAt = new Date().toISOString()
  const stamp = <T>(value: T): Stamped<T> => ({ value, runId: runId(), ranAt })
  const previous: StoredSection | null = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as StoredSection) : null
  const section: StoredSection = previous ?? { id: update.id, title: update.title, order: update.order, summary: {}, tables: {}, notes: '', data: {}, machine: {}, lastRunAt: ranAt }
  section.title = update.title
  section.order = update.order
  let code: string | undefined
  try {
    code = inject('benchCode')
  } catch {
    code = undefined
  }
  section.machine = { ...machineInfo(), ...(code ? { commit: code } : {}) }
  section.lastRunAt = ranAt
  for (const row of update.summary ?? []) section.summary[row.metric] = stamp(row)
  for (const [name, spec] of Object.entries(update.tables ?? {})) {
    const table = (section.tables[name] ??= { header: spec.header, rows: {} })
    table.header = spec.header
    for (const [key, cells] of Object.entries(spec.rows)) table.rows[key] = stamp(cells)
  }
  if (update.notes !== undefined) section.notes = update.notes
  for (const [key, value] of Object.entries(update.data ?? {})) section.data[key] = stamp(value)
  writeFileSync(file, `${JSON.stringify(section, null, 2)}\n`)
  console.log(`\n${renderSection(section, false)}`)
}

const summaryCells = (r: SummaryRow): string[] => [r.metric, r.target, r.value, r.ok === null ? '' : r.ok ? 'ok' : '**MISS**']

export function table(header: readonly string[], rows: readonly (readonly (string | number)[])[]): string {
  const line = (cells: readonly (string | number)[]) => `| ${cells.map((c) => String(c).replace(/\|/g, '\\|')).join(' | ')} |`
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n')
}

function renderSection(s: StoredSection, withRuns: boolean): string {
  const out = [`## ${s.title}`, '']
  const summary = Object.values(s.summary)
  if (summary.length) {
    out.push(table(['metric', 'target', 'measured', '', ...(withRuns ? ['run'] : [])], summary.map((r) => [...summaryCells(r.value), ...(withRuns ? [r.runId] : [])])), '')
  }
  for (const [name, t] of Object.entries(s.tables)) {
    const rows = Object.values(t.rows)
    const mixed = withRuns && new Set(rows.map((r) => r.runId)).size > 1
    out.push(`**${name}**`, '', table([...t.header, ...(mixed ? ['run'] : [])], rows.map((r) => [...r.value, ...(mixed ? [r.runId] : [])])), '')
  }
  if (s.notes.trim()) out.push(s.notes.trim(), '')
  return out.join('\n')
}

export function writeResultsMarkdown(): void {
  let files: string[] = []
  try {
    files = readdirSync(RESULTS_DIR).filter((f) => f.endsWith('.json'))
  } catch {
    return
  }
  const sections = files.map((f) => JSON.parse(readFileSync(path.join(RESULTS_DIR, f), 'utf8')) as StoredSection).sort((a, b) => a.order - b.order || a.id.localeCompare(b.id))
  if (sections.length === 0) return
  const latest = sections.reduce((a, b) => (a.lastRunAt > b.lastRunAt ? a : b))
  const m = latest.machine
  const stamps = sections.flatMap((s) => [...Object.values(s.summary), ...Object.values(s.tables).flatMap((t) => Object.values(t.rows))])
  const runs = [...new Set(stamps.map((r) => r.runId))].sort()
  const out: string[] = [
    '# fleet performance results',
    '',
    'Written by `npm run bench` (how it measures: bench/README.md); do not edit by hand. Every ratio is',
    'computed from figures measured in the same run.',
    '',
    `- Machine: ${m.nproc} cores (${m.cpu}), ${m.memory} RAM, Linux ${m.kernel}`,
    `- Node ${m.node}; ${m.openssh}`,
    `- Code: ${m.commit}`,
    `- ${runs.length === 1 ? `One run: ${runs[0]} (UTC)` : `Runs (UTC): ${runs.join(', ')}; a "run" column says which row comes from which`}`,
    '',
    '## Summary',
    '',
    table(
      ['section', 'metric', 'target', 'measured', '', ...(runs.length > 1 ? ['run'] : [])],
      sections.flatMap((s) => Object.values(s.summary).map((r) => [s.title, ...summaryCells(r.value), ...(runs.length > 1 ? [r.runId] : [])])),
    ),
    '',
  ]
  for (const s of sections) out.push(renderSection(s, runs.length > 1))
  writeFileSync(RESULTS_MD, `${out.join('\n').trim()}\n`)
}
