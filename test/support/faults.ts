/**
 * What the fault-injection suites (faults.test.ts, faults-store.test.ts) share: a rollout run
 * in-process against the real fleet and store with a listener on every event, and checks that
 * nothing was lost and the store matches what the hosts really run.
 */
import { expect } from 'vitest'

import { makeExecutor, rolloutRequest } from '../../src/cli/context.js'
import type { FleetConfig } from '../../src/config/types.js'
import { systemClock, type Clock } from '../../src/rollout/clock.js'
import { runRollout, type RolloutResult } from '../../src/rollout/engine.js'
import type { RolloutEvent, RolloutListener } from '../../src/rollout/events.js'
import { loadInventory } from '../../src/rollout/inventory.js'
import type { Store } from '../../src/store/store.js'
import type { HostStatus } from '../../src/types.js'
import { expectOn } from './fault-kit.js'
import type { TestFleet } from './test-fleet.js'

const TERMINAL: readonly HostStatus[] = ['success', 'failed', 'rolled_back', 'rollback_failed', 'skipped', 'held']

/** A rollout in-process against the real fleet and store, with a listener that sees every event as it is recorded. */
export async function rolloutWith(
  store: Store,
  config: FleetConfig,
  options: { listener?: RolloutListener; ref?: string; owner?: string; storeRetryMs?: number; seed?: string; clock?: Clock } = {},
): Promise<RolloutResult & { events: RolloutEvent[] }> {
  const inventory = await loadInventory(store, config)
  const events: RolloutEvent[] = []
  const request = {
    ...rolloutRequest({ config, configSource: null }, inventory.hosts, { ref: options.ref, seed: options.seed ?? 'test-seed', owner: options.owner ?? 'test' }),
    ...(options.storeRetryMs !== undefined ? { storeRetryMs: options.storeRetryMs } : {}),
  }
  const listener: RolloutListener = (event) => {
    events.push(event)
    options.listener?.(event)
  }
  const result = await runRollout({ store, executor: makeExecutor(config, store), clock: options.clock ?? systemClock, listeners: [listener] }, request)
  return { ...result, events }
}

export const isStep = (host: string | null, step: string, phase: 'update' | 'rollback' = 'update', stage?: number) => (e: Record<string, unknown>) =>
  e.type === 'host-step' && (host === null || e.host === host) && e.step === step && e.phase === phase && (stage === undefined || e.stage === stage)

export const statusesOf = async (store: Store, id: string): Promise<Record<string, HostStatus>> =>
  Object.fromEntries((await store.listRolloutHosts(id)).map((h) => [h.name, h.status]))

/** Nothing lost: every planned host is terminal or pending, none left `updating`. */
export async function expectNothingLost(store: Store, id: string, hostNames: readonly string[]): Promise<void> {
  const rows = await store.listRolloutHosts(id)
  expect(rows.map((r) => r.name).sort()).toEqual([...hostNames].sort())
  for (const row of rows) expect([...TERMINAL, 'pending'], `${row.name} is ${row.status}`).toContain(row.status)
}

/** Stored status matches reality: success/skipped ⇒ on target and running it; rolled_back ⇒ on previous and running it. */
export async function expectStoreMatchesHosts(f: TestFleet, store: Store, id: string, target: string): Promise<void> {
  for (const row of await store.listRolloutHosts(id)) {
    if (row.status === 'success' || row.status === 'skipped') await expectOn(f, row.name, target)
    if (row.status === 'rolled_back') await expectOn(f, row.name, row.previousVersion!)
    if (row.status === 'pending') await expectOn(f, row.name, f.origin.shas.v1)
  }
}
