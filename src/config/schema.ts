/** Every key of the config file, its default and its parser, and the names derived from it (dotted key, property, variable). */
import {
  checkAbsolutePath,
  checkSharedPath,
  checkRef,
  checkRemoteName,
  checkServiceName,
  checkUser,
} from '../remote/validate.js'
import { gatesParsers } from './gates.js'
import { notifyParsers } from './notify.js'
import { shapeParsers } from './shape.js'
import {
  checkQuery,
  checkTemplate,
  databaseUrl,
  duration,
  expandHome,
  type Field,
  fail,
  fraction,
  integer,
  list,
  localPath,
  nullable,
  oneOf,
  type Parse,
  port,
  stages,
  str,
} from './parsers.js'
import type { FleetConfig } from './types.js'

const field = (value: unknown, parse: Parse): Field => ({ default: value, parse })
const durationField = (value: string, positive = false): Field => ({ default: value, parse: duration(positive), ms: true })
const step = str(checkTemplate)
const gates = gatesParsers(fail)
const notify = notifyParsers(fail, localPath)
const shape = shapeParsers(fail, stages)

/** Every key of the config file: its default (as written in the file) and its parser. */
export const SCHEMA = {
  database: { url: field(null, databaseUrl), dir: field('.fleet', localPath) },
  inventory: { query: field(null, nullable(str(checkQuery))), timeout: durationField('10s', true) },
  ssh: {
    user: field('rachel', str(checkUser)),
    port: field(22, port),
    privateKey: field('~/.ssh/id_ed25519', nullable(localPath)),
    agent: field(null, nullable(str(undefined, expandHome))),
    knownHosts: field('~/.ssh/known_hosts', localPath),
    hostKeyPolicy: field('accept-new', oneOf('strict', 'accept-new')),
    connectTimeout: durationField('60s', true),
  },
  app: {
    dir: field('/home/rachel/rachel', str(checkAbsolutePath)),
    remote: field('origin', str(checkRemoteName)),
    branch: field('main', str(checkRef)),
    service: field('rachel8', str(checkServiceName)),
    layout: field('in-place', oneOf('in-place', 'releases')),
    keepReleases: field(3, integer(2, 100)),
    shared: field([], list(str(checkSharedPath))),
  },
  steps: {
    install: field('bun install', step),
    build: field(null, nullable(step)),
    restart: field('sudo systemctl restart {service}', step),
    verify: field('systemctl is-active --quiet {service}', step),
    health: field(null, nullable(step)),
    diagnose: field('systemctl status {service}', nullable(step)),
  },
  verify: { delay: durationField('5s'), retries: field(3, integer(0, 100)), interval: durationField('2s') },
  timeouts: { command: durationField('120s', true) },
  rollout: {
    stages: field([10, 50, 100], stages),
    failureThreshold: field(0.3, fraction),
    concurrency: field(5, integer(1, 1000)),
    stageDelay: durationField('10s'),
    cooldown: durationField('0s'),
    rings: field([], shape.rings),
    windows: field([], shape.windows),
    failureBudget: field(null, shape.failureBudget),
  },
  gates: {
    bake: durationField('0s'),
    interval: durationField('30s', true),
    prometheus: field({ url: null, timeout: '10s' }, gates.prometheus),
    metrics: field([], gates.metrics),
    checks: field([], gates.checks),
    failureLimit: field(0, integer(0, 1000)),
    inconclusiveLimit: field(3, integer(0, 1000)),
    errorTimeout: durationField('10m'),
    onFail: field('revert', oneOf('revert', 'halt')),
  },
  notify: { list: { ...field([], notify.targets), whole: true } },
  metrics: {
    pushgateway: field(null, nullable(notify.pushgateway)),
    textfile: field(null, nullable(notify.textfile)),
    job: field('fleet', notify.job),
  },
  otel: { endpoint: field(null, nullable(notify.pushgateway)) },
} satisfies Record<keyof FleetConfig, Record<string, Field>>

export const kebab = (name: string): string => name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)
export const FIELDS = Object.entries(SCHEMA).flatMap(([section, keys]) =>
  Object.entries(keys as Record<string, Field>).map(([key, spec]) => ({
    ...spec,
    section,
    key,
    dotted: spec.whole ? section : `${section}.${key}`,
    prop: spec.ms ? `${key}Ms` : key,
    env: spec.whole ? `FLEET_${section.toUpperCase()}` : `FLEET_${section.toUpperCase()}_${kebab(key).replaceAll('-', '_').toUpperCase()}`,
  })),
)
export const BY_KEY = new Map(FIELDS.map((f) => [f.dotted, f]))
/** Every FLEET_* variable fleet reads. */
export const ENV_NAMES = ['FLEET_CONFIG', ...FIELDS.map((f) => f.env)]
