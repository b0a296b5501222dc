/**
 * A hex name is a commit's name, never a branch's or a tag's: on real git repositories, the
 * commands fleet runs on a host (remote/commands.ts) with the parser the engine uses.
 */
import { execFile } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { FleetError } from '../src/errors.js'
import { gitFetchAll, gitObjectsNamed } from '../src/remote/commands.js'
import { commitNamed } from '../src/rollout/target.js'

const run = promisify(execFile)
const git = async (cwd: string, ...args: string[]) => (await run('git', args, { cwd, env: { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@t', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@t' } })).stdout.trim()
const sh = async (command: string) => (await run('sh', ['-c', command])).stdout

let work: string
let origin: string
let host: string
const shas: string[] = []

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'fleet-refs-'))
  origin = path.join(work, 'origin')
  await run('git', ['init', '-q', '-b', 'main', origin])
  for (const v of ['v1', 'v2']) {
    await writeFile(path.join(origin, 'app.txt'), v)
    await git(origin, 'add', '.')
    await git(origin, 'commit', '-q', '-m', v)
    shas.push(await git(origin, 'rev-parse', 'HEAD'))
  }
  host = path.join(work, 'host')
  await run('git', ['clone', '-q', origin, host])
})
afterAll(async () => {
  await rm(work, { recursive: true, force: true })
})

const lookUp = async (name: string) => commitNamed(await sh(gitObjectsNamed(host, name)), name, 'h01')

describe('hex names on a host', () => {
  it('a unique abbreviation is its commit; an unknown one is no commit', async () => {
    expect(await lookUp(shas[0]!.slice(0, 8))).toBe(shas[0])
    expect(await lookUp('deadbee')).toBeNull()
  })

  it('a tag named like a commit abbreviation never wins: refused as ambiguous, the candidates named', async () => {
    const short = shas[0]!.slice(0, 8)
    await git(origin, 'tag', short, shas[1]!)
    await sh(gitFetchAll(host, 'origin'))
    // What plain `git rev-parse` would do: the tag wins.
    expect(await git(host, 'rev-parse', `${short}^{commit}`)).toBe(shas[1])
    const error = await lookUp(short).then(
      () => null,
      (e: unknown) => e,
    )
    expect(error).toBeInstanceOf(FleetError)
    expect((error as FleetError).exitCode).toBe(2)
    expect((error as FleetError).message).toContain(`${short} is ambiguous on h01: ${shas[0]}, refs/tags/${short}`)
    // The full name is the commit, tag or not.
    expect(await lookUp(shas[0]!)).toBe(shas[0])
  })

  it('a tag deleted on the origin is gone from the host after the next fetch (--prune-tags)', async () => {
    const short = shas[0]!.slice(0, 8)
    await git(origin, 'tag', '-d', short)
    await sh(gitFetchAll(host, 'origin'))
    expect(await git(host, 'tag', '--list')).toBe('')
    expect(await lookUp(short)).toBe(shas[0])
  })
})
