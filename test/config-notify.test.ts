/** The `notify`, `metrics` and `rollout.cooldown` config keys: parsed, defaulted, and refused with exit 2 naming the key. */
import { mkdirSync, writeFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { afterEach, beforeEach, describe, expect, test } from 'vitest'

import { loadConfig, type LoadConfigOptions } from '../src/config/load.js'
import { ExitCode, UsageError } from '../src/errors.js'

let dir: string
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fleet-config-notify-'))
})
afterEach(() => rm(dir, { recursive: true, force: true }))

const write = (content: unknown): void => writeFileSync(join(dir, 'rollout.config.json'), JSON.stringify(content))
const load = (options: LoadConfigOptions = {}) => loadConfig({ cwd: dir, env: {}, ...options }).config
const refused = (content: unknown, env: NodeJS.ProcessEnv = {}): string => {
  write(content)
  try {
    loadConfig({ cwd: dir, env })
  } catch (error) {
    expect(error).toBeInstanceOf(UsageError)
    expect((error as UsageError).exitCode).toBe(ExitCode.usage)
    return (error as Error).message
  }
  throw new Error('expected a UsageError')
}

describe('defaults', () => {
  test('no notifications, no metrics, job "fleet", no cooldown', () => {
    const config = load()
    expect(config.notify).toEqual([])
    expect(config.metrics).toEqual({ pushgateway: null, textfile: null, job: 'fleet' })
    expect(config.rollout.cooldownMs).toBe(0)
  })
})

describe('accepted', () => {
  test('a notify list, metrics next to the config file, a cooldown', () => {
    mkdirSync(join(dir, 'textfiles'))
    write({
      notify: [
        { url: 'https://hooks.slack.com/services/T0/B0/XYZ', format: 'slack' },
        { url: 'http://127.0.0.1:8080/fleet', format: 'json', on: ['host-finished', 'gate-measured'] },
      ],
      metrics: { pushgateway: 'http://pushgateway:9091', textfile: 'textfiles/fleet.prom', job: 'fleet-prod' },
      rollout: { cooldown: '1h' },
    })
    const config = load()
    expect(config.notify).toEqual([
      { url: 'https://hooks.slack.com/services/T0/B0/XYZ', format: 'slack', on: null },
      { url: 'http://127.0.0.1:8080/fleet', format: 'json', on: ['host-finished', 'gate-measured'] },
    ])
    expect(config.metrics).toEqual({ pushgateway: 'http://pushgateway:9091', textfile: join(dir, 'textfiles', 'fleet.prom'), job: 'fleet-prod' })
    expect(config.rollout.cooldownMs).toBe(3_600_000)
    expect(Object.isFrozen(config.notify[1]!.on)).toBe(true)
  })

  test('from the environment: FLEET_NOTIFY as JSON, FLEET_METRICS_*, FLEET_ROLLOUT_COOLDOWN', () => {
    const config = load({
      env: {
        FLEET_NOTIFY: '[{"url":"http://127.0.0.1:9/x","format":"json","on":["rollout-finished"]}]',
        FLEET_METRICS_PUSHGATEWAY: 'http://127.0.0.1:9091',
        FLEET_METRICS_JOB: 'nightly',
        FLEET_ROLLOUT_COOLDOWN: '30m',
      },
    })
    expect(config.notify).toEqual([{ url: 'http://127.0.0.1:9/x', format: 'json', on: ['rollout-finished'] }])
    expect(config.metrics.pushgateway).toBe('http://127.0.0.1:9091')
    expect(config.metrics.job).toBe('nightly')
    expect(config.rollout.cooldownMs).toBe(1_800_000)
  })
})

describe('refused, naming the key', () => {
  test.each([
    ['notify is not a list', { notify: { url: 'http://x' } }, '"notify" must be a JSON array'],
    ['a URL that is not http(s)', { notify: [{ url: 'ftp://files.example/x', format: 'json' }] }, '"notify[0].url" must be an http:// or https:// URL (not ftp://)'],
    ['no URL', { notify: [{ format: 'json' }] }, '"notify[0].url" must be an http:// or https:// URL'],
    ['an unknown format', { notify: [{ url: 'http://127.0.0.1/x', format: 'teams' }] }, '"notify[0].format" must be "json" or "slack", got "teams"'],
    ['an unknown event type', { notify: [{ url: 'http://127.0.0.1/x', format: 'json', on: ['rollout-started', 'rollout-finsihed'] }] }, '"notify[0].on[1]" is not an event type'],
    ['an empty on', { notify: [{ url: 'http://127.0.0.1/x', format: 'json', on: [] }] }, '"notify[0].on" must be a non-empty list'],
    ['an unknown key in a target', { notify: [{ url: 'http://127.0.0.1/x', format: 'json', events: [] }] }, '"notify[0].events" is not a key'],
    ['a pushgateway that is not a URL', { metrics: { pushgateway: 'pushgateway:9091' } }, '"metrics.pushgateway" must be an http:// or https:// URL'],
    ['a textfile not ending in .prom', { metrics: { textfile: 'fleet.txt' } }, '"metrics.textfile" must end in .prom'],
    ['a job with a slash', { metrics: { job: 'a/b' } }, '"metrics.job" must be a job name'],
    ['an unknown metrics key', { metrics: { gateway: 'http://x' } }, 'unknown key "metrics.gateway"'],
    ['a bad cooldown', { rollout: { cooldown: 'an hour' } }, '"rollout.cooldown" must be a duration'],
  ])('%s', (_, content, message) => {
    expect(refused(content)).toContain(message)
  })

  test('a URL with credentials or a token in its path is never printed', () => {
    const messages = [
      refused({ notify: [{ url: 'https://alice:s3cret@hooks.example/services/T0/B0/TOKEN', format: 'teams' }] }),
      refused({ notify: [{ url: 'gopher://bob:pw@h/TOKEN2', format: 'json' }], metrics: { pushgateway: 'ftp://carol:pw3@gw/TOKEN3' } }),
      refused({ notify: ['https://hooks.example/services/T0/B0/TOKEN'] }),
      refused({ notify: { url: 'https://hooks.example/services/T0/B0/TOKEN' } }),
    ].join('\n')
    expect(messages).toContain('"notify[0].format"')
    expect(messages).toContain('"notify[0].url" must be an http:// or https:// URL (not gopher://), got "gopher://h/…"')
    expect(messages).toContain('"metrics.pushgateway"')
    expect(refused({ notify: ['https://hooks.example/services/T0/B0/TOKEN'] })).toContain('"notify[0]" must be an object like')
    expect(refused({ notify: { url: 'https://hooks.example/services/T0/B0/TOKEN' } })).toContain('"notify" must be a JSON array like')
    expect(messages).not.toMatch(/s3cret|alice|bob|carol|pw|TOKEN/)
  })

  test('FLEET_NOTIFY that is not JSON names the variable', () => {
    expect(refused({}, { FLEET_NOTIFY: 'http://127.0.0.1/x' })).toContain('$FLEET_NOTIFY: "notify" must be a JSON array here')
  })
})
