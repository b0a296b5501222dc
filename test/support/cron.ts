/**
 * The set-up the cron tests share (tick.test.ts, requests.test.ts): a 4-host sshd fleet with
 * gates that are local checks whose verdict a test sets through files in the work dir, and the
 * store on the embedded PGlite or a real Postgres database.
 */
import { writeFile } from 'node:fs/promises'
import path from 'node:path'

import { runFleet, type FleetRun } from './cli.js'
import { killSpawned, pgliteDirWithHosts, runCleanups, withPglite, workdir } from './fault-kit.js'
import type { Store } from '../../src/store/store.js'
import { fleetConfigOverrides, openTestStore, registerHosts } from './harness.js'
import { createTestDatabase, type TestDatabase } from './postgres.js'
import { startTestFleet, type TestFleet } from './test-fleet.js'

let fleet: TestFleet | null = null
let database: TestDatabase | null = null
/** For afterEach: stops what setUp started. */
export async function cleanUp(): Promise<void> {
  killSpawned()
  await runCleanups()
  await database?.drop()
  await fleet?.stop()
  fleet = database = null
}

/** The store a test's `fleet` processes use: the embedded one (cron's default) or a real Postgres database. */
export type Db = { readonly dir: string; readonly url: string | null }

export async function withDb<T>(db: Db, fn: (store: Store) => Promise<T>): Promise<T> {
  if (!db.url) return withPglite(db.dir, fn)
  const s = await openTestStore('postgres', db.url)
  try {
    return await fn(s.store)
  } finally {
    await s.close()
  }
}

/**
 * 4 hosts in stages of 1, 1, 2; each stage bakes 2 s with one check; `gates-down` in the work dir
 * makes it error, `gates-held` makes a measurement wait until the file is removed.
 */
export async function setUp(kind: 'pglite' | 'postgres' = 'postgres') {
  fleet = await startTestFleet({ hosts: 4 })
  let db: Db
  if (kind === 'pglite') db = { dir: await pgliteDirWithHosts(fleet), url: null }
  else {
    database = await createTestDatabase()
    if (!database) throw new Error('tick tests need Postgres (127.0.0.1:5432)')
    db = { dir: '', url: database.url }
    await withDb(db, (store) => registerHosts(store, fleet!))
  }
  const dir = db.dir
  const cwd = await workdir({})
  const config = {
    ...fleetConfigOverrides(fleet, { rollout: { stages: [25, 50, 100], stageDelay: '0s' } }),
    gates: {
      bake: '1s',
      interval: '500ms',
      checks: [{ name: 'smoke', command: `while [ -e ${path.join(cwd, 'gates-held')} ]; do sleep 0.05; done; [ ! -e ${path.join(cwd, 'gates-down')} ] || exit 2` }],
      errorTimeout: '1h',
    },
    database: db.url ? { url: db.url } : { dir },
  }
  await writeFile(path.join(cwd, 'rollout.config.json'), JSON.stringify(config, null, 2))
  return { f: fleet, db, cwd }
}

export const tick = (cwd: string, ...args: string[]): Promise<FleetRun> => runFleet(['rollout', 'tick', '--json', ...args], { cwd })
export const lastJson = (run: FleetRun): Record<string, unknown> => JSON.parse(run.stdout.trim().split('\n').at(-1) ?? '{}') as Record<string, unknown>
