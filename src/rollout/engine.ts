/**
 * The engine's public face: start, resume and abort a rollout. The decision
 * core is decide.ts; run.ts drives it; host-run.ts does one host's work;
 * lease.ts, store-retry.ts and journal.ts are the engine's own drivers.
 */
export { planRollout, runRollout, type ResolvedPlan } from './start.js'
export { abortRollout, pauseRollout, promoteRollout, resumeRollout, storedPlan, tickRollout, type Cleared } from './recover.js'
export { LEASE_TTL_MS, leaseIsStale } from './lease.js'
export { STORE_RETRY_MS, StoreUnavailableError, isTransientStoreError } from './store-retry.js'
export type { RolloutDeps, RolloutRequest, RolloutResult, RolloutSettings } from './request.js'
