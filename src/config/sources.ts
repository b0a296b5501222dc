/**
 * The config file and the flags as layers of entries (later entries win), each naming where
 * its value came from; unknown keys are errors with a "did you mean".
 */
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'

import { UsageError, errorMessage } from '../errors.js'
import { duplicateKey, jsonProblem } from './json-error.js'
import { expandHome, show } from './parsers.js'
import { BY_KEY, FIELDS, kebab, SCHEMA } from './schema.js'
import { suggest } from './suggest.js'

export const CONFIG_FILE_NAME = 'rollout.config.json'

export interface Entry {
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
export function walk(tree: unknown, where: (dotted: string) => string, text: boolean, errors: string[]): Entry[] {
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

/** The flag a key is set by: rollout keys are `rollout start` options, others are `--<section>-<key>`. */
export const flagName = (dotted: string): string => {
  const [section = '', key] = dotted.split('.')
  return key === undefined ? `--${section}` : section === 'rollout' ? `--${kebab(key)}` : `--${section}-${kebab(key)}`
}

export interface ConfigFile {
  readonly path: string
  readonly label: string
}

export function locate(configPath: string | undefined, env: NodeJS.ProcessEnv, cwd: string): ConfigFile | null {
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

export function readConfigFile(file: ConfigFile, errors: string[]): Entry[] {
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
  // JSON.parse keeps the last of two equal keys: a setting written twice would silently lose one.
  const twice = duplicateKey(text)
  if (twice) {
    errors.push(`${file.label}: key "${twice.path}" is written twice (line ${twice.line}); keep one`)
    return []
  }
  // A relative path in the file means "next to the file", wherever fleet is run from (cron, another shell).
  const base = dirname(file.path)
  return walk(json, () => file.label, false, errors).map((entry) => ({ ...entry, base }))
}
