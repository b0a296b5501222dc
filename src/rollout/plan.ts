import { createHash } from 'node:crypto'

import type { Host } from '../types.js'

/**
 * Hosts per stage for cumulative percentages: stage k holds hosts up to
 * ceil(p_k · N) minus those already placed. The first non-empty stage always
 * has at least one host because ceil(p · N) ≥ 1 for any p > 0 and N ≥ 1.
 */
export function stageSizes(hostCount: number, stages: readonly number[]): number[] {
  const sizes: number[] = []
  let placed = 0
  for (const percent of stages) {
    // Integer arithmetic avoids 0.1 · 30 = 3.0000000000000004 rounding up to 4.
    const upTo = Math.min(hostCount, Math.ceil((percent * hostCount) / 100))
    sizes.push(Math.max(0, upTo - placed))
    placed = Math.max(placed, upTo)
  }
  return sizes
}

/** Stable per-rollout order: sort by sha256(seed + host name); the same seed gives the same canaries. */
export function canaryOrder<T extends { readonly name: string }>(hosts: readonly T[], seed: string): T[] {
  const keyed = hosts.map((host) => ({ host, key: createHash('sha256').update(`${seed}\0${host.name}`).digest('hex') }))
  keyed.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : a.host.name < b.host.name ? -1 : 1))
  return keyed.map((k) => k.host)
}

export interface PlannedHost extends Host {
  readonly position: number
  readonly stage: number
}

export interface Plan {
  readonly seed: string
  readonly stages: readonly number[]
  /** Hosts of each stage, in canary order. */
  readonly byStage: readonly (readonly PlannedHost[])[]
  readonly hosts: readonly PlannedHost[]
}

export function buildPlan(hosts: readonly Host[], stages: readonly number[], seed: string): Plan {
  const ordered = canaryOrder(hosts, seed)
  const sizes = stageSizes(ordered.length, stages)
  const byStage: PlannedHost[][] = []
  let position = 0
  sizes.forEach((size, stage) => {
    byStage.push(ordered.slice(position, position + size).map((host, i) => ({ ...host, position: position + i, stage })))
    position += size
  })
  return { seed, stages, byStage, hosts: byStage.flat() }
}

/** Outcomes that count against a stage. */
export const isFailure = (status: string): boolean =>
  status === 'failed' || status === 'rolled_back' || status === 'rollback_failed'

export interface StageTally {
  readonly size: number
  readonly failures: number
  readonly skipped: number
}

/** failures / (stage hosts not skipped); 0 for a stage with nothing to do. */
export const failureRate = (t: StageTally): number => {
  const eligible = t.size - t.skipped
  return eligible === 0 ? 0 : t.failures / eligible
}

/**
 * True as soon as the stage must halt whatever the remaining hosts do. The
 * lowest rate still possible is when every unfinished host succeeds (a
 * skipped one would shrink the denominator and raise the rate), so if even
 * that exceeds the threshold the outcome is certain.
 */
export const haltIsCertain = (t: StageTally, threshold: number): boolean => {
  const eligibleAtMost = t.size - t.skipped
  return eligibleAtMost > 0 && t.failures / eligibleAtMost > threshold
}
