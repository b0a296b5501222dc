import { mkdtemp, rm } from 'node:fs/promises'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { homedir, tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, test } from 'vitest'
import { ExitCode, UsageError } from '../src/errors.js'
import { formatDuration, parseDuration } from '../src/duration.js'
import {
  CONFIG_FILE_DEFAULTS,
  DEFAULT_CONFIG,
  type LoadConfigOptions,
  loadConfig,
} from '../src/config/load.js'
import { maskSecrets, redactUrl } from '../src/redact.js'
import type { FleetConfig } from '../src/config/types.js'
import { checkRef } from '../src/remote/validate.js'

let dir: string
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fleet-config-'))
})
afterEach(async () => {
  await rm(dir, { recursive: true, force: true })
})

/** Writes ./rollout.config.json (or `name`) in the temp dir and returns its path. */
function writeConfig(content: unknown, name = 'rollout.config.json'): string {
  const path = join(dir, name)
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content, null, 2))
  return path
}
const load = (options: LoadConfigOptions = {}) => loadConfig({ cwd: dir, env: {}, ...options })

/** The message of the UsageError that `fn` throws. */
function usageError(fn: () => unknown): string {
  try {
    fn()
  } catch (error) {
    expect(error).toBeInstanceOf(UsageError)
    expect((error as UsageError).exitCode).toBe(ExitCode.usage)
    return (error as Error).message
  }
  throw new Error('expected a UsageError')
}
const fileError = (content: unknown): string => {
  writeConfig(content)
  return usageError(() => load())
}

const home = homedir()
const expectedDefaults = (dbDir: string): FleetConfig => ({
  database: { url: null, dir: dbDir },
  inventory: { query: null, timeoutMs: 10_000 },
  ssh: {
    user: 'rachel',
    port: 22,
    privateKey: join(home, '.ssh/id_ed25519'),
    agent: null,
    knownHosts: join(home, '.ssh/known_hosts'),
    hostKeyPolicy: 'accept-new',
    connectTimeoutMs: 60_000,
  },
  app: { dir: '/home/rachel/rachel', remote: 'origin', branch: 'main', service: 'rachel8', layout: 'in-place', keepReleases: 3, shared: [] },
  steps: {
    install: 'bun install',
    build: null,
    restart: 'sudo systemctl restart {service}',
    verify: 'systemctl is-active --quiet {service}',
    health: null,
    diagnose: 'systemctl status {service}',
  },
  verify: { delayMs: 5_000, retries: 3, intervalMs: 2_000 },
  timeouts: { commandMs: 120_000 },
  rollout: { stages: [10, 50, 100], failureThreshold: 0.3, concurrency: 5, stageDelayMs: 10_000, cooldownMs: 0, rings: [], windows: [], failureBudget: null },
  gates: {
    bakeMs: 0,
    intervalMs: 30_000,
    prometheus: { url: null, timeoutMs: 10_000 },
    metrics: [],
    checks: [],
    failureLimit: 0,
    inconclusiveLimit: 3,
    errorTimeoutMs: 600_000,
    onFail: 'revert',
  },
  notify: [],
  metrics: { pushgateway: null, textfile: null, job: 'fleet' },
  otel: { endpoint: null },
})

describe('defaults', () => {
  test('with no file, env or flags every key has the design default', () => {
    expect(load()).toEqual({ config: expectedDefaults(join(dir, '.fleet')), source: null })
  })

  test('DEFAULT_CONFIG is the same, with database.dir left relative, and frozen', () => {
    expect(DEFAULT_CONFIG).toEqual(expectedDefaults('.fleet'))
    expect(Object.isFrozen(DEFAULT_CONFIG.rollout.stages)).toBe(true)
  })

  test('the example file documents every key with its default and loads to the defaults', () => {
    const example = join(import.meta.dirname, '..', 'rollout.config.example.json')
    expect(JSON.parse(readFileSync(example, 'utf8'))).toEqual(CONFIG_FILE_DEFAULTS)
    // Only database.dir differs: a relative path in a file lives next to that file.
    const { config } = load()
    expect(load({ configPath: example })).toEqual({
      config: { ...config, database: { ...config.database, dir: join(import.meta.dirname, '..', '.fleet') } },
      source: example,
    })
  })
})

describe('config file', () => {
  test('./rollout.config.json in cwd is used when present', () => {
    const path = writeConfig({
      database: { dir: 'state' },
      inventory: { query: '  -- active hosts\n/* of the SaaS */ select name, address from vps' },
      ssh: { user: 'deploy', port: 2222, privateKey: null, agent: '~/agent.sock', knownHosts: 'keys/known', connectTimeout: 5 },
      app: { dir: '/srv/app', remote: 'upstream', branch: 'release/2.0', service: 'app@1.service' },
      steps: { install: 'npm ci', health: 'curl -fsS http://127.0.0.1:${PORT}/health # {branch} {sha}' },
      verify: { delay: '1.5s', retries: 0, interval: '250ms' },
      timeouts: { command: '2m' },
      rollout: { stages: [5, 25, 100], failureThreshold: 0, concurrency: 1000, stageDelay: 0 },
    })
    const { config, source } = load()
    expect(source).toBe(path)
    expect(config.database.dir).toBe(join(dir, 'state'))
    expect(config.inventory.query).toMatch(/select name/)
    expect(config.ssh).toEqual({
      user: 'deploy',
      port: 2222,
      privateKey: null,
      agent: join(home, 'agent.sock'),
      knownHosts: join(dir, 'keys/known'),
      hostKeyPolicy: 'accept-new',
      connectTimeoutMs: 5_000,
    })
    expect(config.app).toEqual({ dir: '/srv/app', remote: 'upstream', branch: 'release/2.0', service: 'app@1.service', layout: 'in-place', keepReleases: 3, shared: [] })
    expect(config.steps.install).toBe('npm ci')
    expect(config.steps.restart).toBe('sudo systemctl restart {service}')
    expect(config.verify).toEqual({ delayMs: 1_500, retries: 0, intervalMs: 250 })
    expect(config.timeouts.commandMs).toBe(120_000)
    expect(config.rollout).toEqual({ stages: [5, 25, 100], failureThreshold: 0, concurrency: 1000, stageDelayMs: 0, cooldownMs: 0, rings: [], windows: [], failureBudget: null })
  })

  test('--config (relative to cwd) wins over ./rollout.config.json and $FLEET_CONFIG', () => {
    writeConfig({ rollout: { concurrency: 2 } })
    writeConfig({ rollout: { concurrency: 3 } }, 'env.json')
    mkdirSync(join(dir, 'conf'))
    const explicit = writeConfig({ rollout: { concurrency: 4 } }, 'conf/staging.json')
    const fromFlag = load({ configPath: 'conf/staging.json', env: { FLEET_CONFIG: 'env.json' } })
    expect(fromFlag).toMatchObject({ source: explicit, config: { rollout: { concurrency: 4 } } })
    expect(load({ env: { FLEET_CONFIG: 'env.json' } }).config.rollout.concurrency).toBe(3)
  })

  test('a missing explicit file is an error naming the path; a missing default file is not', () => {
    expect(usageError(() => load({ configPath: 'nope.json' }))).toBe(`config file not found: ${join(dir, 'nope.json')}`)
    expect(usageError(() => load({ env: { FLEET_CONFIG: '/no/such.json' } }))).toBe(
      'config file not found: /no/such.json (from $FLEET_CONFIG)',
    )
    expect(load().source).toBeNull()
  })
})

describe('precedence: flags > environment > file > defaults', () => {
  test('environment beats the file, coerced to each key type', () => {
    writeConfig({ rollout: { concurrency: 3, stageDelay: '1m', stages: [50, 100] }, ssh: { port: 2200 } })
    const { config } = load({
      env: {
        FLEET_ROLLOUT_CONCURRENCY: '8',
        FLEET_ROLLOUT_STAGE_DELAY: '0s',
        FLEET_ROLLOUT_STAGES: '10,50,100',
        FLEET_ROLLOUT_FAILURE_THRESHOLD: '0.5',
        FLEET_SSH_PRIVATE_KEY: 'null',
        FLEET_SSH_HOST_KEY_POLICY: 'strict',
        FLEET_VERIFY_DELAY: '2',
        FLEET_APP_BRANCH: 'stable',
        FLEET_DATABASE_DIR: '~/fleet-state',
        FLEET_SSH_PORT: '',
        FLEET_UNKNOWN_THING: '', // empty: unset, so not refused
        FLEET_TEST_PG_URL: 'postgres://test-suite-only/db', // the test suite's own, never a setting
      },
    })
    expect(config.rollout).toEqual({ stages: [10, 50, 100], failureThreshold: 0.5, concurrency: 8, stageDelayMs: 0, cooldownMs: 0, rings: [], windows: [], failureBudget: null })
    expect(config.ssh).toMatchObject({ privateKey: null, hostKeyPolicy: 'strict', port: 2200 })
    expect(config.verify.delayMs).toBe(2_000)
    expect(config.app.branch).toBe('stable')
    expect(config.database.dir).toBe(join(home, 'fleet-state'))
  })

  test('flags beat the environment; undefined flags are ignored', () => {
    writeConfig({ rollout: { concurrency: 3 } })
    const { config } = load({
      env: { FLEET_ROLLOUT_CONCURRENCY: '8', FLEET_ROLLOUT_STAGE_DELAY: '30s' },
      overrides: { rollout: { concurrency: '9', stages: '25,100', stageDelay: undefined, failureThreshold: 0.1 } },
    })
    expect(config.rollout).toEqual({ stages: [25, 100], failureThreshold: 0.1, concurrency: 9, stageDelayMs: 30_000, cooldownMs: 0, rings: [], windows: [], failureBudget: null })
  })

  test('database.url: --database-url > FLEET_DATABASE_URL > DATABASE_URL > file', () => {
    writeConfig({ database: { url: 'postgres://file/db' } })
    const url = (env: NodeJS.ProcessEnv, overrides = {}) => load({ env, overrides }).config.database.url
    expect(url({})).toBe('postgres://file/db')
    expect(url({ DATABASE_URL: 'postgresql://generic/db' })).toBe('postgresql://generic/db')
    expect(url({ DATABASE_URL: 'postgres://generic/db', FLEET_DATABASE_URL: 'postgres://fleet/db' })).toBe('postgres://fleet/db')
    expect(url({ FLEET_DATABASE_URL: 'postgres://fleet/db' }, { database: { url: 'postgres://flag/db' } })).toBe('postgres://flag/db')
    expect(url({ DATABASE_URL: 'postgres://generic/db', FLEET_DATABASE_URL: 'null' })).toBeNull()
  })
})

describe('durations', () => {
  test.each([
    ['1500ms', 1_500],
    ['10s', 10_000],
    ['5m', 300_000],
    ['1h', 3_600_000],
    ['1.5s', 1_500],
    ['.5s', 500],
    ['2m05s', 125_000],
    ['1h30m', 5_400_000],
    [' 10s ', 10_000],
    ['0', 0],
    ['2.5', 2_500],
    [10, 10_000],
    [0.25, 250],
  ] as const)('%j → %i ms', (input, ms) => {
    expect(parseDuration(input, 'verify.delay')).toBe(ms)
  })

  test.each(['', 'soon', '-5s', '10 s', '5d', '1s2m', '1e3', '10S', 'ms', 'Infinity', -1, Number.NaN, Number.POSITIVE_INFINITY])(
    '%j is rejected naming the key',
    (input) => {
      expect(usageError(() => parseDuration(input, 'verify.delay'))).toBe(
        `"verify.delay" must be a duration like 1500ms, 10s, 5m or 1h (a bare number means seconds), got ${JSON.stringify(input)}`,
      )
    },
  )

  test('longer than a Node timer can wait is rejected', () => {
    expect(usageError(() => parseDuration('1000h', 'rollout.stageDelay'))).toBe(
      '"rollout.stageDelay" must be at most 596h (about 24 days), got "1000h"',
    )
  })

  test.each([
    [850, '850ms'],
    [0, '0ms'],
    [1_000, '1s'],
    [1_500, '1.5s'],
    [10_000, '10s'],
    [59_990, '1m'],
    [125_000, '2m05s'],
    [300_000, '5m'],
    [3_600_000, '1h'],
    [5_400_000, '1h30m'],
    [3_605_000, '1h00m05s'],
  ])('formatDuration(%i) = %s, and parses back', (ms, text) => {
    expect(formatDuration(ms)).toBe(text)
    expect(formatDuration(parseDuration(text, 'x'))).toBe(text)
  })
})

describe('validation errors name the source and the key', () => {
  test('stages not ending at 100', () => {
    expect(fileError({ rollout: { stages: [10, 50] } })).toBe(
      'rollout.config.json: "rollout.stages" must end at 100 (the last stage is the whole fleet), got [10,50]',
    )
  })

  test.each([
    [[], 'must be a non-empty list of cumulative percentages like [10, 50, 100]'],
    [[10, 10, 100], 'must be strictly increasing'],
    [[50, 10, 100], 'must be strictly increasing'],
    [[0, 100], 'must contain only whole percentages from 1 to 100'],
    [[10.5, 100], 'must contain only whole percentages from 1 to 100'],
    [[10, 150], 'must contain only whole percentages from 1 to 100'],
    ['10,fifty,100', 'must be a JSON array of cumulative percentages like [10, 50, 100]'],
  ])('stages %j: %s', (stages, problem) => {
    expect(fileError({ rollout: { stages } })).toBe(`rollout.config.json: "rollout.stages" ${problem}, got ${JSON.stringify(stages)}`)
  })

  test('failure threshold 1.5', () => {
    expect(fileError({ rollout: { failureThreshold: 1.5 } })).toBe(
      'rollout.config.json: "rollout.failureThreshold" must be a number from 0 to 1 (0.3 means 30%), got 1.5',
    )
  })

  test('unknown keys, with a suggestion within edit distance 2', () => {
    expect(fileError({ rollout: { concurency: 5 } })).toBe(
      'rollout.config.json: unknown key "rollout.concurency" (did you mean "rollout.concurrency"?)',
    )
    expect(fileError({ rolout: {} })).toBe('rollout.config.json: unknown key "rolout" (did you mean "rollout"?)')
    expect(fileError({ rollout: { retries: 2 } })).toBe(
      'rollout.config.json: unknown key "rollout.retries" (did you mean "verify.retries"?)',
    )
    expect(fileError({ ssh: { password: 'x' } })).toBe('rollout.config.json: unknown key "ssh.password"')
    expect(fileError({ ssh: 'rachel' })).toBe('rollout.config.json: "ssh" must be an object, got "rachel"')
  })

  test('wrong types', () => {
    expect(fileError({ rollout: { concurrency: 'five' } })).toBe(
      'rollout.config.json: "rollout.concurrency" must be an integer from 1 to 1000, got "five"',
    )
    // In the file a number must be a JSON number; only env and flags are text.
    expect(fileError({ rollout: { concurrency: '5' } })).toBe(
      'rollout.config.json: "rollout.concurrency" must be an integer from 1 to 1000, got "5"',
    )
    expect(fileError({ verify: { retries: 101 } })).toBe(
      'rollout.config.json: "verify.retries" must be an integer from 0 to 100, got 101',
    )
    expect(fileError({ ssh: { port: 70000 } })).toBe(
      'rollout.config.json: "ssh.port" must be an integer from 1 to 65535, got 70000',
    )
    expect(fileError({ ssh: { hostKeyPolicy: 'yes' } })).toBe(
      'rollout.config.json: "ssh.hostKeyPolicy" must be "strict" or "accept-new", got "yes"',
    )
    expect(fileError({ ssh: { connectTimeout: '0s' } })).toBe(
      'rollout.config.json: "ssh.connectTimeout" must be greater than 0, got "0s"',
    )
    expect(fileError({ timeouts: { command: true } })).toBe(
      'rollout.config.json: "timeouts.command" must be a duration like 1500ms, 10s, 5m or 1h (a bare number means seconds), got true',
    )
    expect(fileError({ steps: { install: ' ' } })).toBe('rollout.config.json: "steps.install" must be a non-empty string, got " "')
    expect(fileError({ app: { dir: 'rachel' } })).toBe('rollout.config.json: "app.dir" must be an absolute path, got "rachel"')
    expect(fileError([1])).toBe('rollout.config.json: must be a JSON object like { "rollout": { ... } }, got [1]')
  })

  test('unknown placeholder in a step; the shell\'s ${VAR} is left alone', () => {
    expect(fileError({ steps: { restart: 'sudo systemctl restart {servce}' } })).toBe(
      'rollout.config.json: "steps.restart" has unknown placeholder {servce} (did you mean {service}?), got "sudo systemctl restart {servce}"',
    )
    expect(fileError({ steps: { health: 'curl -f localhost/{port}' } })).toBe(
      'rollout.config.json: "steps.health" has unknown placeholder {port} (known: {service}, {appDir}, {sha}, {remote}, {branch}), got "curl -f localhost/{port}"',
    )
    writeConfig({ steps: { health: 'test -d ${HOME} && echo {appDir} {remote}' } })
    expect(load().config.steps.health).toBe('test -d ${HOME} && echo {appDir} {remote}')
  })

  test('a branch that is not a git ref', () => {
    const branch = 'main;rm -rf ~'
    expect(fileError({ app: { branch } })).toBe(`rollout.config.json: "app.branch" ${checkRef(branch)}, got "main;rm -rf ~"`)
  })

  test('inventory.query must be a SELECT or WITH query', () => {
    writeConfig({ inventory: { query: 'WITH h AS (SELECT 1) SELECT * FROM h' } })
    expect(load().config.inventory.query).toMatch(/^WITH/)
    expect(fileError({ inventory: { query: '/* select */ DELETE FROM hosts' } })).toBe(
      'rollout.config.json: "inventory.query" must be a read-only query starting with SELECT or WITH, got "/* select */ DELETE FROM hosts"',
    )
    expect(fileError({ inventory: { query: 'selection' } })).toMatch(/must be a read-only query/)
  })

  test('invalid JSON: the file and the parser position (line:column from jsonc-parser)', () => {
    expect(fileError('{\n  "rollout": {\n    "concurrency": 5,\n  }\n}')).toBe(
      'rollout.config.json: invalid JSON at line 4, column 3: expected a key in double quotes, found "}" (trailing comma?)',
    )
    expect(fileError('{\n  "ssh": { "port": 22 }\n  "app": {}\n}')).toBe(
      'rollout.config.json: invalid JSON at line 3, column 3: expected ",", found "\\""',
    )
    expect(fileError('// settings\n{}')).toBe('rollout.config.json: invalid JSON at line 1, column 1: unexpected "/" (JSON has no comments)')
    expect(fileError('{"rollout": {')).toBe('rollout.config.json: invalid JSON: unexpected end of file')
    expect(fileError('{ "rollout": { "stages": [10, 50, 100,] } }')).toBe(
      'rollout.config.json: invalid JSON at line 1, column 39: expected a value, found "]" (trailing comma?)',
    )
    // Past multi-byte text and deep in the file; only the offending character is quoted, never the line (it may hold a password).
    expect(fileError('{\n  "app": { "service": "dienst-für-kunden" },\n  "database": { "url": postgres://u:secret@h/db }\n}')).toBe(
      'rollout.config.json: invalid JSON at line 3, column 24: unexpected "p"',
    )
    expect(fileError('{ "steps": { "install": "npm ci\n" } }')).toMatch(/^rollout\.config\.json: invalid JSON at line 1, column 25: unterminated string/)
  })

  test('a UTF-8 byte order mark is fine', () => {
    writeConfig('\uFEFF{ "rollout": { "concurrency": 2 } }')
    expect(load().config.rollout.concurrency).toBe(2)
  })

  test('errors from the environment name the variable, from flags the flag', () => {
    expect(usageError(() => load({ env: { FLEET_ROLLOUT_CONCURRENCY: 'five' } }))).toBe(
      '$FLEET_ROLLOUT_CONCURRENCY: "rollout.concurrency" must be an integer from 1 to 1000, got "five"',
    )
    expect(usageError(() => load({ env: { FLEET_ROLLOUT_STAGES: '10,50' } }))).toBe(
      '$FLEET_ROLLOUT_STAGES: "rollout.stages" must end at 100 (the last stage is the whole fleet), got "10,50"',
    )
    expect(usageError(() => load({ overrides: { rollout: { failureThreshold: '30' } } }))).toBe(
      '--failure-threshold: "rollout.failureThreshold" must be a number from 0 to 1 (0.3 means 30%), got "30"',
    )
    expect(usageError(() => load({ overrides: { rollout: { stageDelay: 'soon' } } }))).toBe(
      '--stage-delay: "rollout.stageDelay" must be a duration like 1500ms, 10s, 5m or 1h (a bare number means seconds), got "soon"',
    )
    expect(usageError(() => load({ overrides: { database: { url: 'mysql://h/db' } } }))).toBe(
      '--database-url: "database.url" must be a postgres:// or postgresql:// URL (a key/value DSN is not taken), got "mysql://h/db"',
    )
  })

  test('every error is reported at once, file first, then environment, then flags', () => {
    writeConfig({ rollout: { concurrency: 0 }, app: { sevice: 'x' } })
    expect(usageError(() => load({ env: { FLEET_SSH_PORT: 'ssh' }, overrides: { rollout: { stages: '' } } }))).toBe(
      [
        'rollout.config.json: unknown key "app.sevice" (did you mean "app.service"?)',
        'rollout.config.json: "rollout.concurrency" must be an integer from 1 to 1000, got 0',
        '$FLEET_SSH_PORT: "ssh.port" must be an integer from 1 to 65535, got "ssh"',
        '--stages: "rollout.stages" must be a non-empty list of cumulative percentages like [10, 50, 100], got ""',
      ].join('\n'),
    )
  })
})

describe('one rule per source: the file is typed JSON, the environment and flags are text', () => {
  test('a JSON string where a number or a list is expected is refused, for stages as for concurrency', () => {
    expect(fileError({ rollout: { stages: '10,50,100' } })).toBe(
      'rollout.config.json: "rollout.stages" must be a JSON array of cumulative percentages like [10, 50, 100], got "10,50,100"',
    )
    expect(fileError({ rollout: { concurrency: '5' } })).toBe(
      'rollout.config.json: "rollout.concurrency" must be an integer from 1 to 1000, got "5"',
    )
    // The same text from the environment or a flag is parsed.
    writeConfig({})
    expect(load({ env: { FLEET_ROLLOUT_STAGES: '10,50,100', FLEET_ROLLOUT_CONCURRENCY: '5' } }).config.rollout).toMatchObject({ stages: [10, 50, 100], concurrency: 5 })
    expect(load({ overrides: { rollout: { stages: '20,100' } } }).config.rollout.stages).toEqual([20, 100])
  })

  test('a FLEET_* variable that is not a setting is refused, with the one it was probably meant to be', () => {
    expect(usageError(() => load({ env: { FLEET_ROLLOUT_STAGEDELAY: '1s' } }))).toBe(
      '$FLEET_ROLLOUT_STAGEDELAY: unknown variable (did you mean FLEET_ROLLOUT_STAGE_DELAY?)',
    )
    expect(usageError(() => load({ env: { FLEET_CONFG: 'x.json' } }))).toBe('$FLEET_CONFG: unknown variable (did you mean FLEET_CONFIG?)')
    expect(usageError(() => load({ env: { FLEET_COLOR: 'never' } }))).toMatch(
      /^\$FLEET_COLOR: unknown variable \(fleet reads FLEET_CONFIG and FLEET_<SECTION>_<KEY> for each config key/,
    )
    // Reported with every other error at once; like an unknown file key, before the values.
    expect(usageError(() => load({ env: { FLEET_SSH_PORT: 'ssh', FLEET_ROLLOUT_CONCURENCY: '3' } }))).toBe(
      [
        '$FLEET_ROLLOUT_CONCURENCY: unknown variable (did you mean FLEET_ROLLOUT_CONCURRENCY?)',
        '$FLEET_SSH_PORT: "ssh.port" must be an integer from 1 to 65535, got "ssh"',
      ].join('\n'),
    )
    // What fleet does read, the test suite's own FLEET_TEST_* and non-FLEET variables pass.
    const env = { FLEET_DATABASE_URL: 'postgres://h/db', FLEET_TEST_PG_BIN: '/usr/lib/postgresql/16/bin', FLEETING: 'x', DATABASE_URL: 'postgres://x/y' }
    expect(load({ env }).config.database.url).toBe('postgres://h/db')
  })
})

describe('database.dir: next to the config file that names it, so cron and every shell share one store', () => {
  test('a relative dir in a config file resolves against the file’s directory, not the working directory', () => {
    mkdirSync(join(dir, 'x'))
    const file = writeConfig({ database: { dir: '.fleet' }, ssh: { knownHosts: 'known_hosts' } }, 'x/rollout.config.json')
    mkdirSync(join(dir, 'elsewhere'))
    const { config } = loadConfig({ configPath: file, cwd: join(dir, 'elsewhere'), env: {} })
    expect(config.database.dir).toBe(join(dir, 'x', '.fleet'))
    expect(config.ssh.knownHosts).toBe(join(dir, 'x', 'known_hosts'))
    // Named through $FLEET_CONFIG, relative to cwd: the same store.
    expect(loadConfig({ cwd: dir, env: { FLEET_CONFIG: 'x/rollout.config.json' } }).config.database.dir).toBe(join(dir, 'x', '.fleet'))
  })

  test('the default dir lives next to the config file too; without a file, in the working directory', () => {
    mkdirSync(join(dir, 'etc'))
    const file = writeConfig({ rollout: { concurrency: 2 } }, 'etc/fleet.json')
    expect(loadConfig({ configPath: file, cwd: '/', env: {} }).config.database.dir).toBe(join(dir, 'etc', '.fleet'))
    expect(load().config.database.dir).toBe(join(dir, '.fleet'))
  })

  test('a relative dir from the environment or a flag is the operator’s cwd; absolute and ~ paths stay as they are', () => {
    mkdirSync(join(dir, 'x'))
    const file = writeConfig({ database: { dir: '.fleet' } }, 'x/rollout.config.json')
    expect(load({ configPath: file, env: { FLEET_DATABASE_DIR: 'state' } }).config.database.dir).toBe(join(dir, 'state'))
    expect(load({ configPath: file, overrides: { database: { dir: '/var/lib/fleet' } } }).config.database.dir).toBe('/var/lib/fleet')
    writeConfig({ database: { dir: '~/fleet-state' } }, 'x/rollout.config.json')
    expect(load({ configPath: file }).config.database.dir).toBe(join(home, 'fleet-state'))
  })
})

describe('the result', () => {
  test('is deep-frozen', () => {
    const { config } = load({ overrides: { rollout: { stages: '20,100' } } })
    expect(Object.isFrozen(config)).toBe(true)
    expect(Object.isFrozen(config.ssh)).toBe(true)
    expect(Object.isFrozen(config.rollout.stages)).toBe(true)
    expect(() => {
      ;(config.rollout as { concurrency: number }).concurrency = 50
    }).toThrow(TypeError)
    expect(() => (config.rollout.stages as number[]).push(7)).toThrow(TypeError)
  })
})

describe('database passwords never reach a message', () => {
  test('redactUrl masks the password and a password= parameter', () => {
    expect(redactUrl('postgres://user:s3cr3t@db.example.com:5432/fleet')).toBe('postgres://user:***@db.example.com:5432/fleet')
    expect(redactUrl('postgresql://user:p@ss:w/rd@host/db')).toBe('postgresql://user:***@host/db')
    expect(redactUrl('postgres://user@host:5432/db')).toBe('postgres://user@host:5432/db')
    expect(redactUrl('postgres://host/db?user=u&password=s3cr3t&sslmode=require')).toBe(
      'postgres://host/db?user=u&password=***&sslmode=require',
    )
    expect(maskSecrets('got "postgres://u:s3cr3t@h/db" and mysql://v:hunter2@x')).toBe('got "postgres://u:***@h/db" and mysql://v:***@x')
  })

  test('bad database URLs are shown redacted, wherever they come from', () => {
    expect(usageError(() => load({ env: { DATABASE_URL: 'mysql://admin:s3cr3t@db/app' } }))).toBe(
      '$DATABASE_URL: "database.url" must be a postgres:// or postgresql:// URL (a key/value DSN is not taken), got "mysql://admin:***@db/app"',
    )
    expect(fileError({ database: { url: 'admin:s3cr3t@db/app' } })).toBe(
      'rollout.config.json: "database.url" must be a postgres:// or postgresql:// URL (a key/value DSN is not taken), got "admin:***@db/app"',
    )
    const misplaced = fileError({ inventory: { query: 'postgres://admin:s3cr3t@db/app' } })
    const broken = fileError('{ "database": { "url": "postgres://admin:s3cr3t@db/app" x } }')
    for (const message of [misplaced, broken]) expect(message).not.toContain('s3cr3t')
  })
})
