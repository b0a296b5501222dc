/**
 * Reads the configuration once, at the edge: defaults < config file < environment < flags.
 * Every layer is checked against one schema table, every error names its source
 * (file path, $VARIABLE or --flag) and the dotted key, and the result is deep-frozen.
 */
import { existsSync, readFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { dirname, join, resolve } from 'node:path'

import { UsageError, errorMessage } from '../errors.js'
import {
  type Check,
  checkAbsolutePath,
  checkPort,
  checkRef,
  checkRemoteName,
  checkServiceName,
  checkUser,
} from '../remote/validate.js'
import { parseDuration } from '../duration.js'
import { gatesParsers, gatesProblems } from './gates.js'
import { jsonProblem } from './json-error.js'
import { notifyParsers } from './notify.js'
import type { FleetConfig } from './types.js'

export interface LoadConfigOptions {
  /** --config value; when given the file must exist. */
  readonly configPath?: string
  /** Directory for the default ./rollout.config.json (used only if present). Default process.cwd(). */
  readonly cwd?: string
  readonly env?: NodeJS.ProcessEnv
  /** Flag values already mapped to config keys, raw (strings from the command line are fine). */
  readonly overrides?: RawConfigOverrides
}
export type RawConfigOverrides = { [section: string]: { [key: string]: unknown } }
export interface LoadedConfig {
  readonly config: FleetConfig
  /** Absolute path of the config file used, or null. */
  readonly source: string | null
}

export const CONFIG_FILE_NAME = 'rollout.config.json'

// ---------------------------------------------------------------------------------------------
// Parsers: each returns the typed value or throws a UsageError `"key" problem, got value`.

interface Context {
  /** The value came from the environment or the command line: coerce strings. */
  readonly text: boolean
  /** Resolve relative local paths against this (the config file's directory for its values and the defaults, else cwd); null leaves them relative (DEFAULT_CONFIG). */
  readonly cwd: string | null
}
type Parse = (value: unknown, key: string, ctx: Context) => unknown
interface Field {
  readonly default: unknown
  readonly parse: Parse
  /** Durations are `key` in the file and `keyMs` in FleetConfig. */
  readonly ms?: boolean
  /** The whole section is this one value (`notify` is a list, not an object of keys). */
  readonly whole?: boolean
}

const fail = (key: string, problem: string, value: unknown): never => {
  throw new UsageError(`"${key}" ${problem}, got ${show(value)}`)
}

const show = (value: unknown): string => {
  const text = JSON.stringify(typeof value === 'string' ? maskSecrets(value) : value) ?? String(value)
  return text.length > 100 ? `${text.slice(0, 97)}...` : text
}

const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i
const numeric = (value: unknown, ctx: Context): unknown =>
  ctx.text && typeof value === 'string' && NUMBER.test(value.trim()) ? Number(value) : value

const integer =
  (min: number, max: number): Parse =>
  (value, key, ctx) => {
    const n = numeric(value, ctx)
    return typeof n === 'number' && Number.isInteger(n) && n >= min && n <= max
      ? n
      : fail(key, `must be an integer from ${min} to ${max}`, value)
  }

const fraction: Parse = (value, key, ctx) => {
  const n = numeric(value, ctx)
  return typeof n === 'number' && n >= 0 && n <= 1 ? n : fail(key, 'must be a number from 0 to 1 (0.3 means 30%)', value)
}

const port: Parse = (value, key, ctx) => {
  const n = numeric(value, ctx)
  const problem = checkPort(typeof n === 'number' ? n : Number.NaN)
  return problem ? fail(key, problem, value) : n
}

const str =
  (check?: Check, map?: (value: string, ctx: Context) => string): Parse =>
  (value, key, ctx) => {
    if (typeof value !== 'string' || value.trim() === '') return fail(key, 'must be a non-empty string', value)
    const problem = check?.(value)
    return problem ? fail(key, problem, value) : map ? map(value, ctx) : value
  }

const nullable =
  (parse: Parse): Parse =>
  (value, key, ctx) =>
    value === null || (ctx.text && value === 'null') ? null : parse(value, key, ctx)

const oneOf =
  (...allowed: string[]): Parse =>
  (value, key) =>
    allowed.includes(value as string) ? value : fail(key, `must be ${allowed.map((a) => `"${a}"`).join(' or ')}`, value)

const duration =
  (positive: boolean): Parse =>
  (value, key) => {
    const ms = parseDuration(value as string | number, key)
    return positive && ms === 0 ? fail(key, 'must be greater than 0', value) : ms
  }

const expandHome = (path: string): string =>
  path === '~' ? homedir() : path.startsWith('~/') ? join(homedir(), path.slice(2)) : path

/** A path on this machine: `~` expanded, relative paths resolved against cwd. */
const localPath = str(undefined, (path, ctx) => (ctx.cwd === null ? expandHome(path) : resolve(ctx.cwd, expandHome(path))))

/** A list in the file (one rule for types: a JSON string is never a number or a list); "10,50,100" from env and flags. */
const stages: Parse = (value, key, ctx) => {
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

const PLACEHOLDERS = ['service', 'appDir', 'sha', 'remote', 'branch']
/** `{name}` must be one of ours; `${NAME}` is the shell's and left alone. */
const checkTemplate: Check = (template) => {
  for (const [, name = ''] of template.matchAll(/(?<!\$)\{(\w+)\}/g)) {
    if (PLACEHOLDERS.includes(name)) continue
    const guess = suggest(name, PLACEHOLDERS)
    return `has unknown placeholder {${name}} (${guess ? `did you mean {${guess}}?` : `known: ${PLACEHOLDERS.map((p) => `{${p}}`).join(', ')}`})`
  }
  return null
}

/** Leading whitespace and SQL comments, then SELECT or WITH. The query runs read-only anyway. */
const checkQuery: Check = (query) =>
  /^(?:\s|--[^\n]*|\/\*[\s\S]*?\*\/)*(select|with)\b/i.test(query) ? null : 'must be a read-only query starting with SELECT or WITH'

const databaseUrl: Parse = nullable((value, key) =>
  typeof value === 'string' && /^postgres(ql)?:\/\/\S/.test(value)
    ? value
    : fail(key, 'must be a postgres:// or postgresql:// URL', typeof value === 'string' ? redactUrl(value) : value),
)

const field = (value: unknown, parse: Parse): Field => ({ default: value, parse })
const durationField = (value: string, positive = false): Field => ({ default: value, parse: duration(positive), ms: true })
const step = str(checkTemplate)
const gates = gatesParsers(fail)
const notify = notifyParsers(fail, localPath)

/** Every key of the config file: its default (as written in the file) and its parser. */
const SCHEMA = {
  database: { url: field(null, databaseUrl), dir: field('.fleet', localPath) },
  inventory: { query: field(null, nullable(str(checkQuery))) },
  ssh: {
    user: field('rachel', str(checkUser)),
    port: field(22, port),
    privateKey: field('~/.ssh/id_ed25519', nullable(localPath)),
    agent: field(null, nullable(str(undefined, expandHome))),
    knownHosts: field('~/.ssh/known_hosts', localPath),
    hostKeyPolicy: field('accept-new', oneOf('strict', 'accept-new')),
    connectTimeout: durationField('60s', true),
  },
  app: {
    dir: field('/home/rachel/rachel', str(checkAbsolutePath)),
    remote: field('origin', str(checkRemoteName)),
    branch: field('main', str(checkRef)),
    service: field('rachel8', str(checkServiceName)),
  },
  steps: {
    install: field('bun install', step),
    restart: field('sudo systemctl restart {service}', step),
    verify: field('systemctl is-active --quiet {service}', step),
    health: field(null, nullable(step)),
  },
  verify: { delay: durationField('5s'), retries: field(3, integer(0, 100)), interval: durationField('2s') },
  timeouts: { command: durationField('120s', true) },
  rollout: {
    stages: field([10, 50, 100], stages),
    failureThreshold: field(0.3, fraction),
    concurrency: field(5, integer(1, 1000)),
    stageDelay: durationField('10s'),
    cooldown: durationField('0s'),
  },
  gates: {
    bake: durationField('0s'),
    interval: durationField('30s', true),
    prometheus: field({ url: null, timeout: '10s' }, gates.prometheus),
    metrics: field([], gates.metrics),
    checks: field([], gates.checks),
    failureLimit: field(0, integer(0, 1000)),
    inconclusiveLimit: field(3, integer(0, 1000)),
    errorTimeout: durationField('10m'),
    onFail: field('revert', oneOf('revert', 'halt')),
  },
  notify: { list: { ...field([], notify.targets), whole: true } },
  metrics: {
    pushgateway: field(null, nullable(notify.pushgateway)),
    textfile: field(null, nullable(notify.textfile)),
    job: field('fleet', notify.job),
  },
} satisfies Record<keyof FleetConfig, Record<string, Field>>

const kebab = (name: string): string => name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)
const FIELDS = Object.entries(SCHEMA).flatMap(([section, keys]) =>
  Object.entries(keys as Record<string, Field>).map(([key, spec]) => ({
    ...spec,
    section,
    key,
    dotted: spec.whole ? section : `${section}.${key}`,
    prop: spec.ms ? `${key}Ms` : key,
    env: spec.whole ? `FLEET_${section.toUpperCase()}` : `FLEET_${section.toUpperCase()}_${kebab(key).replaceAll('-', '_').toUpperCase()}`,
  })),
)
const BY_KEY = new Map(FIELDS.map((f) => [f.dotted, f]))
/** Every FLEET_* variable fleet reads. */
const ENV_NAMES = ['FLEET_CONFIG', ...FIELDS.map((f) => f.env)]

/** The config file's defaults, as written in the file (durations as strings, paths with `~`; `notify` is a list, so has no keys). */
export const CONFIG_FILE_DEFAULTS = deepFreeze(
  Object.fromEntries(
    Object.entries(SCHEMA).map(([s, keys]) => {
      const fields = Object.entries(keys as Record<string, Field>)
      return [s, fields[0]?.[1].whole ? fields[0][1].default : Object.fromEntries(fields.map(([k, f]) => [k, f.default]))]
    }),
  ),
) as { readonly [section: string]: { readonly [key: string]: unknown } }

// ---------------------------------------------------------------------------------------------
// Layers: each yields entries; later entries win.

interface Entry {
  /** Where the value came from, for messages: a file path, `$VARIABLE` or `--flag`. */
  readonly where: string
  readonly dotted: string
  readonly value: unknown
  readonly text: boolean
  /** Directory a relative path in this value is resolved against; unset: the working directory. */
  readonly base?: string
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value)

function distance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const row = [i]
    for (let j = 1; j <= b.length; j++)
      row[j] = Math.min(previous[j]! + 1, row[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1))
    previous = row
  }
  return previous[b.length]!
}

/** The closest candidate within edit distance 2 (case-insensitive), if any. */
function suggest(name: string, candidates: readonly string[]): string | undefined {
  let best: { candidate: string; d: number } | undefined
  for (const candidate of candidates) {
    const d = distance(name.toLowerCase(), candidate.toLowerCase())
    if (d <= 2 && (!best || d < best.d)) best = { candidate, d }
  }
  return best?.candidate
}

function unknownKey(section: string, key?: string): string {
  let guess: string | undefined
  if (key === undefined) guess = suggest(section, Object.keys(SCHEMA))
  else {
    const near = suggest(key, FIELDS.filter((f) => f.section === section).map((f) => f.key))
    // A known key in the wrong section (rollout.retries) points to where it lives (verify.retries).
    guess = near !== undefined ? `${section}.${near}` : FIELDS.find((f) => f.key === key)?.dotted
  }
  return `unknown key "${key === undefined ? section : `${section}.${key}`}"${guess ? ` (did you mean "${guess}"?)` : ''}`
}

/** `{ section: { key: value } }` from the file or the flags; unknown keys are errors. */
function walk(tree: unknown, where: (dotted: string) => string, text: boolean, errors: string[]): Entry[] {
  if (!isObject(tree)) {
    errors.push(`${where('')}: must be a JSON object like { "rollout": { ... } }, got ${show(tree)}`)
    return []
  }
  const entries: Entry[] = []
  for (const [section, keys] of Object.entries(tree)) {
    if (!Object.hasOwn(SCHEMA, section)) errors.push(`${where(section)}: ${unknownKey(section)}`)
    else if (BY_KEY.get(section)?.whole) {
      if (keys !== undefined) entries.push({ where: where(section), dotted: section, value: keys, text })
    } else if (!isObject(keys)) errors.push(`${where(section)}: "${section}" must be an object, got ${show(keys)}`)
    else
      for (const [key, value] of Object.entries(keys)) {
        const dotted = `${section}.${key}`
        if (!BY_KEY.has(dotted)) errors.push(`${where(dotted)}: ${unknownKey(section, key)}`)
        else if (value !== undefined) entries.push({ where: where(dotted), dotted, value, text })
      }
  }
  return entries
}

/** `FLEET_<SECTION>_<KEY>` for every key, then `DATABASE_URL`; empty variables count as unset. */
function environment(env: NodeJS.ProcessEnv, errors: string[]): Entry[] {
  const entries: Entry[] = []
  for (const f of FIELDS) {
    const name = f.dotted === 'database.url' && !env[f.env] ? 'DATABASE_URL' : f.env
    const value = env[name]
    if (value) entries.push({ where: `$${name}`, dotted: f.dotted, value, text: true })
  }
  // A misspelt variable is refused like a misspelt file key, so it never silently falls back to a default.
  for (const name of Object.keys(env).sort()) {
    if (!name.startsWith('FLEET_') || ENV_NAMES.includes(name) || !env[name]) continue
    // FLEET_TEST_* belong to fleet's own test suite (where the tests run, not what fleet reads): not settings.
    if (name.startsWith('FLEET_TEST_')) continue
    const guess = suggest(name, ENV_NAMES)
    errors.push(
      `$${name}: unknown variable (${guess ? `did you mean ${guess}?` : 'fleet reads FLEET_CONFIG and FLEET_<SECTION>_<KEY> for each config key, e.g. FLEET_ROLLOUT_STAGE_DELAY'})`,
    )
  }
  return entries
}

/** The flag a key is set by: rollout keys are `rollout start` options, others are `--<section>-<key>`. */
const flagName = (dotted: string): string => {
  const [section = '', key] = dotted.split('.')
  return key === undefined ? `--${section}` : section === 'rollout' ? `--${kebab(key)}` : `--${section}-${kebab(key)}`
}

interface ConfigFile {
  readonly path: string
  readonly label: string
}

function locate(configPath: string | undefined, env: NodeJS.ProcessEnv, cwd: string): ConfigFile | null {
  const given = configPath ?? (env.FLEET_CONFIG || undefined)
  if (given === undefined) {
    const path = join(cwd, CONFIG_FILE_NAME)
    return existsSync(path) ? { path, label: CONFIG_FILE_NAME } : null
  }
  const path = resolve(cwd, expandHome(given))
  if (!existsSync(path))
    throw new UsageError(`config file not found: ${path}${configPath === undefined ? ' (from $FLEET_CONFIG)' : ''}`)
  return { path, label: given }
}

function readConfigFile(file: ConfigFile, errors: string[]): Entry[] {
  let text: string
  try {
    text = readFileSync(file.path, 'utf8').replace(/^\uFEFF/, '')
  } catch (error) {
    errors.push(`${file.label}: cannot read the config file: ${errorMessage(error)}`)
    return []
  }
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    errors.push(`${file.label}: ${jsonProblem(text)}`)
    return []
  }
  // A relative path in the file means "next to the file", wherever fleet is run from (cron, another shell).
  const base = dirname(file.path)
  return walk(json, () => file.label, false, errors).map((entry) => ({ ...entry, base }))
}

// ---------------------------------------------------------------------------------------------

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.values(value).forEach(deepFreeze)
    Object.freeze(value)
  }
  return value
}

const DEFAULTS: Entry[] = FIELDS.map((f) => ({ where: 'default', dotted: f.dotted, value: f.default, text: false }))

function build(entries: readonly Entry[], cwd: string | null, errors: string[]): FleetConfig {
  const values = new Map<string, unknown>()
  for (const entry of entries) {
    try {
      const base = cwd === null ? null : (entry.base ?? cwd)
      values.set(entry.dotted, BY_KEY.get(entry.dotted)!.parse(entry.value, entry.dotted, { text: entry.text, cwd: base }))
    } catch (error) {
      if (!(error instanceof UsageError)) throw error
      errors.push(`${entry.where}: ${error.message}`)
    }
  }
  const config: Record<string, Record<string, unknown>> = {}
  for (const f of FIELDS)
    if (f.whole) (config as Record<string, unknown>)[f.section] = values.get(f.dotted)
    else (config[f.section] ??= {})[f.prop] = values.get(f.dotted)
  return deepFreeze(config) as unknown as FleetConfig
}

/** The defaults, frozen: `~` expanded, durations in ms; database.dir stays relative (".fleet"). */
export const DEFAULT_CONFIG: FleetConfig = build(DEFAULTS, null, [])

export function loadConfig(options: LoadConfigOptions = {}): LoadedConfig {
  const cwd = resolve(options.cwd ?? process.cwd())
  const env = options.env ?? process.env
  const errors: string[] = []
  const file = locate(options.configPath, env, cwd)
  const entries = [
    // With a config file, a default relative path (database.dir ".fleet") lives next to it too.
    ...(file ? DEFAULTS.map((entry) => ({ ...entry, base: dirname(file.path) })) : DEFAULTS),
    ...(file ? readConfigFile(file, errors) : []),
    ...environment(env, errors),
    ...(options.overrides ? walk(options.overrides, flagName, true, errors) : []),
  ]
  const config = build(entries, cwd, errors)
  if (errors.length === 0) {
    // Between keys: named by the key and where its value came from (the last layer that set it).
    for (const [key, problem, source = key] of gatesProblems(config.gates)) {
      const base = source.replace(/\[.*$/, '').split('.').slice(0, 2).join('.')
      const where = entries.findLast((e) => e.dotted === base)?.where ?? 'default'
      errors.push(`${where}: "${key}" ${problem}`)
    }
  }
  if (errors.length > 0) throw new UsageError(maskSecrets(errors.join('\n')))
  return { config, source: file?.path ?? null }
}

// ---------------------------------------------------------------------------------------------

/**
 * A URL safe to print: the password (`user:***@`) and any `password=` parameter masked.
 * Errs on the side of masking: everything between the first ":" of the user info and the last "@".
 */
export function redactUrl(url: string): string {
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(url)?.[0] ?? ''
  const at = url.lastIndexOf('@')
  const colon = url.indexOf(':', scheme.length)
  const masked = at > scheme.length && colon >= 0 && colon < at ? `${url.slice(0, colon)}:***${url.slice(at)}` : url
  return masked.replace(/([?&]password=)[^&#]*/gi, '$1***')
}

/** Every URL in a text passed through redactUrl(). */
export const maskSecrets = (text: string): string => text.replace(/[a-z][a-z0-9+.-]*:\/\/\S+/gi, redactUrl)
