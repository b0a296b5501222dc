/**
 * Issue 18 figures, side by side in one run on one sshd fleet: h01 in place, h02 with release
 * directories (each in its own store, so each rollout has one layout). Measured: the time a host's
 * live tree is changed before its restart (from the step that first changes it to the restart's
 * start, from the events), the per-host rollback wall time (`fleet rollback <host>`, in-process)
 * with the origin reachable and with it moved away.
 */
import { rename } from 'node:fs/promises'
import { afterAll, expect, it } from 'vitest'

import { makeExecutor } from '../src/cli/context.js'
import type { FleetConfig } from '../src/config/types.js'
import { systemClock } from '../src/rollout/clock.js'
import { hostSettings } from '../src/rollout/from-config.js'
import { rollbackOneHost } from '../src/rollout/rollback.js'
import { createTestDatabase, type TestDatabase } from '../test/support/postgres.js'
import { openTestStore, registerHosts, rollout, testConfig, type TestStore } from '../test/support/harness.js'
import { startTestFleet, type TestFleet } from '../test/support/test-fleet.js'
import { record } from './support/results.js'

let fleet: TestFleet | null = null
const stores: TestStore[] = []
const databases: TestDatabase[] = []

afterAll(async () => {
  for (const s of stores) await s.close()
  for (const d of databases) await d.drop()
  await fleet?.stop()
})

const ms = (n: number) => `${Math.round(n)} ms`

it('in place vs release directories: live-tree change window, rollback time, rollback with the origin gone', async () => {
  fleet = await startTestFleet({ hosts: 2 })
  const f = fleet
  const cases = [
    { host: 'h01', layout: 'in-place' as const },
    { host: 'h02', layout: 'releases' as const },
  ]
  const rows: Record<string, (string | number)[]> = {}
  const data: Record<string, unknown> = {}
  const setups: { host: string; layout: string; config: FleetConfig; store: TestStore }[] = []
  for (const c of cases) {
    const database = await createTestDatabase()
    if (database) databases.push(database)
    const store = await openTestStore(database ? 'postgres' : 'pglite', database?.url)
    stores.push(store)
    await registerHosts(store.store, f, [c.host])
    const config = testConfig(f, store.databaseConfig, { rollout: { stages: [100] }, app: { layout: c.layout } })
    setups.push({ ...c, config, store })
  }
  const rollback = async (s: (typeof setups)[number], to?: string) => {
    const h = f.host(s.host)
    const started = performance.now()
    const result = await rollbackOneHost(
      { store: s.store.store, executor: makeExecutor(s.config, s.store.store), clock: systemClock },
      { host: { name: h.name, address: h.address, port: h.port, user: h.user, appDir: h.appDir }, ...(to ? { to } : {}), settings: hostSettings(s.config), connectTimeoutMs: 5_000, owner: 'bench' },
    )
    return { ms: performance.now() - started, status: result.outcome.status }
  }
  for (const s of setups) {
    const run = await rollout(s.store.store, s.config)
    expect(run.exitCode).toBe(0)
    const steps = run.events.filter((e) => e.type === 'host-step') as { step: string; at: string }[]
    const at = (step: string) => Date.parse(steps.find((e) => e.step === step)!.at)
    const changed = s.layout === 'releases' ? at('activate') : at('checkout')
    const window = at('restart') - changed
    const back = await rollback(s)
    expect(back.status).toBe('success')
    const forward = await rollback(s, f.origin.shas.v2)
    expect(forward.status).toBe('success')
    rows[s.layout] = [s.layout, ms(window), ms(back.ms), back.status]
    data[s.layout] = { liveChangeMs: window, rollbackMs: back.ms }
  }
  await rename(f.origin.path, `${f.origin.path}.moved`)
  for (const s of setups) {
    const gone = await rollback(s)
    rows[s.layout]!.push(ms(gone.ms), gone.status)
    data[s.layout] = { ...(data[s.layout] as object), rollbackOriginGoneMs: gone.ms, rollbackOriginGoneStatus: gone.status }
  }
  expect(rows['releases']!.at(-1)).toBe('success')
  record({
    id: 'releases',
    title: 'Release directories vs in place (issue 18)',
    order: 47,
    summary: [
      { metric: 'live tree changed before the restart, releases', target: '< 1 s (one rename, then the restart)', value: String(rows['releases']![1]), ok: (data['releases'] as { liveChangeMs: number }).liveChangeMs < 1000 },
      { metric: 'rollback with the origin unreachable, releases', target: 'succeeds', value: `${rows['releases']![4]} (${rows['releases']![5]})`, ok: rows['releases']![5] === 'success' },
    ],
    tables: {
      'one host each, same sshd fleet, same run (verify.delay 300 ms)': {
        header: ['layout', 'live tree changed before restart', 'rollback', 'status', 'rollback, origin moved away', 'status'],
        rows,
      },
    },
    notes:
      'Live tree changed before restart: in place, from the checkout step to the restart (checkout + install of the real bun); releases, from the ' +
      'activate step (the symlink renamed over the app dir) to the restart: mostly that command\'s round trip, the rename itself is one system call. ' +
      'The fixture app installs in well under a second (no dependencies), so the in-place window here is small; with a real install it is the ' +
      'install\'s duration, while the releases window does not grow. Rollback: `fleet rollback <host>` in-process (connect, look-up, steps, ' +
      'verify with verify.delay 300 ms). With the origin moved away an in-place rollback fails at fetch (the host keeps running); releases switch to ' +
      'the kept release. Promotion latency with prepare-ahead and disk per kept release: the next section (bench/releases-promotion.bench.ts).',
    data,
  })
}, 300_000)
