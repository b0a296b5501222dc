import { loadConfig, type RawConfigOverrides } from '../config/load.js'
import type { FleetConfig } from '../config/types.js'
import { openDatabase, type OpenOptions } from '../store/database.js'
import type { Store } from '../store/store.js'
import { makeOutput, type Output } from './output.js'
import { keepSnapshot } from '../report/snapshot-listener.js'

/** The global flags every command accepts. */
export interface GlobalFlags {
  readonly config?: string
  readonly databaseUrl?: string
  readonly json?: boolean
  readonly color?: boolean
  readonly verbose?: boolean
  readonly quiet?: boolean
}

export interface Context {
  readonly config: FleetConfig
  readonly configSource: string | null
  readonly out: Output
}

const mergeOverrides = (a: RawConfigOverrides, b: RawConfigOverrides): RawConfigOverrides => {
  const merged: { [section: string]: { [key: string]: unknown } } = { ...a }
  for (const [section, values] of Object.entries(b)) merged[section] = { ...merged[section], ...values }
  return merged
}

export function makeContext(flags: GlobalFlags, overrides: RawConfigOverrides = {}): Context {
  const out = makeOutput(flags)
  const global: RawConfigOverrides = flags.databaseUrl ? { database: { url: flags.databaseUrl } } : {}
  const { config, source } = loadConfig({
    ...(flags.config ? { configPath: flags.config } : {}),
    overrides: mergeOverrides(global, overrides),
  })
  return { config, configSource: source, out }
}

/**
 * Opens the store, runs `fn`, always closes it (the embedded store's lock must be released, and
 * its snapshot for other shells' read-only commands is written as it closes). Read-only commands
 * use withReadSource (read-source.ts) instead, which never creates a store.
 */
export async function withStore<T>(config: FleetConfig, fn: (store: Store) => Promise<T>, options: OpenOptions = {}): Promise<T> {
  const database = await openDatabase(config.database, options)
  const { Store } = await import('../store/store.js') // kysely: only for commands that open the store
  const store = new Store(database)
  const keeper = keepSnapshot(store, database, config.inventory.query)
  try {
    return await fn(store)
  } finally {
    await keeper.close()
  }
}

// Where config keys meet the engine and the SSH driver (rollout/from-config.ts); re-exported for the commands.
export { configDir, currentSettings, hostSettings, makeExecutor, rolloutRequest, type ConfigContext } from '../rollout/from-config.js'
export { owner } from '../rollout/who.js'
