/**
 * The value parsers of config keys: each returns the typed value or throws a UsageError
 * `"key" problem, got value` (through `fail`, which gates.ts and notify.ts use too).
 */
import { homedir } from 'node:os'
import { join, resolve } from 'node:path'

import { UsageError } from '../errors.js'
import { type Check, checkPort } from '../remote/validate.js'
import { parseDuration } from '../duration.js'
import { maskSecrets, redactUrl } from '../redact.js'
import { suggest } from './suggest.js'

export interface Context {
  /** The value came from the environment or the command line: coerce strings. */
  readonly text: boolean
  /** Resolve relative local paths against this (the config file's directory for its values and the defaults, else cwd); null leaves them relative (DEFAULT_CONFIG). */
  readonly cwd: string | null
}
export type Parse = (value: unknown, key: string, ctx: Context) => unknown
export interface Field {
  readonly default: unknown
  readonly parse: Parse
  /** Durations are `key` in the file and `keyMs` in FleetConfig. */
  readonly ms?: boolean
  /** The whole section is this one value (`notify` is a list, not an object of keys). */
  readonly whole?: boolean
}

export const fail = (key: string, problem: string, value: unknown): never => {
  throw new UsageError(`"${key}" ${problem}, got ${show(value)}`)
}

export const show = (value: unknown): string => {
  const text = JSON.stringify(typeof value === 'string' ? maskSecrets(value) : value) ?? String(value)
  return text.length > 100 ? `${text.slice(0, 97)}...` : text
}

const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i
const numeric = (value: unknown, ctx: Context): unknown =>
  ctx.text && typeof value === 'string' && NUMBER.test(value.trim()) ? Number(value) : value

export const integer =
  (min: number, max: number): Parse =>
  (value, key, ctx) => {
    const n = numeric(value, ctx)
    return typeof n === 'number' && Number.isInteger(n) && n >= min && n <= max
      ? n
      : fail(key, `must be an integer from ${min} to ${max}`, value)
  }

export const fraction: Parse = (value, key, ctx) => {
  const n = numeric(value, ctx)
  return typeof n === 'number' && n >= 0 && n <= 1 ? n : fail(key, 'must be a number from 0 to 1 (0.3 means 30%)', value)
}

export const port: Parse = (value, key, ctx) => {
  const n = numeric(value, ctx)
  const problem = checkPort(typeof n === 'number' ? n : Number.NaN)
  return problem ? fail(key, problem, value) : n
}

export const str =
  (check?: Check, map?: (value: string, ctx: Context) => string): Parse =>
  (value, key, ctx) => {
    if (typeof value !== 'string' || value.trim() === '') return fail(key, 'must be a non-empty string', value)
    const problem = check?.(value)
    return problem ? fail(key, problem, value) : map ? map(value, ctx) : value
  }

export const nullable =
  (parse: Parse): Parse =>
  (value, key, ctx) =>
    value === null || (ctx.text && value === 'null') ? null : parse(value, key, ctx)

export const oneOf =
  (...allowed: string[]): Parse =>
  (value, key) =>
    allowed.includes(value as string) ? value : fail(key, `must be ${allowed.map((a) => `"${a}"`).join(' or ')}`, value)

export const duration =
  (positive: boolean): Parse =>
  (value, key) => {
    const ms = parseDuration(value as string | number, key)
    return positive && ms === 0 ? fail(key, 'must be greater than 0', value) : ms
  }

export const expandHome = (path: string): string =>
  path === '~' ? homedir() : path.startsWith('~/') ? join(homedir(), path.slice(2)) : path

/** A path on this machine: `~` expanded, relative paths resolved against cwd. */
export const localPath = str(undefined, (path, ctx) => (ctx.cwd === null ? expandHome(path) : resolve(ctx.cwd, expandHome(path))))

/** A list in the file (one rule for types: a JSON string is never a number or a list); "10,50,100" from env and flags. */
export const stages: Parse = (value, key, ctx) => {
  if (typeof value === 'string' && !ctx.text) return fail(key, 'must be a JSON array of cumulative percentages like [10, 50, 100]', value)
  const list =
    typeof value === 'string'
      ? value.trim() === ''
        ? []
        : value.split(',').map((part) => (/^\s*\d+%?\s*$/.test(part) ? Number.parseInt(part, 10) : part.trim()))
      : value
  if (!Array.isArray(list) || list.length === 0)
    return fail(key, 'must be a non-empty list of cumulative percentages like [10, 50, 100]', value)
  if (!list.every((p) => Number.isInteger(p) && p >= 1 && p <= 100))
    return fail(key, 'must contain only whole percentages from 1 to 100', value)
  if (list.some((p: number, i) => i > 0 && p <= list[i - 1])) return fail(key, 'must be strictly increasing', value)
  if (list.at(-1) !== 100) return fail(key, 'must end at 100 (the last stage is the whole fleet)', value)
  return list
}

/** A list of values each checked by `item`: a JSON array in the file, comma-separated from env and flags (empty: none). */
export const list =
  (item: Parse): Parse =>
  (value, key, ctx) => {
    const items = typeof value === 'string' && ctx.text ? (value.trim() === '' ? [] : value.split(',').map((part) => part.trim())) : value
    if (!Array.isArray(items)) return fail(key, 'must be a JSON array', value)
    const parsed = items.map((x, i) => item(x, `${key}[${i}]`, ctx))
    if (new Set(parsed).size !== parsed.length) return fail(key, 'must not name a path twice', value)
    return parsed
  }

const PLACEHOLDERS = ['service', 'appDir', 'sha', 'remote', 'branch']
/** `{name}` must be one of ours; `${NAME}` is the shell's and left alone. */
export const checkTemplate: Check = (template) => {
  for (const [, name = ''] of template.matchAll(/(?<!\$)\{(\w+)\}/g)) {
    if (PLACEHOLDERS.includes(name)) continue
    const guess = suggest(name, PLACEHOLDERS)
    return `has unknown placeholder {${name}} (${guess ? `did you mean {${guess}}?` : `known: ${PLACEHOLDERS.map((p) => `{${p}}`).join(', ')}`})`
  }
  return null
}

/** Leading whitespace and SQL comments, then SELECT or WITH. The query runs read-only anyway. */
export const checkQuery: Check = (query) =>
  /^(?:\s|--[^\n]*|\/\*[\s\S]*?\*\/)*(select|with)\b/i.test(query) ? null : 'must be a read-only query starting with SELECT or WITH'

export const databaseUrl: Parse = nullable((value, key) =>
  typeof value === 'string' && /^postgres(ql)?:\/\/\S/.test(value)
    ? value
    : fail(key, 'must be a postgres:// or postgresql:// URL (a key/value DSN is not taken)', typeof value === 'string' ? maskSecrets(value) : value),
)
