/**
 * Every help screen of the built binary says what the command does, its defaults and one example.
 * The command list is walked from the real command tree, so a new command without an example fails.
 */
import { readFileSync } from 'node:fs'
import path from 'node:path'
import type { Command } from 'commander'
import { describe, expect, it } from 'vitest'

import { buildProgram } from '../src/cli/main.js'
import { runFleet, type FleetRun } from './support/cli.js'
import { REPO_ROOT } from './support/origin.js'

/** Every command path below `fleet`, parents first: [], ['rollout'], ['rollout', 'start'], … */
function commandPaths(command: Command, prefix: string[] = []): string[][] {
  return [prefix, ...command.commands.flatMap((sub) => commandPaths(sub, [...prefix, sub.name()]))]
}

const help = (args: string[]): Promise<FleetRun> => runFleet([...args, '--help'], { cwd: REPO_ROOT, env: {} })

describe('help', () => {
  it('every command has a description and an example, and exits 0', async () => {
    const paths = commandPaths(buildProgram())
    expect(paths.length).toBeGreaterThan(15)
    const screens = new Map<string, FleetRun>()
    // Four at a time: the machine is shared.
    for (let i = 0; i < paths.length; i += 4)
      await Promise.all(paths.slice(i, i + 4).map(async (p) => screens.set(p.join(' '), await help(p))))
    for (const [name, run] of screens) {
      const where = `fleet ${name} --help`
      expect(run.code, where).toBe(0)
      expect(run.stdout, where).toMatch(/^Usage: fleet/)
      // Commander prints the description right after the usage line.
      expect(run.stdout.split('\n')[2]?.trim().length, `${where}: description`).toBeGreaterThan(10)
      expect(run.stdout, where).toMatch(/\nExamples?:\n {2}fleet /)
    }
    expect(screens.get('rollout')!.stdout).not.toMatch(/start a rollout and follow it/)
    for (const sub of ['start', 'status', 'resume', 'abort']) expect(screens.get('rollout')!.stdout).toMatch(new RegExp(`\\n {2}${sub}\\b`))
    expect(screens.get('hosts')!.stdout).toMatch(/\n {2}update \[options\] <name>/)
  })

  it('rollout start shows the built-in defaults of the config', async () => {
    const run = await help(['rollout', 'start'])
    const text = run.stdout.replace(/\s+/g, ' ')
    expect(text).toMatch(/--stages <list> cumulative percentages \(default: 10,50,100\)/)
    expect(text).toMatch(/--failure-threshold <rate> .*\(default: 0\.3\)/)
    expect(text).toMatch(/--concurrency <n> .*\(default: 5\)/)
    expect(text).toMatch(/--stage-delay <duration> .*\(default: 10s\)/)
    expect(text).toMatch(/--ref <ref> .*\(default: app\.branch, main\)/)
    expect(text).toMatch(/--seed <seed> .*default: the target commit/)
  })

  it('--version is the version in package.json', async () => {
    const { version } = JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }
    const run = await runFleet(['--version'], { cwd: REPO_ROOT, env: {} })
    expect(run.stdout).toBe(`${version}\n`)
  })
})
