import { execFileSync } from 'node:child_process'
import { describe, expect, it } from 'vitest'

import { gitCheckout, gitFetch, gitHead, operatorStep, parseLsRemote, template } from '../src/remote/commands.js'
import { quote, render } from '../src/remote/shell.js'
import { checkAddress, checkRef, checkServiceName, checkSha } from '../src/remote/validate.js'
import type { Sha } from '../src/types.js'

const SHA = 'a'.repeat(40) as Sha
const values = { service: 'rachel8', appDir: '/home/rachel/rachel', sha: SHA, remote: 'origin', branch: 'main' }

/** What a real POSIX shell makes of a quoted word: it must be the exact original string. */
const echoed = (word: string): string => execFileSync('sh', ['-c', `printf %s ${word}`], { encoding: 'utf8' })

describe('quote', () => {
  it.each([
    'plain',
    "it's",
    '; rm -rf ~',
    '$(touch /tmp/pwned)',
    '`id`',
    'a\nb',
    "'''",
    '-rf',
    '',
    '   spaces  ',
    '\\$HOME "x"',
  ])('keeps %j one literal word', (value) => {
    expect(echoed(quote(value))).toBe(value)
  })

  it('refuses NUL bytes', () => {
    expect(() => quote('a\0b')).toThrow(/NUL/)
  })
})

describe('builders', () => {
  it('build git commands as argv', () => {
    expect(render(gitHead('/srv/app'))).toBe('git -C /srv/app rev-parse --verify HEAD')
    expect(render(gitCheckout('/srv/my app', SHA))).toBe(`git -C '/srv/my app' checkout --quiet --force --detach ${SHA}`)
    expect(gitFetch('/srv/app', 'origin', SHA)).toBe(
      `git -C /srv/app fetch --quiet --tags --prune --prune-tags -- origin && { git -C /srv/app cat-file -e '${SHA}^{commit}' 2>/dev/null || git -C /srv/app fetch --quiet -- origin ${SHA}; }`,
    )
  })

  it('templates operator steps with quoted values', () => {
    expect(template('sudo systemctl restart {service}', values)).toBe('sudo systemctl restart rachel8')
    expect(operatorStep('bun install', { ...values, appDir: "/home/o'neil/app" })).toBe(`cd '/home/o'\\''neil/app' && bun install`)
    const hostile = template('echo {branch}', { ...values, branch: '$(touch /tmp/fleet-pwned); rm -rf ~' })
    expect(hostile).toBe(`echo '$(touch /tmp/fleet-pwned); rm -rf ~'`)
    expect(execFileSync('sh', ['-c', hostile], { encoding: 'utf8' })).toBe('$(touch /tmp/fleet-pwned); rm -rf ~\n')
  })
})

describe('validators', () => {
  it('accept ordinary values and refuse hostile ones', () => {
    expect(checkRef('main')).toBeNull()
    expect(checkRef('release/2.3')).toBeNull()
    expect(checkRef('v1.0.0')).toBeNull()
    for (const bad of ['-x', 'a..b', 'a b', 'main;rm', 'x~1', 'a:b', '.hidden', 'a/', 'a.lock', '@', 'a@{1}', 'a\nb'])
      expect(checkRef(bad), bad).not.toBeNull()
    expect(checkSha(SHA)).toBeNull()
    expect(checkSha('abc')).not.toBeNull()
    expect(checkServiceName('rachel8')).toBeNull()
    expect(checkServiceName('x; reboot')).not.toBeNull()
    expect(checkAddress('10.0.0.1')).toBeNull()
    expect(checkAddress('vps-1.example.com')).toBeNull()
    expect(checkAddress('::1')).toBeNull()
    expect(checkAddress('$(id)')).not.toBeNull()
    expect(checkAddress('-oProxyCommand=x')).not.toBeNull()
  })
})

describe('parseLsRemote', () => {
  const out = [
    `${'1'.repeat(40)}\trefs/heads/main`,
    `${'2'.repeat(40)}\trefs/tags/v1`,
    `${'3'.repeat(40)}\trefs/tags/v1^{}`,
    `${'4'.repeat(40)}\trefs/remotes/origin/main`,
  ].join('\n')
  it('prefers the branch, then the peeled tag', () => {
    expect(parseLsRemote(out, 'main')).toEqual({ sha: '1'.repeat(40) })
    expect(parseLsRemote(out, 'v1')).toEqual({ sha: '3'.repeat(40) })
    expect(parseLsRemote(out, 'nope')).toEqual({ error: 'ref "nope" was not found on the remote' })
  })
})

describe('template and shell variables', () => {
  it('leaves ${name} shell syntax alone', () => {
    expect(template('curl -fsS localhost:${PORT}/health?s=${service} && echo {service}', values)).toBe(
      'curl -fsS localhost:${PORT}/health?s=${service} && echo rachel8',
    )
  })
})
