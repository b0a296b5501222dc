import type { RolloutHostRecord, RolloutRecord } from '../store/store.js'
import type { Sha } from '../types.js'
import type { RolloutEvent } from './events.js'
import type { Plan, PlannedHost } from './plan.js'
import type { RolloutSettings } from './request.js'
import { storableSettings } from './settings.js'

/** A rollout about to be recorded: what it is, who asked, when. */
export interface NewRollout {
  readonly id: string
  readonly settings: RolloutSettings
  readonly plan: Plan
  readonly target: Sha
  readonly seed: string
  readonly owner: string
  readonly startedAt: Date
}

/** The rollout's row, `running` at stage 0; its settings are stored so resume needs no config. */
export const newRolloutRecord = (r: NewRollout): Omit<RolloutRecord, 'epoch'> => ({
  id: r.id,
  state: 'running',
  ref: r.settings.ref,
  sha: r.target,
  stages: r.plan.stages,
  seed: r.seed,
  currentStage: 0,
  settings: storableSettings(r.settings) as unknown as Record<string, unknown>,
  owner: r.owner,
  startedAt: r.startedAt,
  finishedAt: null,
  heartbeatAt: r.startedAt,
  exitCode: null,
  error: null,
})

/** A planned host's row before anything happened to it. */
export const pendingHostRecord = (h: PlannedHost): RolloutHostRecord => ({
  name: h.name,
  address: h.address,
  port: h.port,
  user: h.user,
  appDir: h.appDir,
  position: h.position,
  stage: h.stage,
  status: 'pending',
  step: null,
  previousVersion: null,
  newVersion: null,
  error: null,
  startedAt: null,
  finishedAt: null,
})

export const rolloutStarted = (r: NewRollout): RolloutEvent => ({
  type: 'rollout-started',
  rolloutId: r.id,
  ref: r.settings.ref,
  sha: r.target,
  stages: [...r.plan.stages],
  stageSizes: r.plan.byStage.map((s) => s.length),
  hosts: r.plan.hosts.length,
  concurrency: r.settings.concurrency,
  failureThreshold: r.settings.failureThreshold,
  seed: r.seed,
  ...(r.plan.rings.some((ring) => ring.name !== null) ? { rings: r.plan.rings.map((ring) => ({ ...ring })) } : {}),
  ...(r.plan.held.length > 0 ? { held: r.plan.held.map((h) => ({ ...h })) } : {}),
  ...(r.settings.failureBudget != null ? { failureBudget: r.settings.failureBudget } : {}),
  at: r.startedAt.toISOString(),
})
