// `fleet hosts check`, the built binary against the real sshd test fleet: a good host passes; a
// dirty worktree, a missing remote, a sudo that wants a password and a missing install program
// fail with a clear reason; nothing on any host changes; what a host sends back is cleaned.
import { readFileSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { openDatabase } from '../src/store/database.js'
import { Store } from '../src/store/store.js'
import { runFleet } from './support/cli.js'
import { seedRollout, testFence } from './support/harness.js'
import { git } from './support/origin.js'
import { startTestFleet, type TestFleet } from './support/test-fleet.js'

interface Check {
  id: string
  status: 'ok' | 'fail' | 'skip'
  detail: string
}
interface Report {
  ready: boolean
  drift: boolean
  hosts: { name: string; ready: boolean; commit: string | null; recorded: string | null; drift: boolean; problems: string[]; checks: Check[] }[]
}

let fleet: TestFleet
let dir: string

const servicePid = (name: string): string => readFileSync(path.join(fleet.host(name).dir, 'run', 'service.pid'), 'utf8').trim()

beforeAll(async () => {
  fleet = await startTestFleet({ hosts: 5 })
  dir = await mkdtemp(path.join(os.tmpdir(), 'fleet-check-'))
  await writeFile(
    path.join(dir, 'rollout.config.json'),
    JSON.stringify({
      database: { dir: '.fleet' },
      ssh: { user: fleet.hosts[0]!.user, privateKey: fleet.clientKey, knownHosts: fleet.knownHosts, connectTimeout: '10s' },
    }),
  )
  // One import, not one `hosts add` per host: each command opens the embedded store (~2 s).
  await writeFile(path.join(dir, 'hosts.json'), JSON.stringify(fleet.hosts.map((h) => ({ name: h.name, address: h.address, port: h.port, user: h.user, app_dir: h.appDir }))))
  const imported = await runFleet(['hosts', 'import', 'hosts.json'], { cwd: dir })
  expect(imported.code, imported.stderr).toBe(0)
  await fleet.dirtyWorktree('h02')
  await git(fleet.host('h03').appDir, ['remote', 'remove', 'origin'])
  await fleet.setFault('h04', 'sudo-password', true)
  // A host whose git says hostile things: its ssh transport (core.sshCommand, run by git on the
  // host) prints a terminal-title and a clear-screen sequence and a URL with a password.
  const h05 = fleet.host('h05').appDir
  await git(h05, ['remote', 'set-url', 'origin', 'ssh://deploy@example.invalid/repo.git'])
  await git(h05, ['config', 'core.sshCommand', `printf 'fatal: \\033]0;pwned\\007\\033[2Jno route, see https://deploy:s3cret@example.invalid/\\n' >&2; exit 1`])
})

afterAll(async () => {
  await fleet?.stop()
  if (dir) await rm(dir, { recursive: true, force: true })
})

describe('fleet hosts check', () => {
  it('passes a good host and names what is wrong with the others, changing nothing', async () => {
    const heads = await Promise.all(fleet.hosts.map((h) => fleet.head(h.name)))
    const pids = fleet.hosts.map((h) => servicePid(h.name))
    const r = await runFleet(['hosts', 'check', '--json'], { cwd: dir })
    expect(r.code, r.stderr).toBe(9)
    expect(r.stdout, r.stderr).toMatch(/^\{/)
    const report = JSON.parse(r.stdout) as Report
    expect(report.ready).toBe(false)
    const host = (name: string) => report.hosts.find((h) => h.name === name)!
    const check = (name: string, id: string) => host(name).checks.find((c) => c.id === id)!

    expect(host('h01').ready).toBe(true)
    expect(host('h01').checks.map((c) => [c.id, c.status])).toEqual([
      ['connect', 'ok'],
      ['git', 'ok'],
      ['remote', 'ok'],
      ['clean', 'ok'],
      ['fence', 'ok'],
      ['program:flock', 'ok'],
      ['program:bun', 'ok'],
      ['program:sudo', 'ok'],
      ['sudo:restart', 'ok'],
      ['program:systemctl', 'ok'],
    ])
    expect(check('h01', 'remote').detail).toBe(`origin has main at ${fleet.origin.shas.v2.slice(0, 12)}`)
    expect(check('h01', 'sudo:restart').detail).toMatch(/allowed: .*\/systemctl restart rachel8$/)
    expect(check('h01', 'fence').detail).toBe(`${path.dirname(fleet.host('h01').appDir)} is writable`)
    expect(check('h01', 'program:flock').detail).toMatch(/\/flock$/)
    // Nothing recorded yet (no rollout): the commit is reported, no drift.
    expect(host('h01')).toMatchObject({ commit: heads[0], recorded: null, drift: false, problems: [] })
    expect(host('h02').problems).toEqual([expect.stringMatching(/^worktree is clean: 1 modified tracked file/)])

    expect(host('h02').ready).toBe(false)
    expect(check('h02', 'clean')).toMatchObject({ status: 'fail', detail: expect.stringContaining('1 modified tracked file') })
    expect(check('h02', 'clean').detail).toContain('server.js')

    expect(check('h03', 'remote').status).toBe('fail')
    expect(check('h03', 'remote').detail).toMatch(/'origin' does not appear to be a git repository/)
    expect(host('h03').checks.filter((c) => c.status === 'fail').map((c) => c.id)).toEqual(['remote'])

    expect(check('h04', 'sudo:restart')).toMatchObject({ status: 'fail', detail: 'sudo wants a password for: systemctl restart rachel8 (add a NOPASSWD rule)' })

    expect(check('h05', 'remote')).toEqual({
      id: 'remote',
      label: 'remote origin is fetchable',
      status: 'fail',
      detail: 'fatal: no route, see https://***@example.invalid/',
    })

    // Read-only: same commits, the same service processes (the sudo check restarted nothing), still dirty.
    expect(await Promise.all(fleet.hosts.map((h) => fleet.head(h.name)))).toEqual(heads)
    expect(fleet.hosts.map((h) => servicePid(h.name))).toEqual(pids)
    expect((await git(fleet.host('h02').appDir, ['status', '--porcelain', '--untracked-files=no'])).trim()).not.toBe('')
  })

  it('checks only the named hosts; plain output ends with the summary; exit 0 when all are ready', async () => {
    const r = await runFleet(['hosts', 'check', 'h01'], { cwd: dir })
    expect(r.code, r.stderr).toBe(0)
    const lines = r.stdout.trim().split('\n')
    expect(lines[0]).toMatch(/^h01 {2}.+@127\.0\.0\.1:\d+ {2}ready$/)
    expect(lines).toContain('  ok  worktree is clean: no modified tracked files')
    expect(lines.at(-1)).toBe('1 of 1 hosts ready')
  })

  it('prints no escape sequence from a host, and no credentials', async () => {
    const r = await runFleet(['hosts', 'check', 'h05'], { cwd: dir })
    expect(r.code).toBe(9)
    expect(r.stdout).toContain('FAIL  remote origin is fetchable: fatal: no route, see https://***@example.invalid/\n')
    expect(r.stdout + r.stderr).not.toContain('s3cret')
    expect(r.stdout + r.stderr).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/)
  })

  it('finds an install program missing from the non-interactive PATH', async () => {
    const r = await runFleet(['hosts', 'check', 'h01', '--json'], { cwd: dir, env: { FLEET_STEPS_INSTALL: 'bun-nowhere install' } })
    expect(r.code, r.stderr).toBe(9)
    const report = JSON.parse(r.stdout) as Report
    const bun = report.hosts[0]!.checks.find((c) => c.id === 'program:bun-nowhere')!
    expect(bun.status).toBe('fail')
    expect(bun.detail).toMatch(/^not found; PATH is .*sim-bin/)
  })

  it('refuses an unknown host name (exit 2)', async () => {
    const r = await runFleet(['hosts', 'check', 'nope'], { cwd: dir })
    expect(r.code).toBe(2)
    expect(r.stderr).toContain('no host named "nope"')
  })

  it('reports drift: a host changed by hand runs another commit than fleet recorded (exit 9)', async () => {
    const { v1, v2 } = fleet.origin.shas
    const h01 = fleet.host('h01').appDir
    expect(await fleet.head('h01')).toBe(v1)
    const host = (name: string) => ({ name, address: '127.0.0.1', port: 22, user: 'u', appDir: '/a', position: 0, stage: 0, step: null, error: null, startedAt: null })
    const rollout = (id: string, startedAt: Date) => ({
      id, state: 'completed' as const, ref: 'main', sha: v2, stages: [100], seed: 's', currentStage: 0, settings: {}, owner: 'test', startedAt, finishedAt: startedAt, heartbeatAt: startedAt, exitCode: 0, error: null,
    })
    // What fleet recorded: h01 in its hosts table; h03 and h04 only in rollouts (h03 moved back by a later `fleet rollback`).
    await withPglite(async (store) => {
      await store.db.updateTable('fleet_hosts').set({ current_version: v1 }).where('name', '=', 'h01').execute()
      await seedRollout(store, rollout('20250101-000000-aaaa', new Date(Date.now() - 7_200_000)), [
        { ...host('h03'), status: 'success', previousVersion: v1, newVersion: v2, finishedAt: new Date(Date.now() - 7_200_000) },
        { ...host('h04'), status: 'rolled_back', previousVersion: v1, newVersion: v2, finishedAt: new Date(Date.now() - 7_200_000) },
      ])
      const fence = await testFence(store, 'rollback-h03')
      await store.appendEvents(fence, [{ rolloutId: null, type: 'host-rollback-finished', host: 'h03', data: { newVersion: v1 }, at: new Date(Date.now() - 3_600_000) }])
    })
    await git(h01, ['checkout', '-q', '--detach', v2]) // by hand
    try {
      const r = await runFleet(['hosts', 'check', 'h01', 'h03', 'h04', '--json'], { cwd: dir })
      expect(r.code, r.stderr).toBe(9)
      const report = JSON.parse(r.stdout) as Report
      expect(report.drift).toBe(true)
      const by = (name: string) => report.hosts.find((h) => h.name === name)!
      expect(by('h01')).toMatchObject({ ready: true, commit: v2, recorded: v1, drift: true })
      expect(by('h01').problems).toEqual([`drift: runs ${v2.slice(0, 12)}, fleet recorded ${v1.slice(0, 12)} (changed outside fleet)`])
      expect(by('h03')).toMatchObject({ commit: v1, recorded: v1, drift: false })
      expect(by('h04')).toMatchObject({ commit: v1, recorded: v2, drift: true })

      const plain = await runFleet(['hosts', 'check', 'h01'], { cwd: dir })
      expect(plain.code).toBe(9)
      const lines = plain.stdout.trim().split('\n')
      expect(lines[0]).toMatch(/^h01 {2}.+ {2}ready {2}DRIFT$/)
      expect(lines).toContain(`  DRIFT  runs ${v2.slice(0, 12)}, fleet recorded ${v1.slice(0, 12)}: changed outside fleet`)
      expect(lines.at(-1)).toBe('1 of 1 hosts ready; drift on 1: h01')
    } finally {
      await git(h01, ['checkout', '-q', '--detach', v1])
    }
  })
})

/** The CLI's embedded store, opened for a moment between commands. */
async function withPglite<T>(fn: (store: Store) => Promise<T>): Promise<T> {
  const database = await openDatabase({ url: null, dir: path.join(dir, '.fleet') })
  try {
    return await fn(new Store(database))
  } finally {
    await database.close()
  }
}
