/**
 * `fleet completion bash|zsh|fish`: scripts derived from the commander tree; the bash one is
 * sourced in a real bash and its function called as bash calls it (COMP_WORDS, COMP_CWORD), host
 * names coming from the inventory through the built `fleet __complete hosts`.
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, symlink, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { buildProgram } from '../src/cli/main.js'
import { completionScript, completionTree } from '../src/report/completion.js'
import { cliStore, FLEET_BIN, runFleet, type CliStore } from './support/cli.js'
import { workdir } from './support/fault-kit.js'

const HOSTILE = '$(touch pwned)`touch pwned2`'
let store: CliStore
let cwd: string
let bin: string

beforeAll(async () => {
  store = await cliStore()
  cwd = await workdir({ database: store.database })
  for (const [name, address] of [['web-1', '10.0.0.1'], ['web-2', '10.0.0.2'], ['db-1', '10.0.0.3'], [HOSTILE, '10.0.0.4']]) {
    const added = await runFleet(['hosts', 'add', name!, address!], { cwd })
    expect(added.code, added.stderr).toBe(0)
  }
  bin = await mkdtemp(path.join(os.tmpdir(), 'fleet-bin-'))
  await symlink(FLEET_BIN, path.join(bin, 'fleet'))
  await writeFile(path.join(cwd, 'fleet.bash'), completionScript('bash', buildProgram()))
}, 60_000)

afterAll(async () => {
  await store?.drop()
})

/** What bash offers for the words typed so far (the last one is being completed). */
function complete(...words: string[]): string[] {
  const script = `source ./fleet.bash
COMP_WORDS=(fleet ${words.map((w) => `'${w.replace(/'/g, `'\\''`)}'`).join(' ')})
COMP_CWORD=${words.length}
COMP_LINE="\${COMP_WORDS[*]}"
COMP_POINT=\${#COMP_LINE}
_fleet
printf '%s\\n' "\${COMPREPLY[@]}"`
  const out = execFileSync('bash', ['--norc', '--noprofile', '-c', script], { cwd, env: { PATH: `${bin}:${process.env.PATH}`, HOME: process.env.HOME, NO_COLOR: '1' }, encoding: 'utf8' })
  return out.split('\n').filter(Boolean)
}

describe('fleet completion', () => {
  it('is derived from the command tree: every visible command and option, no hidden one', () => {
    const tree = completionTree(buildProgram())
    expect(tree[0]!.subcommands).toEqual(expect.arrayContaining(['rollout', 'hosts', 'rollback', 'dashboard', 'completion', 'history']))
    expect(tree[0]!.subcommands).not.toContain('__complete')
    expect(tree.find((n) => n.path.join(' ') === 'rollback')!.argument).toBe('host')
    expect(tree.find((n) => n.path.join(' ') === 'hosts add')!.argument).toBe(null)
    expect(tree.find((n) => n.path.join(' ') === 'hosts import')!.argument).toBe('file')
  })

  it('bash: commands, subcommands and options of the command being typed', () => {
    expect(complete('')).toEqual(expect.arrayContaining(['rollout', 'hosts', 'dashboard', 'completion', 'history']))
    expect(complete('ro')).toEqual(['rollout', 'rollback'])
    expect(complete('rollout', '')).toEqual(expect.arrayContaining(['start', 'status', 'resume', 'pause', 'promote', 'tick', 'abort', 'events']))
    expect(complete('rollout', 'start', '--re')).toEqual(['--ref', '--reason'])
    expect(complete('rollout', 'start', '--ref', 'v1', '--c')).toEqual(expect.arrayContaining(['--concurrency', '--config']))
    expect(complete('dashboard', '--')).toEqual(expect.arrayContaining(['--port', '--host', '--json']))
    expect(complete('hosts', 'import', 'x.csv', '--format', '')).toEqual(['json', 'csv'])
    expect(complete('completion', '')).toEqual(['bash', 'zsh', 'fish'])
  })

  it('bash: host names from the inventory where an argument is a host, never expanded', () => {
    expect(complete('rollback', 'web')).toEqual(['web-1', 'web-2'])
    expect(complete('hosts', 'disable', 'web-1', '')).toHaveLength(4)
    expect(complete('hosts', 'check', 'd')).toEqual(['db-1'])
    expect(complete('rollback', '$')).toEqual([String.raw`\$\(touch\ pwned\)\`touch\ pwned2\``])
    expect(existsSync(path.join(cwd, 'pwned')) || existsSync(path.join(cwd, 'pwned2'))).toBe(false)
    // A new host's name is not completed from the inventory.
    expect(complete('hosts', 'add', 'web')).toEqual([])
    // The inventory of the --config on the line: another config, other hosts (none here).
    expect(complete('--config', '/nonexistent/rollout.config.json', 'rollback', 'web')).toEqual([])
  })

  it('`fleet __complete hosts` prints the names, one a line; `fleet completion` each shell', async () => {
    const names = await runFleet(['__complete', 'hosts'], { cwd })
    expect(names.code, names.stderr).toBe(0)
    expect(names.stdout.split('\n').filter(Boolean).sort()).toEqual([HOSTILE, 'db-1', 'web-1', 'web-2'].sort())
    for (const shell of ['bash', 'zsh', 'fish']) {
      const run = await runFleet(['completion', shell], { cwd })
      expect(run.code, run.stderr).toBe(0)
      expect(run.stdout).toMatch(/rollout/)
    }
    expect((await runFleet(['completion', 'tcsh'], { cwd })).code).toBe(2)
    expect(spawnSync('bash', ['-n', path.join(cwd, 'fleet.bash')]).status).toBe(0)
    const fish = completionScript('fish', buildProgram())
    expect(fish).toContain("complete -c fleet -n '__fish_use_subcommand' -a rollout")
    expect(fish).toContain("-a '(fleet __complete hosts 2>/dev/null)'")
    for (const shell of ['zsh', 'fish'] as const) {
      const found = spawnSync('sh', ['-c', `command -v ${shell}`]).status === 0
      if (found) expect(spawnSync(shell, ['-n'], { input: completionScript(shell, buildProgram()) }).status, shell).toBe(0)
    }
  })
})
