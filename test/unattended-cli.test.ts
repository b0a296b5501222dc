/**
 * The CLI side of unattended rollouts, on the built binary with the real sim fleet (sshd, git),
 * PGlite, a real Pushgateway and a real HTTP receiver on 127.0.0.1: notifications of stored events
 * (exactly once each; a failing target recorded, nothing else changed), metrics pushed and written
 * as a textfile, the cooldown after a halted rollout (exit 6, then --ignore-cooldown --reason on the
 * record), and `fleet rollout events` as text, NDJSON and Markdown. One fleet for the whole file:
 * the tests run in order and build on each other (A completes, B halts, C ignores the cooldown).
 */
import { mkdtemp, readFile, writeFile } from 'node:fs/promises'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { hostname, tmpdir, userInfo } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { md } from '../src/audit/index.js'
import { runFleet } from './support/cli.js'
import { killSpawned, pgliteDirWithHosts, runCleanups, spawnFleet, withPglite, workdir } from './support/fault-kit.js'
import { fleetConfigOverrides } from './support/harness.js'
import { startPushgateway, type TestPushgateway } from './support/pushgateway.js'
import { startTestFleet, type TestFleet } from './support/test-fleet.js'

interface Received {
  readonly path: string
  readonly key: string
  readonly body: Record<string, unknown>
}

let fleet: TestFleet
let gateway: TestPushgateway | null
let receiver: http.Server
let received: Received[] = []
let cwd: string
let dir: string
let textfile: string
const ids: { a?: string; b?: string; c?: string; d?: string } = {}

/** /ok and /watch answer 204, /fail always 500: the test sees every attempt. */
async function startReceiver(): Promise<string> {
  receiver = http.createServer((req, res) => {
    let text = ''
    req.on('data', (chunk: Buffer) => (text += chunk.toString()))
    req.on('end', () => {
      received.push({ path: req.url ?? '', key: String(req.headers['idempotency-key'] ?? ''), body: JSON.parse(text) as Record<string, unknown> })
      res.writeHead(req.url === '/fail' ? 500 : 204).end()
    })
  })
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve))
  return `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`
}

const fleetRun = (args: readonly string[]) => runFleet(args, { cwd, timeoutMs: 60_000 })
const ndjson = (text: string): Record<string, unknown>[] => text.trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>)
const at = (p: string) => received.filter((r) => r.path === p)

/** A series' value in the Prometheus text format, by name and labels it must carry. */
function series(text: string, name: string, labels: Record<string, string> = {}): number | null {
  for (const line of text.split('\n')) {
    const m = /^([a-z_]+)(?:\{([^}]*)\})? (\S+)$/.exec(line)
    if (!m || m[1] !== name) continue
    const have = m[2] ?? ''
    if (Object.entries(labels).every(([k, v]) => have.includes(`${k}="${v}"`))) return Number(m[3])
  }
  return null
}

beforeAll(async () => {
  ;[fleet, gateway] = await Promise.all([startTestFleet({ hosts: 4 }), startPushgateway()])
  const base = await startReceiver()
  dir = await pgliteDirWithHosts(fleet)
  textfile = path.join(await workdir({}), 'fleet.prom')
  cwd = await workdir({
    ...fleetConfigOverrides(fleet, { rollout: { stages: [50, 100], cooldown: '1h' } }),
    database: { dir },
    notify: [
      { url: `${base}/ok`, format: 'json' },
      { url: `${base}/fail`, format: 'slack', on: ['rollout-finished'] },
      { url: `${base}/watch`, format: 'json', on: ['notification-failed'] },
    ],
    metrics: { ...(gateway ? { pushgateway: gateway.url } : {}), textfile, job: 'fleet' },
  })
}, 60_000)

afterAll(async () => {
  killSpawned()
  await gateway?.stop()
  await new Promise((resolve) => receiver?.close(resolve))
  await runCleanups()
  await fleet?.stop()
})

describe('unattended rollouts from the CLI (built binary, sim fleet, PGlite)', () => {
  it('a rollout notifies each chosen event exactly once; a failing target is recorded and changes nothing; events while it runs say why not', async () => {
    const child = spawnFleet(['rollout', 'start', '--json', '--stage-delay', '2s'], { cwd })
    await child.waitFor((e) => e.type === 'stage-delay')
    // The rollout holds the embedded store: the trail is not in its snapshot, and the reader says so.
    const held = await fleetRun(['rollout', 'events'])
    expect(held.code, held.stderr).toBe(6)
    expect(held.stderr).toMatch(/in use by pid \d+.*the audit trail is read from the store itself.*fleet rollout status/)
    const run = await child.exited
    expect(run.code, run.stderr).toBe(0)
    ids.a = child.events.find((e) => e.type === 'rollout-started')!.rolloutId as string

    // The default set: rollout-started, stage-finished ×2, rollout-finished; once each, in order.
    expect(at('/ok').map((r) => r.body.type)).toEqual(['rollout-started', 'stage-finished', 'stage-finished', 'rollout-finished'])
    expect(new Set(at('/ok').map((r) => r.key)).size).toBe(4)
    expect(at('/ok').every((r) => r.body.rolloutId === ids.a && typeof r.body.summary === 'string')).toBe(true)
    expect(at('/ok')[3]!.body).toMatchObject({ type: 'rollout-finished', state: 'completed', exitCode: 0 })
    // The 500 target: tried 3 times with one key, then recorded; the watcher hears of it once.
    expect(at('/fail')).toHaveLength(3)
    // Every attempt of one notification carries one key: the stored event's.
    expect(new Set(at('/fail').map((r) => r.key)).size).toBe(1)
    expect(at('/fail')[0]!.key).toMatch(new RegExp(`^${ids.a}:rollout-finished:\\d+$`))
    expect(at('/fail')[0]!.body.text).toMatch(/rollout completed/)
    expect(at('/watch').map((r) => r.body)).toEqual([expect.objectContaining({ type: 'notification-failed', event: 'rollout-finished', status: 500, attempts: 3 })])
    expect(run.stderr).toMatch(/warning: notification of rollout-finished to http:\/\/127\.0\.0\.1:\d+\/… failed after 3 attempt\(s\): HTTP 500/)

    await withPglite(dir, async (s) => {
      expect(await s.getRollout(ids.a)).toMatchObject({ state: 'completed', exitCode: 0 })
      const failed = (await s.listEvents(ids.a!)).filter((e) => e.type === 'notification-failed')
      expect(failed.map((e) => e.data)).toEqual([expect.objectContaining({ event: 'rollout-finished', target: 1, status: 500, attempts: 3 })])
    })
  })

  it('metrics: the Pushgateway serves fleet_* series with the values of the store; the textfile has them too', async (t) => {
    const text = await readFile(textfile, 'utf8')
    expect(series(text, 'fleet_rollout_state', { state: 'completed' })).toBe(1)
    expect(series(text, 'fleet_hosts', { status: 'success' })).toBe(4)
    expect(series(text, 'fleet_rollout_percent')).toBe(100)
    expect(series(text, 'fleet_rollout_info', { rollout_id: ids.a! })).toBe(1)
    const finishedAt = await withPglite(dir, async (s) => (await s.getRollout(ids.a))!.finishedAt!)
    expect(series(text, 'fleet_last_success_timestamp_seconds')).toBeCloseTo(finishedAt.getTime() / 1000, 0)
    if (!gateway) return t.skip()
    const pushed = await gateway.metrics()
    expect(series(pushed, 'fleet_rollout_state', { job: 'fleet', state: 'completed' })).toBe(1)
    expect(series(pushed, 'fleet_hosts', { job: 'fleet', status: 'success' })).toBe(4)
    expect(series(pushed, 'fleet_rollbacks_total', { job: 'fleet' })).toBe(0)
    expect(series(pushed, 'fleet_decisions_total', { job: 'fleet' })).toBeGreaterThanOrEqual(6)
    const lastRun = series(pushed, 'fleet_last_run_timestamp_seconds', { job: 'fleet' })!
    expect(Math.abs(lastRun - Date.now() / 1000)).toBeLessThan(60)
  })

  it('a halted rollout starts a cooldown: start exits 6 saying until when; metrics show the halt', async () => {
    received = []
    const halted = await fleetRun(['rollout', 'start', '--ref', 'crash'])
    expect(halted.code, halted.stderr).toBe(3)
    const b = await withPglite(dir, async (s) => (await s.getRollout())!)
    ids.b = b.id
    expect(b.state).toBe('halted')
    // "verify failed" comes with the service's own status (steps.diagnose), cleaned, next to it.
    const crashed = await withPglite(dir, async (s) => (await s.listRolloutHosts(b.id)).find((h) => h.status === 'rolled_back')!)
    expect(crashed.error).toMatch(/verify failed \(exit 3\) \(after \d+ attempts?\)\ndiagnose: [^]*Active: inactive \(dead\)/)
    expect(halted.stdout).toMatch(/exit 3: halted: a stage failed too often/)
    if (gateway) {
      const pushed = await gateway.metrics()
      expect(series(pushed, 'fleet_rollout_state', { state: 'halted' })).toBe(1)
      expect(series(pushed, 'fleet_rollbacks_total')).toBe(2)
      // The last success is still A's.
      expect(series(pushed, 'fleet_last_success_timestamp_seconds')).toBeLessThan(b.startedAt.getTime() / 1000)
    }

    const refused = await fleetRun(['rollout', 'start', '--ref', 'v3'])
    expect(refused.code).toBe(6)
    const until = new Date(b.finishedAt!.getTime() + 3_600_000).toISOString()
    expect(refused.stderr).toContain(`cooldown until ${until}: rollout ${b.id} was halted`)
    expect(refused.stderr).toMatch(/--ignore-cooldown --reason/)
    const noReason = await fleetRun(['rollout', 'start', '--ref', 'v3', '--ignore-cooldown'])
    expect(noReason.code).toBe(2)
    expect(noReason.stderr).toMatch(/--ignore-cooldown needs --reason/)
    // Nothing was started by either.
    expect(await withPglite(dir, async (s) => (await s.getRollout())!.id)).toBe(b.id)
    for (const h of fleet.hosts) expect(await fleet.head(h.name)).toBe(fleet.origin.shas.v2)
  })

  it('--ignore-cooldown --reason runs it; the audit trail (text, Markdown, NDJSON) says who and why', async () => {
    const run = await fleetRun(['rollout', 'start', '--ref', 'v3', '--ignore-cooldown', '--reason', 'hotfix for INC-42'])
    expect(run.code, run.stderr).toBe(0)
    for (const h of fleet.hosts) expect(await fleet.head(h.name)).toBe(fleet.origin.shas.v3)
    const me = `${userInfo().username}@${hostname()}`
    expect(run.stdout).toContain(`ignored by ${me}: hotfix for INC-42`)

    const json = await fleetRun(['rollout', 'events', '--json'])
    expect(json.code, json.stderr).toBe(0)
    const lines = ndjson(json.stdout)
    ids.c = lines[0]!.rolloutId as string
    expect(ids.c).not.toBe(ids.b)
    expect(lines[0]!.type).toBe('rollout-started')
    // The rollout's own last event, then the failed notification of it (the /fail target).
    expect(lines.slice(-2).map((e) => e.type)).toEqual(['rollout-finished', 'notification-failed'])
    expect(lines.at(-2)).toMatchObject({ state: 'completed', exitCode: 0 })
    const ignored = lines.find((e) => e.type === 'cooldown-ignored')
    expect(ignored).toMatchObject({ actor: me, who: me, manual: true, reason: 'hotfix for INC-42', causedBy: ids.b, rolloutId: ids.c })
    expect(ignored!.until).toBe(new Date((await withPglite(dir, async (s) => (await s.getRollout(ids.b))!.finishedAt!)).getTime() + 3_600_000).toISOString())

    const markdown = await fleetRun(['rollout', 'events', '--markdown'])
    expect(markdown.code, markdown.stderr).toBe(0)
    expect(markdown.stdout).toContain(`# Rollout ${ids.c}`)
    const row = markdown.stdout.split('\n').find((line) => line.includes('cooldown until'))
    expect(row).toMatch(/^\| .* \| .* \| \*\*cooldown until .* ignored\*\* \| hotfix for INC-42 \|$/)
    expect(row).toContain(`| ${md(me)} |`)

    const text = await fleetRun(['rollout', 'events', ids.b!])
    expect(text.code, text.stderr).toBe(0)
    expect(text.stdout).toMatch(new RegExp(`^rollout ${ids.b} \\(halted\\): crash\\n`))
    expect(text.stdout).toMatch(/rollout halted/)
    const unknown = await fleetRun(['rollout', 'events', 'no-such-rollout'])
    expect(unknown.code).toBe(2)
    const both = await fleetRun(['rollout', 'events', '--json', '--markdown'])
    expect(both.code).toBe(2)
  })

  it('pause and resume from other shells reach the receiver and the audit trail with who and why; no two notifications share a key', async () => {
    received = []
    const me = `${userInfo().username}@${hostname()}`
    const child = spawnFleet(['rollout', 'start', '--ref', 'v2', '--json', '--stage-delay', '3s'], { cwd })
    await child.waitFor((e) => e.type === 'stage-delay')
    const pause = await fleetRun(['rollout', 'pause', '--reason', 'INC-7 checkout errors'])
    expect(pause.code, pause.stderr).toBe(0)
    const paused = await child.exited
    expect(paused.code, paused.stderr).toBe(7)
    ids.d = child.events.find((e) => e.type === 'rollout-started')!.rolloutId as string
    const resume = await fleetRun(['rollout', 'resume', '--reason', 'INC-7 resolved', '--json'])
    expect(resume.code, resume.stderr).toBe(0)
    // The resumed run's own stream has the resume, with who and why.
    expect(ndjson(resume.stdout).find((e) => e.type === 'rollout-resumed')).toMatchObject({ rolloutId: ids.d, actor: me, reason: 'INC-7 resolved', from: 'paused' })
    for (const h of fleet.hosts) expect(await fleet.head(h.name)).toBe(fleet.origin.shas.v2)

    const ok = at('/ok')
    // Notifications run beside the rollout, so two close events may arrive in either order.
    expect(ok.map((r) => `${String(r.body.type)} ${String(r.body.state ?? '')}`.trim()).sort()).toEqual(
      ['rollout-started', 'stage-finished', 'rollout-paused', 'rollout-finished paused', 'rollout-resumed', 'stage-finished', 'rollout-finished completed'].sort(),
    )
    expect(ok.find((r) => r.body.type === 'rollout-paused')!.body).toMatchObject({ actor: me, reason: 'INC-7 checkout errors', byHand: true })
    expect(ok.find((r) => r.body.type === 'rollout-resumed')!.body).toMatchObject({ actor: me, reason: 'INC-7 resolved' })
    // Seven different events, seven different keys: the pause's rollout-finished and the real end included.
    expect(new Set(ok.map((r) => r.key)).size).toBe(7)

    const trail = ndjson((await fleetRun(['rollout', 'events', '--json'])).stdout)
    expect(trail.find((e) => e.type === 'rollout-paused')).toMatchObject({ who: me, manual: true, reason: 'INC-7 checkout errors' })
    expect(trail.find((e) => e.type === 'rollout-resumed')).toMatchObject({ who: me, manual: true, reason: 'INC-7 resolved' })
  })

  it('cron ticks from another working directory with --config: a relative gate check runs next to the config file', async () => {
    const ops = await workdir({
      ...fleetConfigOverrides(fleet, { rollout: { stages: [50, 100] } }),
      database: { dir },
      gates: { bake: '1s', interval: '300ms', checks: [{ name: 'smoke', command: './smoke.sh {sha}' }] },
    })
    // Next to the config, and only there: from cron's directory `./smoke.sh` does not exist.
    await writeFile(path.join(ops, 'smoke.sh'), '#!/bin/sh\n[ -n "$1" ] && exit 0\nexit 1\n', { mode: 0o755 })
    const cron = await mkdtemp(path.join(tmpdir(), 'fleet-cron-'))
    const tick = () => runFleet(['rollout', 'tick', '--ref', 'v3', '--config', path.join(ops, 'rollout.config.json')], { cwd: cron, timeoutMs: 60_000 })
    let last = await tick()
    for (let i = 0; i < 30 && last.code === 0 && !/nothing to do/.test(last.stdout); i++) last = await tick()
    expect(last.code, last.stdout + last.stderr).toBe(0)
    for (const h of fleet.hosts) expect(await fleet.head(h.name)).toBe(fleet.origin.shas.v3)
    const latest = await withPglite(dir, async (s) => {
      const r = (await s.getRollout())!
      return { state: r.state, checks: (await s.listEvents(r.id, ['gate-measured', 'gates-failed'])).map((e) => e.data as Record<string, unknown>) }
    })
    expect(latest.state).toBe('completed')
    expect(latest.checks.some((e) => e.type === 'gates-failed')).toBe(false)
    expect(latest.checks.length).toBeGreaterThan(0)
    expect(latest.checks.every((e) => e.verdict === 'pass')).toBe(true)
  })

  it('Ctrl-C during abort --rollback never exits 0: exit 130, recorded interrupted with the hosts left; running it again finishes the job', async () => {
    const child = spawnFleet(['rollout', 'start', '--ref', 'v2', '--json', '--stage-delay', '60s', '--concurrency', '1'], { cwd })
    await child.waitFor((e) => e.type === 'stage-delay')
    child.kill('SIGINT')
    expect((await child.exited).code).toBe(130)
    const onV2 = (await Promise.all(fleet.hosts.map(async (h) => ((await fleet.head(h.name)) === fleet.origin.shas.v2 ? h.name : null)))).filter(Boolean)
    expect(onV2).toHaveLength(2)

    const abort = spawnFleet(['rollout', 'abort', '--rollback', '--reason', 'bad canary', '--json'], { cwd })
    // The first host's move back is under way: stop now.
    await abort.waitFor((e) => e.type === 'host-step')
    abort.kill('SIGINT')
    const aborted = await abort.exited
    expect(aborted.code, aborted.stderr).toBe(130)
    const finished = abort.events.find((e) => e.type === 'rollout-finished')!
    expect(finished).toMatchObject({ state: 'interrupted', exitCode: 130 })
    expect(finished.error).toMatch(/abort --rollback interrupted: 1 host\(s\) still on the target/)
    const stillOnV2 = (await Promise.all(fleet.hosts.map(async (h) => ((await fleet.head(h.name)) === fleet.origin.shas.v2 ? h.name : null)))).filter(Boolean)
    expect(stillOnV2).toHaveLength(1)

    const again = await fleetRun(['rollout', 'abort', '--rollback', '--reason', 'bad canary'])
    expect(again.code, again.stdout + again.stderr).toBe(0)
    for (const h of fleet.hosts) expect(await fleet.head(h.name)).toBe(fleet.origin.shas.v3)
    const trail = ndjson((await fleetRun(['rollout', 'events', '--json'])).stdout)
    expect(trail.filter((e) => e.type === 'rollout-aborting').map((e) => e.reason)).toEqual(['bad canary', 'bad canary'])
  })
})
