import { createHash } from 'node:crypto'

import type { RingSpec } from '../config/shape.js'
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

/** One ring of a plan: its name (null: no rings, or the hosts of no listed ring) and how many stages it has. */
export interface PlannedRing {
  readonly name: string | null
  readonly stages: number
}

export interface Plan {
  readonly seed: string
  /** Each stage's cumulative percentage within its ring, stages numbered across the rollout. */
  readonly stages: readonly number[]
  /** Hosts of each stage, in canary order. */
  readonly byStage: readonly (readonly PlannedHost[])[]
  readonly hosts: readonly PlannedHost[]
  /** Ring by ring, in order; one unnamed ring without `rollout.rings`. */
  readonly rings: readonly PlannedRing[]
  /** Held hosts (`fleet hosts hold`, the inventory's hold column): in no stage, never touched. */
  readonly held: readonly { readonly name: string; readonly reason: string }[]
}

/** The ring of each stage, for the views (null: the unnamed one). */
export const ringOfStage = (rings: readonly PlannedRing[]): (string | null)[] => rings.flatMap((r) => Array<string | null>(r.stages).fill(r.name))

/**
 * Hosts → stages. Held hosts are set aside. With rings, each ring (in the configured order, then the
 * hosts of no listed ring) goes through its own stages, its canaries chosen within it from the seed;
 * stages are numbered across the rollout, ring 1's first.
 */
export function buildPlan(hosts: readonly Host[], stages: readonly number[], seed: string, rings: readonly RingSpec[] = []): Plan {
  const held = hosts.filter((h) => h.hold).map((h) => ({ name: h.name, reason: h.hold! }))
  const targets = hosts.filter((h) => !h.hold)
  const listed = new Set(rings.map((r) => r.name))
  const groups: { name: string | null; stages: readonly number[]; hosts: readonly Host[] }[] =
    rings.length === 0
      ? [{ name: null, stages, hosts: targets }]
      : [
          ...rings.map((r) => ({ name: r.name, stages: r.stages ?? stages, hosts: targets.filter((h) => h.ring === r.name) })),
          { name: null, stages, hosts: targets.filter((h) => !h.ring || !listed.has(h.ring)) },
        ].filter((g, i, all) => g.name !== null || g.hosts.length > 0 || all.length === 1)
  const byStage: PlannedHost[][] = []
  const allStages: number[] = []
  let position = 0
  for (const group of groups) {
    const ordered = canaryOrder(group.hosts, seed)
    let offset = 0
    stageSizes(ordered.length, group.stages).forEach((size, i) => {
      const stage = byStage.length
      byStage.push(ordered.slice(offset, offset + size).map((host, k) => ({ ...host, position: position + k, stage })))
      allStages.push(group.stages[i]!)
      offset += size
      position += size
    })
  }
  return { seed, stages: allStages, byStage, hosts: byStage.flat(), rings: groups.map((g) => ({ name: g.name, stages: g.stages.length })), held }
}

/** Outcomes that count against a stage. */
export const isFailure = (status: string): boolean =>
  status === 'failed' || status === 'rolled_back' || status === 'rollback_failed'

export interface StageTally {
  readonly size: number
  readonly failures: number
  /** Hosts the rate leaves out: skipped (already on the target) or held (never touched). */
  readonly skipped: number
}

/** failures / (stage hosts neither skipped nor held); 0 for a stage with nothing to do. */
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
