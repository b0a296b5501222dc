import { createHash } from 'node:crypto'

import { UsageError } from '../errors.js'
import { redactUrl } from '../redact.js'
import { checkSharedPath } from '../remote/validate.js'
import type { GatesConfig } from '../gates/types.js'
import type { RolloutSettings } from './request.js'

/**
 * A rollout's recorded settings, read back when a command takes it over. They were written by
 * some fleet version, maybe an older one, maybe edited by hand: parsed, never cast, so a bad
 * record is a clear error before anything runs instead of a crash mid-stage.
 */
export function parseSettings(rolloutId: string, raw: unknown): RolloutSettings {
  const bad = (field: string, want: string): never => {
    throw new UsageError(`rollout ${rolloutId}: its recorded settings cannot be read (${field} should be ${want}); abort it and start a new one`)
  }
  const obj = (value: unknown, field: string): Record<string, unknown> =>
    typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : bad(field, 'an object')
  const num = (value: unknown, field: string, min = 0): number => (typeof value === 'number' && Number.isFinite(value) && value >= min ? value : bad(field, `a number ≥ ${min}`))
  const str = (value: unknown, field: string): string => (typeof value === 'string' ? value : bad(field, 'text'))
  const s = obj(raw, 'settings')
  const host = obj(s.host, 'host')
  const steps = obj(host.steps, 'host.steps')
  const verify = obj(host.verify, 'host.verify')
  const stages = Array.isArray(s.stages) ? s.stages.map((p, i) => num(p, `stages[${i}]`)) : bad('stages', 'a list of percentages')
  return {
    ref: str(s.ref, 'ref'),
    stages,
    failureThreshold: num(s.failureThreshold, 'failureThreshold'),
    concurrency: num(s.concurrency, 'concurrency', 1),
    stageDelayMs: num(s.stageDelayMs, 'stageDelayMs'),
    connectTimeoutMs: num(s.connectTimeoutMs, 'connectTimeoutMs'),
    host: {
      remote: str(host.remote, 'host.remote'),
      branch: str(host.branch, 'host.branch'),
      service: str(host.service, 'host.service'),
      steps: {
        install: str(steps.install, 'host.steps.install'),
        build: steps.build === null || steps.build === undefined ? null : str(steps.build, 'host.steps.build'),
        restart: str(steps.restart, 'host.steps.restart'),
        verify: str(steps.verify, 'host.steps.verify'),
        health: steps.health === null || steps.health === undefined ? null : str(steps.health, 'host.steps.health'),
        diagnose: steps.diagnose === null || steps.diagnose === undefined ? null : str(steps.diagnose, 'host.steps.diagnose'),
      },
      verify: { delayMs: num(verify.delayMs, 'host.verify.delayMs'), retries: num(verify.retries, 'host.verify.retries'), intervalMs: num(verify.intervalMs, 'host.verify.intervalMs') },
      commandTimeoutMs: num(host.commandTimeoutMs, 'host.commandTimeoutMs', 1),
      releases: releasesOf(host.releases, bad),
    },
    gates: s.gates === null || s.gates === undefined ? null : parseGates(obj(s.gates, 'gates'), bad),
    ...(typeof s.checksDir === 'string' ? { checksDir: s.checksDir } : {}),
    ...(s.detached === true ? { detached: true } : {}),
    ...shapeOf(s, bad),
  }
}

/** The release layout as recorded (absent in rollouts of older versions: in place). */
function releasesOf(raw: unknown, bad: (field: string, want: string) => never): { keep: number; shared: string[] } | null {
  if (raw === null || raw === undefined) return null
  const r = typeof raw === 'object' && !Array.isArray(raw) ? (raw as Record<string, unknown>) : bad('host.releases', 'an object or null')
  const keep = typeof r.keep === 'number' && Number.isInteger(r.keep) && r.keep >= 1 ? r.keep : bad('host.releases.keep', 'a whole number ≥ 1')
  const shared = Array.isArray(r.shared) && r.shared.every((p) => typeof p === 'string' && checkSharedPath(p) === null) ? (r.shared as string[]) : bad('host.releases.shared', 'a list of relative paths')
  return { keep, shared }
}

/** The fleet's shape as recorded (rings, windows, budget, holds): checked for shape, kept as written by start. */
function shapeOf(s: Record<string, unknown>, bad: (field: string, want: string) => never): Partial<RolloutSettings> {
  const listOf = (key: string): unknown[] | undefined => (s[key] === undefined ? undefined : Array.isArray(s[key]) ? (s[key] as unknown[]) : bad(key, 'a list'))
  const objects = (key: string): Record<string, unknown>[] | undefined => listOf(key)?.map((x, i) => (typeof x === 'object' && x !== null ? (x as Record<string, unknown>) : bad(`${key}[${i}]`, 'an object')))
  const budget = s.failureBudget
  if (budget !== undefined && budget !== null && !(typeof budget === 'number' && Number.isInteger(budget) && budget >= 0)) bad('failureBudget', 'a number of hosts or null')
  const rings = objects('rings') as RolloutSettings['rings']
  const planRings = objects('planRings') as RolloutSettings['planRings']
  const windows = objects('windows') as RolloutSettings['windows']
  const held = objects('held') as RolloutSettings['held']
  return {
    ...(rings ? { rings } : {}),
    ...(planRings ? { planRings } : {}),
    ...(windows ? { windows } : {}),
    ...(s.ignoreWindow === true ? { ignoreWindow: true } : {}),
    ...(typeof budget === 'number' ? { failureBudget: budget } : {}),
    ...(held ? { held } : {}),
  }
}

function parseGates(g: Record<string, unknown>, bad: (field: string, want: string) => never): GatesConfig {
  const num = (field: string): number => (typeof g[field] === 'number' && Number.isFinite(g[field]) ? (g[field] as number) : bad(`gates.${field}`, 'a number'))
  const list = (field: string): Record<string, unknown>[] =>
    Array.isArray(g[field]) && (g[field] as unknown[]).every((x) => typeof x === 'object' && x !== null) ? (g[field] as Record<string, unknown>[]) : bad(`gates.${field}`, 'a list')
  const prometheus = (typeof g.prometheus === 'object' && g.prometheus !== null ? g.prometheus : bad('gates.prometheus', 'an object')) as Record<string, unknown>
  const bound = (v: unknown, field: string): number | null => (v === null || v === undefined ? null : typeof v === 'number' ? v : bad(field, 'a number or null'))
  return {
    bakeMs: num('bakeMs'),
    intervalMs: num('intervalMs'),
    prometheus: {
      url: typeof prometheus.url === 'string' ? prometheus.url : null,
      timeoutMs: typeof prometheus.timeoutMs === 'number' ? prometheus.timeoutMs : bad('gates.prometheus.timeoutMs', 'a number'),
      ...(typeof prometheus.fingerprint === 'string' ? { fingerprint: prometheus.fingerprint } : {}),
    },
    metrics: list('metrics').map((m, i) => ({
      name: typeof m.name === 'string' ? m.name : bad(`gates.metrics[${i}].name`, 'text'),
      query: typeof m.query === 'string' ? m.query : bad(`gates.metrics[${i}].query`, 'text'),
      min: bound(m.min, `gates.metrics[${i}].min`),
      max: bound(m.max, `gates.metrics[${i}].max`),
    })),
    checks: list('checks').map((c, i) => ({
      name: typeof c.name === 'string' ? c.name : bad(`gates.checks[${i}].name`, 'text'),
      command: typeof c.command === 'string' ? c.command : bad(`gates.checks[${i}].command`, 'text'),
    })),
    failureLimit: num('failureLimit'),
    inconclusiveLimit: num('inconclusiveLimit'),
    errorTimeoutMs: num('errorTimeoutMs'),
    onFail: g.onFail === 'revert' || g.onFail === 'halt' ? g.onFail : bad('gates.onFail', '"revert" or "halt"'),
  }
}

const fingerprint = (text: string): string => `sha256:${createHash('sha256').update(text).digest('hex').slice(0, 16)}`

/**
 * The settings as they are stored with the rollout: no secret in them. Prometheus' URL is kept with
 * its password masked and a fingerprint of the real one; check commands (which may carry tokens)
 * only as fingerprints. A command that takes the rollout over reads the gates from the live config
 * (CurrentSettings), so a rotated password applies, and the fingerprints say whether they changed.
 */
export function storableSettings(settings: RolloutSettings): RolloutSettings {
  const gates = storableGates(settings.gates ?? null)
  return { ...settings, gates }
}

function storableGates(gates: GatesConfig | null): GatesConfig | null {
  if (!gates) return null
  const url = gates.prometheus.url
  return {
    ...gates,
    prometheus: { ...gates.prometheus, url: url && redactUrl(url), ...(url ? { fingerprint: gates.prometheus.fingerprint ?? fingerprint(url) } : {}) },
    checks: gates.checks.map((c) => ({ name: c.name, command: c.command.startsWith('sha256:') ? c.command : fingerprint(c.command) })),
  }
}

/** What a person changed in the gates between the start and now, in words: `metric error_rate changed`, `bake 10m → 5m`. */
export function gateChanges(recorded: GatesConfig | null | undefined, current: GatesConfig | null): string[] {
  // Compared in the stored form: fingerprints stand for the secrets on both sides.
  const before = storableGates(recorded ?? null)
  const after = storableGates(current)
  if (!before && !after) return []
  if (!before) return ['gates added']
  if (!after) return ['gates removed']
  const changes: string[] = []
  const byName = <T extends { name: string }>(list: readonly T[]) => new Map(list.map((x) => [x.name, JSON.stringify(x)]))
  for (const [kind, a, b] of [['metric', byName(before.metrics), byName(after.metrics)] as const, ['check', byName(before.checks), byName(after.checks)] as const]) {
    for (const [name, text] of b) changes.push(...(!a.has(name) ? [`${kind} ${name} added`] : a.get(name) !== text ? [`${kind} ${name} changed`] : []))
    for (const name of a.keys()) if (!b.has(name)) changes.push(`${kind} ${name} removed`)
  }
  for (const key of ['bakeMs', 'intervalMs', 'failureLimit', 'inconclusiveLimit', 'errorTimeoutMs', 'onFail'] as const)
    if (before[key] !== after[key]) changes.push(`${key} ${String(before[key])} → ${String(after[key])}`)
  if (JSON.stringify(before.prometheus) !== JSON.stringify(after.prometheus)) changes.push('prometheus changed')
  return changes
}
