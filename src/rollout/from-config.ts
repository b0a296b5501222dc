import { existsSync } from 'node:fs'
import { owner } from './who.js'
import { dirname } from 'node:path'

import type { FleetConfig } from '../config/types.js'
import { UsageError } from '../errors.js'
import { Ssh2Executor } from '../ssh/ssh2-executor.js'
import type { Store } from '../store/store.js'
import type { Host } from '../types.js'
import type { IgnoredCooldown } from './cooldown.js'
import type { IgnoredWindow } from './window.js'
import type { HostSettings } from './host-update.js'
import type { CurrentSettings } from './recover.js'
import type { RolloutRequest } from './request.js'

/** The config and where it came from: what config-relative paths need. */
export interface ConfigContext {
  readonly config: FleetConfig
  readonly configSource: string | null
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
  releases: config.app.layout === 'releases' ? { keep: config.app.keepReleases, shared: config.app.shared } : null,
})

/** Where every relative path of the config resolves, gate checks included: next to the config file (else the working directory). */
export const configDir = (ctx: ConfigContext): string => (ctx.configSource ? dirname(ctx.configSource) : process.cwd())

/** The settings a command that takes a rollout over applies from the config as it is now (resume, promote, tick). */
export const currentSettings = (ctx: ConfigContext): CurrentSettings => ({ gates: ctx.config.gates, checksDir: configDir(ctx) })

/** A rollout request from the validated config: the one place config keys meet the engine. */
export const rolloutRequest = (
  ctx: ConfigContext,
  hosts: readonly Host[],
  options: { readonly ref?: string | undefined; readonly seed?: string | undefined; readonly owner?: string; readonly ignoredCooldown?: IgnoredCooldown | null; readonly ignoredWindow?: IgnoredWindow | null },
): RolloutRequest => ({
  hosts,
  fromHostsTable: !ctx.config.inventory.query,
  ref: options.ref ?? ctx.config.app.branch,
  stages: ctx.config.rollout.stages,
  failureThreshold: ctx.config.rollout.failureThreshold,
  concurrency: ctx.config.rollout.concurrency,
  stageDelayMs: ctx.config.rollout.stageDelayMs,
  connectTimeoutMs: ctx.config.ssh.connectTimeoutMs,
  settings: hostSettings(ctx.config),
  gates: ctx.config.gates,
  checksDir: configDir(ctx),
  rings: ctx.config.rollout.rings,
  windows: ctx.config.rollout.windows,
  budget: ctx.config.rollout.failureBudget,
  ...(options.ignoredWindow ? { ignoreWindow: true, ignoredWindow: options.ignoredWindow } : {}),
  owner: options.owner ?? owner(),
  ...(options.ignoredCooldown ? { ignoredCooldown: options.ignoredCooldown } : {}),
  ...(options.seed ? { seed: options.seed } : {}),
})

