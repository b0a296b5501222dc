/**
 * Issue item 5: start-up time of `fleet --version` and `fleet --help` against `node -e 0`
 * (the floor: Node itself), each spawned 20 times, interleaved, medians compared. Target: < 2×.
 * Also `fleet rollout status --help` (loads commander's subcommand tree) for information.
 */
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import os from 'node:os'
import { expect, it } from 'vitest'

import { FLEET_BIN, median, ms, percentile, waitForQuiet } from './support/measure.js'
import { record } from './support/results.js'

const RUNS = Number(process.env.BENCH_STARTUP_RUNS ?? 20)

it('startup: fleet --version / --help vs node -e 0', async () => {
  expect(existsSync(FLEET_BIN)).toBe(true)
  const env = { PATH: process.env.PATH, HOME: process.env.HOME, NO_COLOR: '1' }
  const commands: Record<string, string[]> = {
    'node -e 0': ['-e', '0'],
    'fleet --version': [FLEET_BIN, '--version'],
    'fleet --help': [FLEET_BIN, '--help'],
    'fleet rollout start --help': [FLEET_BIN, 'rollout', 'start', '--help'],
  }
  const times: Record<string, number[]> = Object.fromEntries(Object.keys(commands).map((k) => [k, []]))
  const run = (args: string[]) => {
    const t0 = performance.now()
    const r = spawnSync(process.execPath, args, { cwd: os.tmpdir(), env, stdio: ['ignore', 'pipe', 'pipe'] })
    const t = performance.now() - t0
    if (r.status !== 0) throw new Error(`bench: ${args.join(' ')} exited ${r.status}: ${r.stderr}`)
    return t
  }
  for (const args of Object.values(commands)) for (let i = 0; i < 3; i++) run(args) // warm the page cache
  await waitForQuiet()
  for (let i = 0; i < RUNS; i++) for (const [name, args] of Object.entries(commands)) times[name]!.push(run(args))
  const base = median(times['node -e 0']!)
  const rows: Record<string, string[]> = {}
  for (const [name, t] of Object.entries(times)) rows[name] = [`\`${name}\``, ms(median(t)), `${ms(Math.min(...t))}–${ms(percentile(t, 90))}`, name === 'node -e 0' ? '1.00' : `**${(median(t) / base).toFixed(2)}**`]
  const ratio = (name: string) => median(times[name]!) / base
  record({
    id: 'startup',
    title: 'Start-up time (issue item 5)',
    order: 30,
    summary: ['fleet --version', 'fleet --help'].map((name) => ({
      metric: `\`${name}\` / \`node -e 0\``,
      target: '< 2×',
      value: `${ratio(name).toFixed(2)}× (${ms(median(times[name]!))} vs ${ms(base)})`,
      ok: ratio(name) < 2,
    })),
    tables: { [`Wall time of ${RUNS} spawns each, interleaved`]: { header: ['command', 'median', 'min–p90', '× node -e 0'], rows } },
    notes: 'Each command is spawned with `spawnSync(process.execPath, …)` from the bench (the built CLI in bench/.build, same layout as the package: bin/fleet importing dist/), after 3 warm-up runs each.',
  })
})
