/**
 * Parsers of the `notify` list and the `metrics.*` keys (design "Notifications and metrics"). Each
 * throws through `fail` (parsers.ts's `"key" problem, got value`), naming the exact item:
 * `notify[1].on[0]`. URLs are shown without credentials or path (a webhook's path is its secret).
 */

import { EVENT_TYPES, type EventType } from '../notify/event-types.js'
import type { NotifyTarget } from '../notify/notify.js'
import { checkHttpUrl, displayUrl } from '../notify/url.js'

type Fail = (key: string, problem: string, value: unknown) => never
type Parse = (value: unknown, key: string, ctx: { readonly text: boolean; readonly cwd: string | null }) => unknown

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value)

const JOB = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$/

export function notifyParsers(fail: Fail, localPath: Parse) {
  /** An http(s) URL; the value shown in an error is masked like any URL fleet prints. */
  const url = (value: unknown, key: string): string => {
    if (typeof value !== 'string') return fail(key, 'must be an http:// or https:// URL', value)
    const problem = checkHttpUrl(value)
    return problem ? fail(key, problem, displayUrl(value)) : value
  }

  const on = (value: unknown, key: string): EventType[] | null => {
    if (value === undefined || value === null) return null
    if (!Array.isArray(value) || value.length === 0)
      return fail(key, 'must be a non-empty list of event types (leave "on" out for the rollout-level events and failed rollbacks)', value)
    return value.map((type, i) =>
      (EVENT_TYPES as readonly unknown[]).includes(type) ? (type as EventType) : fail(`${key}[${i}]`, `is not an event type (known: ${EVENT_TYPES.join(', ')})`, type),
    )
  }

  /** The `notify` list: in the file a JSON array; from $FLEET_NOTIFY or a flag, that array as JSON text. */
  const targets: Parse = (raw, key, ctx) => {
    let value = raw
    if (ctx.text && typeof raw === 'string') {
      try {
        value = JSON.parse(raw)
      } catch {
        return fail(key, 'must be a JSON array here (an environment variable or flag)', '…')
      }
    }
    // What was given is described, not shown: it may hold a webhook URL, whose path is a secret.
    const kind = (v: unknown): string => (v === null ? 'null' : Array.isArray(v) ? 'a list' : typeof v === 'object' ? 'an object' : `a ${typeof v}`)
    if (!Array.isArray(value)) return fail(key, 'must be a JSON array like [{ "url": "https://…", "format": "slack" }]', kind(value))
    return value.map((item, i): NotifyTarget => {
      const at = `${key}[${i}]`
      if (!isObject(item)) return fail(at, 'must be an object like { "url": "https://…", "format": "json", "on": ["rollout-finished"] }', kind(item))
      for (const k of Object.keys(item)) if (!['url', 'format', 'on'].includes(k)) fail(`${at}.${k}`, 'is not a key (allowed: url, format, on)', kind(item[k]))
      const format = item.format
      if (format !== 'json' && format !== 'slack') fail(`${at}.format`, 'must be "json" or "slack"', format)
      return { url: url(item.url, `${at}.url`), format: format as 'json' | 'slack', on: on(item.on, `${at}.on`) }
    })
  }

  const pushgateway: Parse = (value, key) => url(value, key)

  /** node_exporter's textfile collector reads `*.prom` files. A directory that is missing is the publisher's warning, never a command's failure. */
  const textfile: Parse = (value, key, ctx) => {
    const path = localPath(value, key, ctx) as string
    return path.endsWith('.prom') ? path : fail(key, 'must end in .prom (the textfile collector reads only *.prom files)', value)
  }

  const job: Parse = (value, key) =>
    typeof value === 'string' && JOB.test(value) ? value : fail(key, 'must be a job name of 1 to 64 letters, digits, "_", ".", ":" or "-"', value)

  return { targets, pushgateway, textfile, job }
}
