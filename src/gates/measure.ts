/**
 * One measurement: every configured gate (metrics and checks) at once. The measurement's verdict
 * is the worst of its gates (VERDICT_ORDER: error > fail > inconclusive > pass).
 */
import { runCheck } from './check.js'
import { instantQuery } from './prometheus.js'
import { substitute } from './promql.js'
import { worstVerdict, type GateContext, type GateResult, type GatesConfig, type Measurement, type MetricGate } from './types.js'

export interface MeasureOptions {
  /** Timeout of each local check (suggested: timeouts.command). */
  readonly checkTimeoutMs: number
  /** Where checks run (suggested: the config file's directory). */
  readonly cwd?: string
  readonly signal?: AbortSignal
}

/** Prometheus' spelling of the infinities. */
const show = (value: number): string => (value === Number.POSITIVE_INFINITY ? '+Inf' : value === Number.NEGATIVE_INFINITY ? '-Inf' : String(value))

/** `value` against the gate's range, with the reason in words. */
export function judgeValue(value: number, min: number | null, max: number | null): { verdict: 'pass' | 'fail'; reason: string } {
  if (min !== null && value < min) return { verdict: 'fail', reason: `${show(value)} < min ${min}` }
  if (max !== null && value > max) return { verdict: 'fail', reason: `${show(value)} > max ${max}` }
  const range = min !== null && max !== null ? `within ${min}..${max}` : min !== null ? `>= min ${min}` : max !== null ? `<= max ${max}` : 'no range'
  return { verdict: 'pass', reason: `${show(value)} ${range}` }
}

async function measureMetric(config: GatesConfig, gate: MetricGate, ctx: GateContext, signal?: AbortSignal): Promise<GateResult> {
  const base = { name: gate.name, kind: 'metric' as const, min: gate.min, max: gate.max }
  const url = config.prometheus.url
  // The config refuses metrics without a URL; a caller building GatesConfig by hand gets an error, not a crash.
  if (url === null) return { ...base, value: null, verdict: 'error', reason: 'gates.prometheus.url is not set' }
  let query: string
  try {
    query = substitute(gate.query, ctx)
  } catch (err) {
    return { ...base, value: null, verdict: 'error', reason: err instanceof Error ? err.message : String(err) }
  }
  const result = await instantQuery(url, query, { timeoutMs: config.prometheus.timeoutMs, ...(signal ? { signal } : {}) })
  if (result.kind !== 'value') return { ...base, value: null, verdict: result.kind, reason: result.reason }
  // ±Inf is judged as itself and kept as text: JSON (events, --json, the store) has no infinities.
  const infinite = Number.isFinite(result.value) ? {} : { valueText: result.value > 0 ? '+Inf' : '-Inf' }
  return { ...base, value: Number.isFinite(result.value) ? result.value : null, ...infinite, ...judgeValue(result.value, gate.min, gate.max) }
}

export async function measure(config: GatesConfig, ctx: GateContext, options: MeasureOptions): Promise<Measurement> {
  const metrics = config.metrics.map((gate) => measureMetric(config, gate, ctx, options.signal))
  const checks = config.checks.map(async (gate): Promise<GateResult> => {
    const r = await runCheck(gate.command, ctx, {
      timeoutMs: options.checkTimeoutMs,
      ...(options.cwd !== undefined ? { cwd: options.cwd } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
    })
    return { name: gate.name, kind: 'check', value: r.exitCode, min: null, max: null, verdict: r.verdict, reason: r.reason, output: r.output }
  })
  const gates = await Promise.all([...metrics, ...checks])
  // An aborted measurement is no measurement: the caller decides what an abort means.
  options.signal?.throwIfAborted()
  return { gates, verdict: worstVerdict(gates.map((g) => g.verdict)) }
}

/** One line for a fail/pause reason: the gates that were not pass, with their reasons. */
export const summarize = (m: Measurement): string => {
  const bad = m.gates.filter((g) => g.verdict !== 'pass')
  return bad.length === 0 ? 'all gates pass' : bad.map((g) => `${g.name} ${g.verdict}: ${g.reason}`).join('; ')
}
