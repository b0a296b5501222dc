/**
 * `fleet init` through the built binary: it writes the shipped config example (found next to the
 * installed package, not in the working directory) where the other commands look for the config,
 * and never overwrites a file unless told to.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'

import { runFleet } from './support/cli.js'
import { REPO_ROOT } from './support/origin.js'

let cwd: string
const example = () => readFile(path.join(REPO_ROOT, 'rollout.config.example.json'), 'utf8')
const fleet = (args: string[], env: NodeJS.ProcessEnv = {}) => runFleet(args, { cwd, env })

beforeEach(async () => {
  cwd = await mkdtemp(path.join(os.tmpdir(), 'fleet-init-'))
})
afterEach(() => rm(cwd, { recursive: true, force: true }))

describe('fleet init', () => {
  it('writes the config example to ./rollout.config.json, which the other commands then use', async () => {
    const run = await fleet(['init'])
    expect(run.code, run.stderr).toBe(0)
    const written = path.join(cwd, 'rollout.config.json')
    expect(run.stdout).toMatch(new RegExp(`^wrote ${written.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: every key at its default`))
    expect(await readFile(written, 'utf8')).toBe(await example())

    // The store it names is resolved next to it; hosts list reads it without creating one.
    const list = await fleet(['hosts', 'list'])
    expect(list.code, list.stderr).toBe(0)
    expect(list.stderr).toContain(`no fleet store at ${path.join(cwd, '.fleet')} yet`)
  })

  it('refuses an existing file (exit 2, nothing changed) unless --force, which also replaces a broken one', async () => {
    const file = path.join(cwd, 'rollout.config.json')
    await writeFile(file, '{ "ssh": { "user": "deploy" }, ')
    const refused = await fleet(['init'])
    expect(refused.code).toBe(2)
    expect(refused.stdout).toBe('')
    expect(refused.stderr).toBe(`fleet: ${file} already exists (nothing changed); \`fleet init --force\` overwrites it\n`)
    expect(await readFile(file, 'utf8')).toBe('{ "ssh": { "user": "deploy" }, ')

    const forced = await fleet(['init', '--force', '--json'])
    expect(forced.code, forced.stderr).toBe(0)
    expect(JSON.parse(forced.stdout)).toEqual({ written: file })
    expect(await readFile(file, 'utf8')).toBe(await example())
  })

  it('writes to --config (creating its directories), else to $FLEET_CONFIG', async () => {
    const run = await fleet(['init', '--config', 'ops/prod/fleet.json'])
    expect(run.code, run.stderr).toBe(0)
    expect(await readFile(path.join(cwd, 'ops/prod/fleet.json'), 'utf8')).toBe(await example())

    const fromEnv = await fleet(['init'], { FLEET_CONFIG: path.join(cwd, 'env.json') })
    expect(fromEnv.code, fromEnv.stderr).toBe(0)
    expect(await readFile(path.join(cwd, 'env.json'), 'utf8')).toBe(await example())

    // A path that cannot be a file is bad input, not an internal error.
    await writeFile(path.join(cwd, 'plain'), '')
    const bad = await fleet(['init', '--config', 'plain/fleet.json'])
    expect(bad.code).toBe(2)
    expect(bad.stderr).toMatch(/^fleet: cannot write .*plain\/fleet\.json: .*\(nothing changed\)\n$/)
  })
})
