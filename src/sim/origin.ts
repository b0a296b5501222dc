/**
 * The "origin" of the simulated fleet: a bare git repository built from the release sources in
 * fixtures/releases/<name>/. History (commit dates are fixed, so the SHAs are the same on every run):
 *
 *   main:                v1 ── v2
 *   next:                        └─ v3
 *   broken/crash:                └─ crash        (server.js throws at start)
 *   broken/bad-install:          └─ bad-install  (`bun install` fails, offline and fast)
 *   unhealthy/errors:            └─ errors       (starts and passes verify; 20% of requests are 5xx)
 *   unhealthy/slow:              └─ slow         (starts and passes verify; latency 10x v2's)
 *
 * Every release is tagged with its name (v1, v2, v3, crash, bad-install, errors, slow). Good releases
 * have no dependencies, so `bun install` neither touches the network nor writes a lockfile. Every
 * release gets fixtures/sim-app-metrics.js as metrics.js: the app serves /metrics for Prometheus.
 */
import { execFile } from 'node:child_process'
import { cp, mkdir, readdir, rm } from 'node:fs/promises'
import path from 'node:path'
import { packageRoot } from '../package-root.js'
import { promisify } from 'node:util'

const execFileAsync = promisify(execFile)

export const REPO_ROOT = packageRoot()
export const FIXTURES_DIR = path.join(REPO_ROOT, 'fixtures')
export const RELEASES_DIR = path.join(FIXTURES_DIR, 'releases')

export type Release = 'v1' | 'v2' | 'v3' | 'crash' | 'bad-install' | 'errors' | 'slow'
export const RELEASES: readonly Release[] = ['v1', 'v2', 'v3', 'crash', 'bad-install', 'errors', 'slow']
const APP_METRICS = path.join(FIXTURES_DIR, 'sim-app-metrics.js')

export interface OriginShas {
  v1: string
  v2: string
  v3: string
  crash: string
  badInstall: string
  errors: string
  slow: string
}

export interface Origin {
  /** Absolute path of the bare repository (usable as a git remote URL). */
  path: string
  shas: OriginShas
}

/** Maps a release name to its key in {@link OriginShas}. */
export function shaOf(shas: OriginShas, release: Release): string {
  return release === 'bad-install' ? shas.badInstall : shas[release]
}

/**
 * Environment for git commands run by the fixture: fixed identity and dates, and no system or
 * global git config, so it works (and yields the same SHAs) on any machine.
 */
export function gitEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    ...process.env,
    GIT_AUTHOR_NAME: 'Fleet Fixture',
    GIT_AUTHOR_EMAIL: 'fixture@fleet.test',
    GIT_COMMITTER_NAME: 'Fleet Fixture',
    GIT_COMMITTER_EMAIL: 'fixture@fleet.test',
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_CONFIG_GLOBAL: '/dev/null',
    GIT_TERMINAL_PROMPT: '0',
    ...extra,
  }
}

export async function git(cwd: string, args: string[], extraEnv: Record<string, string> = {}): Promise<string> {
  try {
    const { stdout } = await execFileAsync('git', args, { cwd, env: gitEnv(extraEnv) })
    return stdout.trim()
  } catch (err) {
    const e = err as { stderr?: string; message: string }
    throw new Error(`git ${args.join(' ')} (in ${cwd}) failed: ${e.stderr?.trim() || e.message}`)
  }
}

/**
 * Creates `<dir>/origin.git` (dir must exist) and returns its path and the SHA of every release.
 * A scratch worktree `<dir>/origin-work` is used and removed.
 */
export async function createOrigin(dir: string): Promise<Origin> {
  const work = path.join(dir, 'origin-work')
  const bare = path.join(dir, 'origin.git')
  await mkdir(work, { recursive: true })
  await git(work, ['init', '-q', '-b', 'main'])

  let tick = 0
  const commit = async (release: Release): Promise<string> => {
    // Replace the whole tree with the release's sources.
    for (const entry of await readdir(work)) {
      if (entry !== '.git') await rm(path.join(work, entry), { recursive: true, force: true })
    }
    await cp(path.join(RELEASES_DIR, release), work, { recursive: true })
    await cp(APP_METRICS, path.join(work, 'metrics.js'))
    await git(work, ['add', '-A'])
    const date = `2024-01-${String(1 + tick++).padStart(2, '0')}T12:00:00Z`
    await git(work, ['commit', '-q', '-m', `rachel8 ${release}`], { GIT_AUTHOR_DATE: date, GIT_COMMITTER_DATE: date })
    await git(work, ['tag', release])
    return git(work, ['rev-parse', 'HEAD'])
  }

  const v1 = await commit('v1')
  const v2 = await commit('v2')
  await git(work, ['checkout', '-q', '-b', 'next', 'v2'])
  const v3 = await commit('v3')
  await git(work, ['checkout', '-q', '-b', 'broken/crash', 'v2'])
  const crash = await commit('crash')
  await git(work, ['checkout', '-q', '-b', 'broken/bad-install', 'v2'])
  const badInstall = await commit('bad-install')
  await git(work, ['checkout', '-q', '-b', 'unhealthy/errors', 'v2'])
  const errors = await commit('errors')
  await git(work, ['checkout', '-q', '-b', 'unhealthy/slow', 'v2'])
  const slow = await commit('slow')
  await git(work, ['checkout', '-q', 'main'])

  await git(dir, ['clone', '-q', '--bare', work, bare])
  // Let clients fetch a bare commit id (`git fetch origin <sha>`), as GitHub and friends allow.
  await git(bare, ['config', 'uploadpack.allowReachableSHA1InWant', 'true'])
  await git(bare, ['config', 'uploadpack.allowAnySHA1InWant', 'true'])
  await rm(work, { recursive: true, force: true })

  return { path: bare, shas: { v1, v2, v3, crash, badInstall, errors, slow } }
}
