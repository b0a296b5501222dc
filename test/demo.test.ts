// `fleet demo` (built binary) as a fresh machine runs it: no bun on the PATH, no FLEET_* variables,
// from an unrelated directory. Its hosts use the shipped bun stand-in; both rollouts must behave.
import { mkdtemp, readdir, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'

import { runFleet } from './support/cli.js'

let cwd: string | undefined

afterAll(async () => {
  if (cwd) await rm(cwd, { recursive: true, force: true })
})

describe('fleet demo', () => {
  it('runs both rollouts without bun and leaves nothing behind', async () => {
    cwd = await mkdtemp(path.join(os.tmpdir(), 'fleet-demo-cwd-'))
    const PATH = [path.dirname(process.execPath), '/usr/local/bin', '/usr/bin', '/bin'].join(':')
    const before = (await readdir(os.tmpdir())).filter((e) => e.startsWith('fleet-demo-') && !e.startsWith('fleet-demo-cwd-'))
    const r = await runFleet(['demo', '--hosts', '10', '--json'], { cwd, env: { PATH }, timeoutMs: 110_000 })
    expect(r.code, r.stderr).toBe(0)
    // stdout: both rollouts' NDJSON events, then the demo's summary.
    const summary = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { asExpected: boolean; hostsOnV2: number; rollouts: { exitCode: number; counts: Record<string, number> }[] }
    expect(summary.asExpected).toBe(true)
    expect(summary.rollouts.map((x) => x.exitCode)).toEqual([4, 3])
    expect(summary.rollouts[0]!.counts).toMatchObject({ success: 9, rolled_back: 1 })
    expect(summary.hostsOnV2).toBe(9)
    expect(r.stderr).toContain('stand-in (fixtures/sim-bun.mjs)')
    expect(await readdir(cwd)).toEqual([])
    const after = (await readdir(os.tmpdir())).filter((e) => e.startsWith('fleet-demo-') && !e.startsWith('fleet-demo-cwd-'))
    expect(after.filter((e) => !before.includes(e))).toEqual([])
  })
})
