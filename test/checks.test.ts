// The pure builders of `fleet hosts check` (src/remote/checks.ts): what they would run is exactly
// the quoted command, and a step they cannot pass on safely is skipped, never run in part.
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { describe, expect, it } from 'vitest'

import { fenceWritable, hostChecks, programOf, redactUrls, simpleWords, type CheckSettings } from '../src/remote/checks.js'

const settings = (steps: Partial<CheckSettings['steps']> = {}): CheckSettings => ({
  appDir: "/srv/it's app",
  remote: 'origin',
  branch: 'release/2',
  service: 'rachel8',
  steps: { install: 'bun install', restart: 'sudo systemctl restart {service}', verify: 'systemctl is-active --quiet {service}', health: null, ...steps },
})

const commandOf = (s: CheckSettings, id: string) => hostChecks(s).find((c) => c.id === id)

describe('hosts check builders', () => {
  it('builds read-only, quoted commands for the defaults', () => {
    const s = settings()
    expect(hostChecks(s).map((c) => c.id)).toEqual(['git', 'remote', 'clean', 'fence', 'program:flock', 'program:bun', 'program:sudo', 'sudo:restart', 'program:systemctl'])
    expect(commandOf(s, 'fence')?.command).toMatch(/^d=\/srv; .*for f in '\/srv\/it'\\''s app\.fleet-fence\.lock' /)
    expect(commandOf(s, 'program:flock')?.command).toMatch(/^command -v flock \|\| /)
    expect(commandOf(s, 'git')?.command).toBe("git -C '/srv/it'\\''s app' rev-parse --is-inside-work-tree HEAD")
    expect(commandOf(s, 'remote')?.command).toBe("env GIT_TERMINAL_PROMPT=0 git -C '/srv/it'\\''s app' ls-remote --exit-code -- origin refs/heads/release/2")
    expect(commandOf(s, 'sudo:restart')?.command).toBe('sudo -n -l systemctl restart rachel8')
    expect(commandOf(s, 'program:bun')?.command).toMatch(/^cd '\/srv\/it'\\''s app' && command -v bun \|\| /)
  })

  it('never passes on a step that is more than one simple command', () => {
    for (const restart of ['sudo systemctl restart x && rm -rf /', 'sudo systemctl restart x; reboot', 'sudo sh -c "systemctl restart x"', 'sudo systemctl restart $(id)', 'sudo deploy {sha}']) {
      const check = commandOf(settings({ restart }), 'sudo:restart')!
      expect(check.command, restart).toBeNull()
      expect(check.skipped).toMatch(/not one simple command/)
    }
  })

  it('substitutes known placeholders as single words', () => {
    const s = { ...settings({ restart: 'sudo -u app /opt/bin/restart {service} {branch}' }), service: 'svc' }
    expect(simpleWords(s.steps.restart, s)).toEqual(['sudo', '-u', 'app', '/opt/bin/restart', 'svc', 'release/2'])
    expect(commandOf(s, 'sudo:restart')?.command).toBe('sudo -n -l -u app /opt/bin/restart svc release/2')
  })

  it('finds the program of a step after VAR=value words', () => {
    expect(programOf('NODE_ENV=production bun install --frozen-lockfile')).toBe('bun')
    expect(programOf('"bun" install')).toBeNull()
    expect(commandOf(settings({ install: '$HOME/bin/bun install' }), 'program:install')?.skipped).toMatch(/plain program name/)
  })

  it('judges results: a missing branch, a dirty tree, a sudo that wants a password', () => {
    const s = settings()
    const out = (code: number, stdout = '', stderr = '') => ({ code, stdout, stderr, timedOut: false })
    expect(commandOf(s, 'remote')!.judge(out(2))).toEqual({ ok: false, detail: 'origin answers but has no branch release/2' })
    expect(commandOf(s, 'clean')!.judge(out(0, ' M server.js\n M package.json\n'))).toEqual({
      ok: false,
      detail: '2 modified tracked files (a rollout refuses this host): server.js, package.json',
    })
    expect(commandOf(s, 'sudo:restart')!.judge(out(1, '', 'sudo: a password is required\n')).detail).toBe(
      'sudo wants a password for: systemctl restart rachel8 (add a NOPASSWD rule)',
    )
    expect(commandOf(s, 'remote')!.judge({ ...out(-1), timedOut: true })).toEqual({ ok: false, detail: 'timed out' })
  })

  it('masks credentials in URLs', () => {
    expect(redactUrls("fatal: unable to access 'https://deploy:tok3n@git.example.com/app.git/'")).toBe("fatal: unable to access 'https://***@git.example.com/app.git/'")
  })

  it("fence: the app dir's parent must exist and be writable, and so must fence files that exist (run locally, read-only)", () => {
    const sh = (script: string) => {
      try {
        return { code: 0, out: execFileSync('/bin/bash', ['-c', script], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }) }
      } catch (error) {
        const e = error as { status: number; stderr: string }
        return { code: e.status, out: e.stderr }
      }
    }
    const dir = mkdtempSync(path.join(os.tmpdir(), "fleet fence's "))
    try {
      expect(sh(fenceWritable(path.join(dir, 'app')))).toEqual({ code: 0, out: `${dir}\n` })
      expect(sh(fenceWritable(path.join(dir, 'missing', 'app')))).toEqual({ code: 1, out: `${dir}/missing does not exist\n` })
      // A fence lock that exists but is not writable (root may write anything: only checked as another user).
      writeFileSync(path.join(dir, 'app.fleet-fence.lock'), '', { mode: 0o444 })
      if (process.getuid?.() !== 0) expect(sh(fenceWritable(path.join(dir, 'app'))).out).toMatch(/cannot write .*app\.fleet-fence\.lock/)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
