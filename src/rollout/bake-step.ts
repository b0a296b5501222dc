import { measure, summarize, type MeasureOptions } from '../gates/measure.js'
import type { GateContext, GatesConfig, MeasurementRecord } from '../gates/types.js'
import type { Clock } from './clock.js'
import type { RolloutEvent } from './events.js'
import type { RolloutSettings } from './request.js'

/** The event that opens a stage's bake, with when it ends (at least one interval when anything is measured). */
export function bakeStarted(rolloutId: string, stage: number, gates: GatesConfig, since: number, now: number): RolloutEvent {
  const bakeMs = Math.max(gates.bakeMs, gates.metrics.length + gates.checks.length > 0 ? gates.intervalMs : 0)
  return { type: 'bake-started', rolloutId, stage, bakeMs: gates.bakeMs, intervalMs: gates.intervalMs, endsAt: new Date(since + bakeMs).toISOString(), at: new Date(now).toISOString() }
}

/** How a run measures: checks next to the config, bounded by the command timeout, stopped with the run. */
export const measureOptions = (settings: RolloutSettings, stop?: AbortSignal): MeasureOptions => ({
  checkTimeoutMs: settings.host.commandTimeoutMs,
  ...(settings.checksDir ? { cwd: settings.checksDir } : {}),
  ...(stop ? { signal: stop } : {}),
})

/** One measurement of every gate: what the bake evaluation keeps of it, and the event that records it. */
export async function measureOnce(
  rolloutId: string,
  gates: GatesConfig,
  context: GateContext,
  clock: Clock,
  options: MeasureOptions,
): Promise<{ record: MeasurementRecord; event: RolloutEvent }> {
  const at = clock.now()
  const m = await measure(gates, context, options)
  return {
    record: { at, verdict: m.verdict, reason: summarize(m) },
    event: { type: 'gate-measured', rolloutId, stage: context.stage, gates: [...m.gates], verdict: m.verdict, at: new Date(at).toISOString() },
  }
}
