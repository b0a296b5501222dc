/**
 * What the parsers of structured keys (`gates.*`, `rollout.rings`, `rollout.windows`) share: JSON
 * from a variable or flag, lists, objects with a fixed set of keys. Each throws through `fail`,
 * naming the exact item.
 */
type Fail = (key: string, problem: string, value: unknown) => never

export const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value)

export function itemParsers(fail: Fail) {
  return {
    /** Environment variables and flags are text: an object or a list comes as JSON there. */
    json: (value: unknown, key: string, ctx: { readonly text: boolean }): unknown => {
      if (!ctx.text || typeof value !== 'string') return value
      try {
        return JSON.parse(value)
      } catch {
        return fail(key, 'must be JSON here (an environment variable or flag)', value)
      }
    },
    onlyKeys: (item: Record<string, unknown>, key: string, allowed: readonly string[]): void => {
      for (const k of Object.keys(item)) if (!allowed.includes(k)) fail(`${key}.${k}`, `is not a key (allowed: ${allowed.join(', ')})`, item[k])
    },
    list: (value: unknown, key: string): unknown[] => (Array.isArray(value) ? value : fail(key, 'must be a JSON array', value)),
  }
}
