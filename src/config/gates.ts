/**
 * Parsers of the `gates.*` keys (design "Health gates") and the checks that span several keys.
 * Each parser throws through `fail` (parsers.ts's `"key" problem, got value`), naming the exact
 * item: `gates.metrics[1].max`.
 */
import { commandPlaceholderProblem } from '../gates/check.js'
import { queryPlaceholderProblem } from '../gates/promql.js'
import type { CheckGate, GatesConfig, MetricGate } from '../gates/types.js'
import { formatDuration, parseDuration } from '../duration.js'
import { isObject, itemParsers } from './items.js'

type Fail = (key: string, problem: string, value: unknown) => never
type Parse = (value: unknown, key: string, ctx: { readonly text: boolean }) => unknown


const GATE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$/

export function gatesParsers(fail: Fail) {
  const { json, onlyKeys, list } = itemParsers(fail)

  const name = (value: unknown, key: string): string =>
    typeof value === 'string' && GATE_NAME.test(value)
      ? value
      : fail(key, 'must be a name of 1 to 64 letters, digits, "_", ".", ":" or "-"', value)

  const bound = (value: unknown, key: string): number | null =>
    value === undefined || value === null ? null : typeof value === 'number' && Number.isFinite(value) ? value : fail(key, 'must be a number', value)

  const metrics: Parse = (raw, key, ctx) =>
    list(json(raw, key, ctx), key).map((item, i): MetricGate => {
      const at = `${key}[${i}]`
      if (!isObject(item)) return fail(at, 'must be an object like { "name": ..., "query": ..., "max": ... }', item)
      onlyKeys(item, at, ['name', 'query', 'min', 'max'])
      const query = item.query
      if (typeof query !== 'string' || query.trim() === '') fail(`${at}.query`, 'must be a non-empty string (a PromQL query)', query)
      const problem = queryPlaceholderProblem(query as string)
      if (problem) fail(`${at}.query`, problem, query)
      const min = bound(item.min, `${at}.min`)
      const max = bound(item.max, `${at}.max`)
      if (min !== null && max !== null && min > max) fail(`${at}.min`, `must not be greater than max (${max})`, min)
      return { name: name(item.name, `${at}.name`), query: query as string, min, max }
    })

  const checks: Parse = (raw, key, ctx) =>
    list(json(raw, key, ctx), key).map((item, i): CheckGate => {
      const at = `${key}[${i}]`
      if (!isObject(item)) return fail(at, 'must be an object like { "name": ..., "command": ... }', item)
      onlyKeys(item, at, ['name', 'command'])
      const command = item.command
      if (typeof command !== 'string' || command.trim() === '') fail(`${at}.command`, 'must be a non-empty string (a shell command)', command)
      const problem = commandPlaceholderProblem(command as string)
      if (problem) fail(`${at}.command`, problem, command)
      return { name: name(item.name, `${at}.name`), command: command as string }
    })

  const prometheus: Parse = (raw, key, ctx) => {
    const value = json(raw, key, ctx)
    if (!isObject(value)) return fail(key, 'must be an object like { "url": "http://127.0.0.1:9090", "timeout": "10s" }', value)
    onlyKeys(value, key, ['url', 'timeout'])
    const url = value.url ?? null
    if (url !== null) {
      let ok = false
      try {
        ok = typeof url === 'string' && ['http:', 'https:'].includes(new URL(url).protocol)
      } catch {
        // not a URL
      }
      if (!ok) fail(`${key}.url`, 'must be an http:// or https:// URL of the Prometheus server, or null', url)
    }
    const timeoutMs = parseDuration((value.timeout ?? '10s') as string, `${key}.timeout`)
    if (timeoutMs === 0) fail(`${key}.timeout`, 'must be greater than 0', value.timeout)
    return { url, timeoutMs }
  }

  return { metrics, checks, prometheus }
}

/** Problems between keys: [key named, problem, key whose source is shown (default: the key named)]. */
export function gatesProblems(g: GatesConfig): [string, string, string?][] {
  const problems: [string, string, string?][] = []
  if (g.bakeMs > 0 && g.bakeMs < g.intervalMs) {
    problems.push(['gates.bake', `must be 0 or at least gates.interval (${formatDuration(g.intervalMs)}), got ${formatDuration(g.bakeMs)}`])
  }
  if (g.metrics.length > 0 && g.prometheus.url === null) {
    problems.push(['gates.prometheus.url', 'must be set: gates.metrics are Prometheus queries', 'gates.metrics'])
  }
  const seen = new Set<string>()
  const all = [...g.metrics.map((m, i) => [`gates.metrics[${i}].name`, m.name]), ...g.checks.map((c, i) => [`gates.checks[${i}].name`, c.name])]
  for (const [key, gateName] of all as [string, string][]) {
    if (seen.has(gateName)) problems.push([key, `"${gateName}" is used by another gate (names must be unique)`])
    seen.add(gateName)
  }
  return problems
}
