/**
 * Reads the configuration once, at the edge: defaults < config file < environment < flags.
 * Every layer is checked against one schema table, every error names its source
 * (file path, $VARIABLE or --flag) and the dotted key, and the result is deep-frozen.
 */
import { dirname, resolve } from 'node:path'

import { UsageError } from '../errors.js'
import { environment } from './env.js'
import { gatesProblems } from './gates.js'
import type { Field } from './parsers.js'
import { maskSecrets } from '../redact.js'
import { BY_KEY, FIELDS, SCHEMA } from './schema.js'
import { type Entry, flagName, locate, readConfigFile, walk } from './sources.js'
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

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.values(value).forEach(deepFreeze)
    Object.freeze(value)
  }
  return value
}

/** The config file's defaults, as written in the file (durations as strings, paths with `~`; `notify` is a list, so has no keys). */
export const CONFIG_FILE_DEFAULTS = deepFreeze(
  Object.fromEntries(
    Object.entries(SCHEMA).map(([s, keys]) => {
      const fields = Object.entries(keys as Record<string, Field>)
      return [s, fields[0]?.[1].whole ? fields[0][1].default : Object.fromEntries(fields.map(([k, f]) => [k, f.default]))]
    }),
  ),
) as { readonly [section: string]: { readonly [key: string]: unknown } }

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
