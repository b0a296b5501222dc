import { existsSync } from 'node:fs'
import { dirname } from 'node:path'
import { hostname, userInfo } from 'node:os'

import { UsageError } from '../errors.js'
import { loadConfig, type RawConfigOverrides } from '../config/load.js'
import type { FleetConfig } from '../config/types.js'
import type { RolloutRequest } from '../rollout/engine.js'
import type { IgnoredCooldown } from '../rollout/cooldown.js'
import type { CurrentSettings } from '../rollout/recover.js'
import type { HostSettings } from '../rollout/host-update.js'
import type { Host } from '../types.js'
import { Ssh2Executor } from '../ssh/ssh2-executor.js'
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

/** The config and where it came from: what config-relative paths need. */
export type ConfigContext = Pick<Context, 'config' | 'configSource'>

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

export function makeExecutor(config: FleetConfig, store: Store): Ssh2Executor {
  const agent = config.ssh.agent ?? process.env.SSH_AUTH_SOCK ?? null
  let privateKey = config.ssh.privateKey
  if (privateKey && !existsSync(privateKey)) {
    // The default key path is only a guess; with an agent we can do without it.
    if (!agent) throw new UsageError(`ssh.privateKey ${privateKey} does not exist and no ssh-agent is configured (ssh.agent or $SSH_AUTH_SOCK)`)
    privateKey = null
  }
  if (!privateKey && !agent) throw new UsageError('no SSH credentials: set ssh.privateKey or ssh.agent')
  return new Ssh2Executor({
    privateKey,
    agent,
    knownHosts: config.ssh.knownHosts,
    hostKeyPolicy: config.ssh.hostKeyPolicy,
    pins: store,
  })
}

export const hostSettings = (config: FleetConfig): HostSettings => ({
  remote: config.app.remote,
  branch: config.app.branch,
  service: config.app.service,
  steps: config.steps,
  verify: config.verify,
  commandTimeoutMs: config.timeouts.commandMs,
})

/** Where every relative path of the config resolves, gate checks included: next to the config file (else the working directory). */
export const configDir = (ctx: ConfigContext): string => (ctx.configSource ? dirname(ctx.configSource) : process.cwd())

/** The settings a command that takes a rollout over applies from the config as it is now (resume, promote, tick). */
export const currentSettings = (ctx: ConfigContext): CurrentSettings => ({ gates: ctx.config.gates, checksDir: configDir(ctx) })

/** A rollout request from the validated config: the one place config keys meet the engine. */
export const rolloutRequest = (
  ctx: ConfigContext,
  hosts: readonly Host[],
  options: { readonly ref?: string | undefined; readonly seed?: string | undefined; readonly owner?: string; readonly ignoredCooldown?: IgnoredCooldown | null },
): RolloutRequest => ({
  hosts,
  ref: options.ref ?? ctx.config.app.branch,
  stages: ctx.config.rollout.stages,
  failureThreshold: ctx.config.rollout.failureThreshold,
  concurrency: ctx.config.rollout.concurrency,
  stageDelayMs: ctx.config.rollout.stageDelayMs,
  connectTimeoutMs: ctx.config.ssh.connectTimeoutMs,
  settings: hostSettings(ctx.config),
  gates: ctx.config.gates,
  checksDir: configDir(ctx),
  owner: options.owner ?? owner(),
  ...(options.ignoredCooldown ? { ignoredCooldown: options.ignoredCooldown } : {}),
  ...(options.seed ? { seed: options.seed } : {}),
})

export const owner = (): string => {
  let user = 'unknown'
  try {
    user = userInfo().username
  } catch {
    /* no passwd entry in some containers */
  }
  return `${user}@${hostname()} pid ${process.pid}`
}
