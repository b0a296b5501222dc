/** `gates.*` keys: defaults, valid configs, and every refusal naming the key (exit 2). */
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, test } from 'vitest'
import { loadConfig } from '../src/config/load.js'
import { ExitCode, UsageError } from '../src/errors.js'

let dir: string
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fleet-gates-config-'))
})
afterEach(async () => {
  await rm(dir, { recursive: true, force: true })
})

const load = async (gates: unknown, env: NodeJS.ProcessEnv = {}) => {
  await writeFile(join(dir, 'rollout.config.json'), JSON.stringify({ gates }))
  return loadConfig({ cwd: dir, env }).config.gates
}
const refused = async (gates: unknown, env: NodeJS.ProcessEnv = {}): Promise<string> => {
  try {
    await load(gates, env)
  } catch (err) {
    expect(err).toBeInstanceOf(UsageError)
    expect((err as UsageError).exitCode).toBe(ExitCode.usage)
    return (err as Error).message
  }
  throw new Error('expected the config to be refused')
}

const ERROR_RATE = 'sum(rate(http_requests_total{code=~"5..",commit="{sha}"}[5m])) / sum(rate(http_requests_total{commit="{sha}"}[5m]))'
const PROM = { url: 'http://127.0.0.1:9090' }

describe('gates config', () => {
  test("the design's example loads, durations in ms", async () => {
    const g = await load({
      bake: '0s',
      interval: '30s',
      prometheus: { url: null, timeout: '10s' },
      checks: [{ name: 'smoke', command: './smoke.sh {sha}' }],
      failureLimit: 0,
      inconclusiveLimit: 3,
      errorTimeout: '10m',
      onFail: 'revert',
    })
    expect(g).toEqual({
      bakeMs: 0,
      intervalMs: 30_000,
      prometheus: { url: null, timeoutMs: 10_000 },
      metrics: [],
      checks: [{ name: 'smoke', command: './smoke.sh {sha}' }],
      failureLimit: 0,
      inconclusiveLimit: 3,
      errorTimeoutMs: 600_000,
      onFail: 'revert',
    })
    const m = await load({ bake: '5m', prometheus: PROM, metrics: [{ name: 'error_rate', query: ERROR_RATE, max: 0.01 }] })
    expect(m.metrics).toEqual([{ name: 'error_rate', query: ERROR_RATE, min: null, max: 0.01 }])
    expect(m.prometheus).toEqual({ url: 'http://127.0.0.1:9090', timeoutMs: 10_000 })
    expect(m.bakeMs).toBe(300_000)
  })

  test('placeholders are allowed inside quoted strings, regex repetitions are not placeholders', async () => {
    const query = `count(up{host=~'{hosts}', stage="{stage}", x=~"a{2}b{1,3}"})`
    expect((await load({ prometheus: PROM, metrics: [{ name: 'up', query, min: 1 }] })).metrics[0]!.query).toBe(query)
  })

  test('environment variables take JSON for objects and lists', async () => {
    const g = await load({}, {
      FLEET_GATES_PROMETHEUS: '{"url":"http://127.0.0.1:9091","timeout":"2s"}',
      FLEET_GATES_METRICS: JSON.stringify([{ name: 'e', query: 'up', min: 1 }]),
      FLEET_GATES_BAKE: '1m',
      FLEET_GATES_ON_FAIL: 'halt',
    })
    expect(g.prometheus).toEqual({ url: 'http://127.0.0.1:9091', timeoutMs: 2_000 })
    expect(g.metrics).toHaveLength(1)
    expect(g.bakeMs).toBe(60_000)
    expect(g.onFail).toBe('halt')
  })

  test.each([
    ['a query that is not a string', { prometheus: PROM, metrics: [{ name: 'e', query: 5 }] }, '"gates.metrics[0].query" must be a non-empty string'],
    ['min > max', { prometheus: PROM, metrics: [{ name: 'e', query: 'up', min: 2, max: 1 }] }, '"gates.metrics[0].min" must not be greater than max (1), got 2'],
    ['a bound that is not a number', { prometheus: PROM, metrics: [{ name: 'e', query: 'up', max: '0.01' }] }, '"gates.metrics[0].max" must be a number, got "0.01"'],
    ['an unknown placeholder in a query', { prometheus: PROM, metrics: [{ name: 'e', query: 'up{commit="{commit}"}' }] }, '"gates.metrics[0].query" has unknown placeholder {commit}'],
    ['a placeholder outside a string', { prometheus: PROM, metrics: [{ name: 'e', query: 'up{host=~{hosts}}' }] }, '"gates.metrics[0].query" has {hosts} outside a "double-quoted"'],
    ['a placeholder in a raw string', { prometheus: PROM, metrics: [{ name: 'e', query: 'up{host=~`{hosts}`}' }] }, '"gates.metrics[0].query" has {hosts} outside'],
    ['an unknown placeholder in a check', { checks: [{ name: 'smoke', command: './smoke.sh {service}' }] }, '"gates.checks[0].command" has unknown placeholder {service}'],
    ['a quoted placeholder in a check', { checks: [{ name: 'smoke', command: './smoke.sh "{hosts}"' }] }, '"gates.checks[0].command" has {hosts} inside quotes'],
    ['a bake shorter than the interval', { bake: '10s', interval: '30s' }, '"gates.bake" must be 0 or at least gates.interval (30s), got 10s'],
    ['a zero interval', { interval: '0s' }, '"gates.interval" must be greater than 0'],
    ['duplicate gate names', { prometheus: PROM, metrics: [{ name: 'x', query: 'up' }], checks: [{ name: 'x', command: 'true' }] }, '"gates.checks[0].name" "x" is used by another gate'],
    ['metrics without prometheus.url', { metrics: [{ name: 'e', query: 'up' }] }, '"gates.prometheus.url" must be set'],
    ['a prometheus.url that is not http', { prometheus: { url: 'ftp://x' } }, '"gates.prometheus.url" must be an http:// or https:// URL'],
    ['an unknown key in a metric', { prometheus: PROM, metrics: [{ name: 'e', query: 'up', maximum: 1 }] }, '"gates.metrics[0].maximum" is not a key'],
    ['an unknown gates key', { bakeTime: '1m' }, 'unknown key "gates.bakeTime"'],
    ['a bad gate name', { checks: [{ name: 'my check', command: 'true' }] }, '"gates.checks[0].name" must be a name'],
    ['metrics that are not a list', { prometheus: PROM, metrics: { name: 'e', query: 'up' } }, '"gates.metrics" must be a JSON array'],
    ['a bad onFail', { onFail: 'rollback' }, '"gates.onFail" must be "revert" or "halt"'],
    ['a negative failureLimit', { failureLimit: -1 }, '"gates.failureLimit" must be an integer from 0 to 1000'],
  ])('refused: %s', async (_, gates, message) => {
    const text = await refused(gates)
    expect(text).toContain(message)
    expect(text).toContain('rollout.config.json')
  })

  test('a password in prometheus.url is masked in the error', async () => {
    const text = await refused({ prometheus: { url: 'http://u:hunter2@127.0.0.1:9090' }, metrics: [{ name: 'e', query: 5 }] })
    expect(text).not.toContain('hunter2')
  })
})
