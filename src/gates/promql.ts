/**
 * Placeholders in a PromQL query. Values go in as escaped string content, so nothing an operator
 * names a host can end the string or widen a regex: `{sha}`, `{stage}`, `{hosts}` may appear only
 * inside "…" or '…' strings (never in `…` raw strings, where nothing can be escaped), and
 * `{hosts}` becomes an RE2 regex (Prometheus anchors `=~` matchers) of literal alternatives.
 */
import type { GateContext } from './types.js'

export const PROMQL_PLACEHOLDERS = ['sha', 'stage', 'hosts'] as const

type Quote = '"' | "'"
type Segment =
  | { kind: 'code'; text: string }
  | { kind: 'comment'; text: string }
  | { kind: 'raw'; text: string; closed: boolean }
  | { kind: 'string'; quote: Quote; text: string; closed: boolean }

/** Splits a query into code, comments and string literals (content without the quotes). */
function segments(query: string): Segment[] {
  const out: Segment[] = []
  let i = 0
  let code = ''
  const flush = () => {
    if (code) out.push({ kind: 'code', text: code })
    code = ''
  }
  while (i < query.length) {
    const c = query[i]!
    if (c === '"' || c === "'") {
      flush()
      let j = i + 1
      while (j < query.length && query[j] !== c) j += query[j] === '\\' ? 2 : 1
      out.push({ kind: 'string', quote: c, text: query.slice(i + 1, Math.min(j, query.length)), closed: j < query.length })
      i = j + 1
    } else if (c === '`' || c === '#') {
      flush()
      const end = query.indexOf(c === '`' ? '`' : '\n', i + 1)
      const j = end < 0 ? query.length : end
      const text = query.slice(i + 1, j)
      out.push(c === '`' ? { kind: 'raw', text, closed: end >= 0 } : { kind: 'comment', text })
      i = c === '`' ? j + 1 : j
    } else {
      code += c
      i++
    }
  }
  flush()
  return out
}

// A name, not a number: `{2}` and `{2,5}` inside a regex are repetitions, not placeholders.
const PLACEHOLDER = /\{([A-Za-z_]\w*)\}/g

/** Why this query's placeholders are wrong (for the config error), or null. */
export function queryPlaceholderProblem(query: string): string | null {
  for (const seg of segments(query)) {
    if (seg.kind === 'comment') continue
    for (const { 1: name = '', index } of seg.text.matchAll(PLACEHOLDER)) {
      if (!(PROMQL_PLACEHOLDERS as readonly string[]).includes(name)) {
        return `has unknown placeholder {${name}} (known: ${PROMQL_PLACEHOLDERS.map((p) => `{${p}}`).join(', ')})`
      }
      if (seg.kind !== 'string') {
        return `has {${name}} outside a "double-quoted" or 'single-quoted' string (values are substituted as escaped string content)`
      }
      // An odd run of backslashes before it would escape the value's first character.
      if ((/\\*$/.exec(seg.text.slice(0, index))?.[0].length ?? 0) % 2 === 1) return `has {${name}} right after a backslash`
    }
  }
  return null
}

/**
 * `text` as the content of a PromQL string literal opened with `quote`. Prometheus' lexer accepts
 * only the opening quote as an escaped quote, and no raw newline.
 */
export function escapePromqlString(text: string, quote: Quote = '"'): string {
  if (/\p{Surrogate}/u.test(text)) throw new Error('a value for a PromQL query is not valid Unicode')
  let out = ''
  for (const ch of text) {
    const code = ch.codePointAt(0)!
    if (ch === '\\' || ch === quote) out += `\\${ch}`
    else if (ch === '\n') out += '\\n'
    else if (ch === '\r') out += '\\r'
    else if (ch === '\t') out += '\\t'
    else if (code < 0x20 || code === 0x7f) out += `\\x${code.toString(16).padStart(2, '0')}`
    else out += ch
  }
  return out
}

/** RE2's metacharacters (Go's regexp.QuoteMeta): the text matches only itself. */
export const escapeRegex = (text: string): string => text.replace(/[\\.+*?()|[\]{}^$]/g, '\\$&')

/** Matches no string at all (RE2 has no lookahead): a class of no character. */
const MATCH_NOTHING = '[^\\x00-\\x{10FFFF}]'

/** A regex matching exactly these names (grouped, so it composes with text around it). */
export const hostsRegex = (hosts: readonly string[]): string =>
  hosts.length === 0 ? MATCH_NOTHING : `(?:${hosts.map(escapeRegex).join('|')})`

/** The query with every placeholder replaced by its escaped value; throws what the config check refuses. */
export function substitute(query: string, ctx: GateContext): string {
  const problem = queryPlaceholderProblem(query)
  if (problem) throw new Error(`query ${problem}`)
  const values: Record<string, string> = { sha: ctx.sha, stage: String(ctx.stage), hosts: hostsRegex(ctx.hosts) }
  let out = ''
  for (const seg of segments(query)) {
    if (seg.kind === 'code') out += seg.text
    else if (seg.kind === 'comment') out += `#${seg.text}`
    else if (seg.kind === 'raw') out += `\`${seg.text}${seg.closed ? '`' : ''}`
    else {
      const text = seg.text.replace(PLACEHOLDER, (all, name: string) =>
        Object.hasOwn(values, name) ? escapePromqlString(values[name]!, seg.quote) : all,
      )
      // An unterminated string stays so: Prometheus reports the syntax error.
      out += `${seg.quote}${text}${seg.closed ? seg.quote : ''}`
    }
  }
  return out
}
