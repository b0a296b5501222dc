// `fleet hosts check`, the built binary against the real sshd test fleet: a good host passes; a
// dirty worktree, a missing remote, a sudo that wants a password and a missing install program
// fail with a clear reason; nothing on any host changes; what a host sends back is cleaned.
import { readFileSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { runFleet } from './support/cli.js'
import { git } from './support/origin.js'
import { startTestFleet, type TestFleet } from './support/test-fleet.js'

interface Check {
  id: string
  status: 'ok' | 'fail' | 'skip'
  detail: string
}
interface Report {
  ready: boolean
  hosts: { name: string; ready: boolean; checks: Check[] }[]
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
  for (const h of fleet.hosts) {
    const r = await runFleet(['hosts', 'add', h.name, h.address, '--port', String(h.port), '--user', h.user, '--app-dir', h.appDir], { cwd: dir })
    expect(r.code, r.stderr).toBe(0)
  }
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
      ['program:bun', 'ok'],
      ['program:sudo', 'ok'],
      ['sudo:restart', 'ok'],
      ['program:systemctl', 'ok'],
    ])
    expect(check('h01', 'remote').detail).toBe(`origin has main at ${fleet.origin.shas.v2.slice(0, 12)}`)
    expect(check('h01', 'sudo:restart').detail).toMatch(/allowed: .*\/systemctl restart rachel8$/)

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
})
