/**
 * The fault matrix: hosts that misbehave the way real VPSs do, all in one rollout beside good
 * hosts, run by the built binary against real sshd, real git and PGlite. Every case must end with
 * the orchestrator alive, the bad host in a recorded state with a one-line reason, the good hosts
 * on the target, no host left `updating`, memory bounded, and nothing a host printed reaching the
 * operator's terminal or logs as an escape sequence.
 */
import { afterEach, describe, expect, it } from 'vitest'

import { buildPlan } from '../src/rollout/plan.js'
import type { HostStatus } from '../src/types.js'
import { runFleet } from './support/cli.js'
import { expectOn, killSpawned, peakRss, pgliteDirWithHosts, runCleanups, spawnFleet, until, withPglite, workdir } from './support/fault-kit.js'
import { fleetConfigOverrides } from './support/harness.js'
import { startHostile, startResettingProxy, type HostileKind, type HostileListener, type ResettingProxy } from './support/hostile-hosts.js'
import { startTestFleet, type TestFleet } from './support/test-fleet.js'

let fleet: TestFleet | null = null
const listeners: (HostileListener | ResettingProxy)[] = []

afterEach(async () => {
  killSpawned()
  for (const l of listeners.splice(0)) await l.close()
  await runCleanups()
  await fleet?.stop()
  fleet = null
})

const CONNECT_TIMEOUT_MS = 3_000
const FLOOD_BYTES = 200_000_000
/** Any control or escape byte except newline; in JSON text they would appear escaped as \u00XX. */
const CONTROL = /[\x00-\x09\x0b-\x1f\x7f-\x9f]/
const ESCAPED_CONTROL = /\\u00(?:0[0-8bcef]|1[0-9a-f]|7f|[89][0-9a-f])/i

/**
 * Operator steps that make chosen hosts misbehave, keyed by marker files in their app dir
 * (untracked, so the worktree stays clean): a flood of output, escape sequences and invalid
 * UTF-8 from a failing install, an install slow enough to be cut mid-command.
 */
const INSTALL = [
  `[ ! -e .hostile-flood ] || head -c ${FLOOD_BYTES} /dev/zero | tr '\\000' x`,
  `[ ! -e .hostile-escapes ] || [ "$(cat .hostile-escapes)" != {sha} ] || { printf '\\033]0;PWNED\\007\\033[2J\\033[H\\377\\376 install exploded\\r\\n' >&2; exit 1; }`,
  `[ ! -e .hostile-slow ] || [ "$(cat .hostile-slow)" != {sha} ] || sleep 4`,
  'bun install',
].join('; ')

describe('fault matrix: one rollout, hostile hosts beside good ones (the built binary, real sshd, PGlite)', () => {
  it('every bad host ends failed/rolled_back with a one-line reason, the good ones on the target, exit 4, nothing left updating', async () => {
    fleet = await startTestFleet({ hosts: 7 })
    const f = fleet
    const { v1, v2 } = f.origin.shas
    const kinds: HostileKind[] = ['silent', 'banner-stall', 'garbage', 'slow']
    const hostile = await Promise.all(kinds.map((k) => startHostile(k)))
    listeners.push(...hostile)
    // h07 goes through a proxy that resets its connection mid-install.
    const proxy = await startResettingProxy(f.host('h07').port)
    listeners.push(proxy)
    const { writeFile } = await import('node:fs/promises')
    await writeFile(`${f.host('h05').appDir}/.hostile-flood`, '')
    await writeFile(`${f.host('h06').appDir}/.hostile-escapes`, v2)
    await writeFile(`${f.host('h07').appDir}/.hostile-slow`, v2)
    const user = f.hosts[0]!.user
    const extra = [
      ...hostile.map((h) => ({ name: `bad-${h.kind}`, address: '127.0.0.1', port: h.port, user, appDir: f.host('h01').appDir })),
      { name: 'h07', address: '127.0.0.1', port: proxy.port, user, appDir: f.host('h07').appDir },
    ]
    const dir = await pgliteDirWithHosts(f, extra)
    // The host that disappears between stages is one the plan puts in the last stage.
    const stages = [40, 100]
    const seed = 'hostile'
    const everyone = [...f.hosts.map((h) => ({ ...h, port: h.name === 'h07' ? proxy.port : h.port })), ...extra.slice(0, 4)]
    const plan = buildPlan(everyone, stages, seed)
    const vanishing = plan.byStage[1]!.find((h) => /^h0[1-4]$/.test(h.name))!.name
    expect(plan.byStage[1]!.map((h) => h.name)).toContain('h07')
    const cwd = await workdir({
      ...fleetConfigOverrides(f, {
        ssh: { connectTimeout: `${CONNECT_TIMEOUT_MS}ms` },
        steps: { install: INSTALL },
        rollout: { stages, failureThreshold: 1, concurrency: 5, stageDelay: '2s' },
      }),
      database: { dir },
    })

    const child = spawnFleet(['rollout', 'start', '--json', '--ref', 'main', '--seed', seed], { cwd })
    const peak = peakRss(child.pid, child.exited)
    const started = await child.waitFor((e) => e.type === 'rollout-started', 30_000)
    const rolloutId = started.rolloutId as string
    // Between the stages, one host of the last stage disappears.
    await child.waitFor((e) => e.type === 'stage-finished' && e.stage === 0, 60_000)
    await f.killSshd(vanishing)
    // Cut h07's connection while its (slow) install runs; the rollback must reconnect.
    await child.waitFor((e) => e.type === 'host-step' && e.host === 'h07' && e.step === 'install', 60_000)
    await new Promise((r) => setTimeout(r, 1_000))
    proxy.reset()
    const run = await child.exited
    const peakKb = await peak

    expect(run.stderr).toBe('')
    expect(run.code).toBe(4)
    const finishedBy = new Map(child.events.filter((e) => e.type === 'host-finished').map((e) => [e.host as string, e]))
    const expected: Record<string, HostStatus> = {
      'bad-silent': 'failed',
      'bad-banner-stall': 'failed',
      'bad-garbage': 'failed',
      'bad-slow': 'failed',
      [vanishing]: 'failed',
      h05: 'success',
      h06: 'rolled_back',
      h07: 'rolled_back',
    }
    for (const [host, status] of Object.entries(expected)) expect(finishedBy.get(host), host).toMatchObject({ status })
    for (const host of ['bad-silent', 'bad-banner-stall', 'bad-garbage', 'bad-slow', vanishing]) {
      const e = finishedBy.get(host)!
      expect(e.failedStep, host).toBe('connect')
      // A stalled host is given up after the connect timeout, not later.
      expect(e.durationMs as number, host).toBeLessThan(CONNECT_TIMEOUT_MS + 2_500)
    }
    for (const e of finishedBy.values()) if (e.error) expect((e.error as string).split('\n').length, `${e.host as string}: ${e.error as string}`).toBeLessThanOrEqual(6)
    expect(finishedBy.get('h06')!.error).toMatch(/install failed \(exit 1\): .*install exploded/)
    expect(finishedBy.get('h07')!.error).toMatch(/install: connection lost/)

    // Nothing a host sent reaches stdout as an escape sequence, not even JSON-escaped.
    expect(run.stdout).not.toMatch(CONTROL)
    expect(run.stdout).not.toMatch(ESCAPED_CONTROL)
    expect(run.stdout).not.toContain('PWNED')

    // Memory stays bounded with 200 MB of output from one host (only a tail is kept).
    expect(peakKb).toBeGreaterThan(0)
    // Kept whole, 200 MB of output would be 400 MB more as a JS string; PGlite alone is ~330 MB of the total.
    expect(peakKb).toBeLessThan(550_000)
    console.log(`fault matrix: peak RSS ${Math.round(peakKb / 1024)} MiB with ${FLOOD_BYTES / 1e6} MB from h05; connect failures after ${[...finishedBy.values()].filter((e) => e.failedStep === 'connect').map((e) => e.durationMs).join('/')} ms`)

    // The stored state is the real state, and nothing is left updating.
    await withPglite(dir, async (s) => {
      const rows = await s.listRolloutHosts(rolloutId)
      for (const row of rows) {
        expect(['success', 'failed', 'rolled_back'], `${row.name} is ${row.status}`).toContain(row.status)
        expect(row.error ?? '', row.name).not.toMatch(CONTROL)
        if (row.status === 'success') await expectOn(f, row.name, v2)
        if (row.status === 'rolled_back') await expectOn(f, row.name, v1)
        if (row.status === 'failed' && f.hosts.some((h) => h.name === row.name) && row.name !== vanishing) await expectOn(f, row.name, v1)
      }
      for (const event of await s.listEvents(rolloutId)) expect(JSON.stringify(event.data)).not.toMatch(ESCAPED_CONTROL)
    })
    for (const h of ['h01', 'h02', 'h03', 'h04'].filter((n) => n !== vanishing)) await expectOn(f, h, v2)

    // Every view of the stored outcome is clean too.
    for (const args of [['rollout', 'status', '--all'], ['rollout', 'status', '--json'], ['history']]) {
      const view = await runFleet(args, { cwd })
      expect(view.code, args.join(' ')).toBe(0)
      expect(view.stdout, args.join(' ')).not.toMatch(CONTROL)
      expect(view.stdout, args.join(' ')).not.toMatch(ESCAPED_CONTROL)
    }
    await until('hostile listeners saw the connects', () => hostile.every((h) => h.accepted > 0))
  })
})
