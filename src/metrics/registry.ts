import { Counter, Gauge, Registry } from 'prom-client'

import { GATE_VERDICTS, METRIC_HOST_STATUSES, METRIC_ROLLOUT_STATES, type MetricsSnapshot } from './snapshot.js'

const seconds = (date: Date | null): number => (date === null ? 0 : date.getTime() / 1000)

/**
 * A fresh registry holding exactly the snapshot (never prom-client's global one: nothing of a previous
 * publication, nor the process's default metrics, leaks in). Label values are escaped by prom-client;
 * host names never become labels (hosts are counted by status), gate names come from the config.
 */
export function buildRegistry(snapshot: MetricsSnapshot): Registry {
  const registry = new Registry()
  const registers = [registry]

  const state = new Gauge({ name: 'fleet_rollout_state', help: 'The rollout state, one-hot: 1 for the current state, 0 for the others.', labelNames: ['state'], registers })
  const known = (METRIC_ROLLOUT_STATES as readonly string[]).includes(snapshot.state ?? '')
  for (const s of METRIC_ROLLOUT_STATES) state.set({ state: s }, snapshot.state === s ? 1 : 0)
  // A state this version does not know (a newer fleet wrote it) still shows up rather than reading as "none".
  if (snapshot.state !== null && !known) state.set({ state: snapshot.state }, 1)

  if (snapshot.rolloutId !== null)
    new Gauge({ name: 'fleet_rollout_info', help: 'The rollout these metrics describe (always 1).', labelNames: ['rollout_id'], registers }).set(
      { rollout_id: snapshot.rolloutId },
      1,
    )

  new Gauge({ name: 'fleet_rollout_percent', help: 'Cumulative percentage of the fleet the rollout has reached (current stage).', registers }).set(snapshot.percent)

  const hosts = new Gauge({ name: 'fleet_hosts', help: "Hosts of the rollout by status.", labelNames: ['status'], registers })
  for (const status of METRIC_HOST_STATUSES) hosts.set({ status }, snapshot.hosts[status] ?? 0)

  const value = new Gauge({ name: 'fleet_gate_value', help: 'Latest measured value of a gate metric (absent when it gave no number).', labelNames: ['gate'], registers })
  const verdict = new Gauge({ name: 'fleet_gate_verdict', help: 'Latest verdict of a gate, one-hot over pass, fail, inconclusive, error.', labelNames: ['gate', 'verdict'], registers })
  for (const gate of snapshot.gates) {
    if (gate.value !== null && Number.isFinite(gate.value)) value.set({ gate: gate.name }, gate.value)
    for (const v of GATE_VERDICTS) verdict.set({ gate: gate.name, verdict: v }, gate.verdict === v ? 1 : 0)
  }

  new Counter({ name: 'fleet_decisions_total', help: 'Decisions recorded for the rollout.', registers }).inc(Math.max(0, snapshot.decisions || 0))
  new Counter({ name: 'fleet_rollbacks_total', help: 'Hosts moved back to their previous version in the rollout.', registers }).inc(Math.max(0, snapshot.rollbacks || 0))
  new Gauge({ name: 'fleet_last_run_timestamp_seconds', help: 'When fleet last ran (Unix time).', registers }).set(seconds(snapshot.lastRunAt))
  new Gauge({
    name: 'fleet_last_success_timestamp_seconds',
    help: 'When a fleet run last ended without an error of its own (Unix time; 0 = never). Alert on time() minus this.',
    registers,
  }).set(seconds(snapshot.lastSuccessAt))
  return registry
}
