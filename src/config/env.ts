/** The environment as a layer of entries: FLEET_<SECTION>_<KEY> and DATABASE_URL; a misspelt FLEET_* variable is an error. */
import { ENV_NAMES, FIELDS } from './schema.js'
import type { Entry } from './sources.js'
import { suggest } from './suggest.js'

/** `FLEET_<SECTION>_<KEY>` for every key, then `DATABASE_URL`; empty variables count as unset. */
export function environment(env: NodeJS.ProcessEnv, errors: string[]): Entry[] {
  const entries: Entry[] = []
  for (const f of FIELDS) {
    const name = f.dotted === 'database.url' && !env[f.env] ? 'DATABASE_URL' : f.env
    const value = env[name]
    if (value) entries.push({ where: `$${name}`, dotted: f.dotted, value, text: true })
  }
  // A misspelt variable is refused like a misspelt file key, so it never silently falls back to a default.
  for (const name of Object.keys(env).sort()) {
    if (!name.startsWith('FLEET_') || ENV_NAMES.includes(name) || !env[name]) continue
    // FLEET_TEST_* belong to fleet's own test suite (where the tests run, not what fleet reads): not settings.
    if (name.startsWith('FLEET_TEST_')) continue
    const guess = suggest(name, ENV_NAMES)
    errors.push(
      `$${name}: unknown variable (${guess ? `did you mean ${guess}?` : 'fleet reads FLEET_CONFIG and FLEET_<SECTION>_<KEY> for each config key, e.g. FLEET_ROLLOUT_STAGE_DELAY'})`,
    )
  }
  return entries
}
