// Install outside the clone, as an operator does: `npm pack` the built tree, `npm install -g` the
// tarball into a fresh prefix, then run the installed `fleet` from an unrelated directory with a
// clean environment (no FLEET_* variables, no repo node_modules/.bin on PATH, so no bun): `--help`
// and a real rollout against the sshd test fleet. The tarball is packed with --ignore-scripts from
// the dist/ that `npm test` has just built, and installed with --offline: the tarball bundles its
// runtime dependencies (bundleDependencies), so the test needs no network and no npm cache.
import { execFile, spawn } from 'node:child_process'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { REPO_ROOT } from './support/origin.js'
import { startTestFleet, type TestFleet } from './support/test-fleet.js'

const execFileAsync = promisify(execFile)

let work: string
let prefix: string
let packedFiles: string[] = []
let bundled: string[] = []
let fleet: TestFleet | undefined

/** The environment of a user's shell: nothing from npm, vitest or the test suite. */
function userEnv(): NodeJS.ProcessEnv {
  const dirs = [path.join(prefix, 'bin'), path.dirname(process.execPath), '/usr/local/bin', '/usr/bin', '/bin']
  return { PATH: dirs.join(':'), HOME: process.env.HOME, NO_COLOR: '1', LANG: 'C.UTF-8' }
}

function runInstalled(args: string[], cwd: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(path.join(prefix, 'bin', 'fleet'), args, { cwd, env: userEnv(), stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    const timer = setTimeout(() => child.kill('SIGKILL'), 90_000)
    child.on('error', reject)
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
  })
}

function npmEnv(): NodeJS.ProcessEnv {
  // npm passes its own settings (prefix, cache...) to scripts as npm_config_*: start from a user's view.
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k)))
}

beforeAll(async () => {
  if (!existsSync(path.join(REPO_ROOT, 'dist', 'bundle', 'main.js'))) throw new Error('dist/bundle is missing: run `npm run build` (npm test does)')
  work = await mkdtemp(path.join(os.tmpdir(), 'fleet-install-'))
  prefix = path.join(work, 'prefix')
  const { stdout } = await execFileAsync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], {
    cwd: REPO_ROOT,
    env: npmEnv(),
    maxBuffer: 16 << 20,
  })
  const [pack] = JSON.parse(stdout) as [{ filename: string; files: { path: string }[]; bundled: string[] }]
  packedFiles = pack.files.map((f) => f.path)
  bundled = pack.bundled
  try {
    await execFileAsync(
      'npm',
      ['install', '--global', '--prefix', prefix, '--offline', '--ignore-scripts', '--no-audit', '--no-fund', path.join(work, pack.filename)],
      { cwd: work, env: npmEnv(), maxBuffer: 16 << 20 },
    )
  } catch (err) {
    const e = err as { stderr?: string }
    throw new Error(`npm install -g --offline of the tarball failed (the tarball should bundle every runtime dependency):\n${e.stderr ?? String(err)}`)
  }
}, 120_000)

afterAll(async () => {
  await fleet?.stop()
  if (work) await rm(work, { recursive: true, force: true })
})

describe('install from a tarball', () => {
  it('ships the built CLI and what fleet demo needs, and builds nothing at install time', () => {
    for (const f of ['bin/fleet', 'dist/bundle/main.js', 'fixtures/sim-bun.mjs', 'fixtures/sim-bin/bun', 'fixtures/sim-bin/systemctl', 'fixtures/releases/v2/server.js', 'rollout.config.example.json']) {
      expect(packedFiles).toContain(f)
    }
    // The bundle only: no sources, no tests, no unbundled tsc output (its imports would need the bundled-in packages).
    expect(packedFiles.filter((f) => /^(src|test|bench)\/|^dist\/(?!bundle\/)/.test(f))).toEqual([])
    // Every runtime dependency travels in the tarball, none of the development ones.
    const manifestDeps = JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string> }
    for (const dep of Object.keys(manifestDeps.dependencies)) expect(bundled).toContain(dep)
    for (const dev of ['typescript', 'vitest', 'bun']) expect(bundled).not.toContain(dev)
    const manifest = JSON.parse(readFileSync(path.join(prefix, 'lib', 'node_modules', 'fleet', 'package.json'), 'utf8')) as { scripts: Record<string, string> }
    // An install-time build would need typescript, a devDependency the user does not have.
    for (const script of ['prepare', 'preinstall', 'install', 'postinstall']) expect(manifest.scripts[script]).toBeUndefined()
    // No test-only switches in the shipped code.
    const bundle = path.join(prefix, 'lib', 'node_modules', 'fleet', 'dist', 'bundle')
    // (Reading one is what counts: the config names the FLEET_TEST_ prefix only to let such variables pass.)
    for (const file of readdirSync(bundle)) expect(readFileSync(path.join(bundle, file), 'utf8'), file).not.toMatch(/env(?:\.|\[['"])(?:FLEET_TEST_|VITEST)|process\.env\.CI\b/)
  })

  it('runs fleet --help from another directory', async () => {
    const r = await runInstalled(['--help'], work)
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    expect(r.stdout).toContain('Usage: fleet')
    expect(r.stdout).toMatch(/\bdemo\b/)
  })

  it('runs a real rollout from another directory, with its store next to the config', async () => {
    fleet = await startTestFleet({ hosts: 2 })
    const dir = await mkdtemp(path.join(work, 'ops-'))
    const h = fleet.hosts
    await writeFile(
      path.join(dir, 'rollout.config.json'),
      JSON.stringify({
        database: { dir: '.fleet' },
        ssh: { user: h[0]!.user, privateKey: fleet.clientKey, knownHosts: fleet.knownHosts, connectTimeout: '10s' },
        verify: { delay: '300ms', retries: 2, interval: '300ms' },
        rollout: { stageDelay: '0s' },
      }),
    )
    // Both hosts in one command (the first command here creates the store: initdb from the installed package).
    await writeFile(path.join(dir, 'hosts.json'), JSON.stringify(h.map((host) => ({ name: host.name, address: host.address, port: host.port, user: host.user, app_dir: host.appDir }))))
    const add = await runInstalled(['hosts', 'import', 'hosts.json'], dir)
    expect(add.stderr).toBe('')
    expect(add.code).toBe(0)
    expect(add.stdout).toBe('imported 2 hosts (2 added, 0 updated)\n')
    const start = await runInstalled(['rollout', 'start', '--ref', 'main', '--yes'], dir)
    expect(start.code, start.stderr).toBe(0)
    for (const host of h) expect(await fleet.head(host.name)).toBe(fleet.origin.shas.v2)
    expect(existsSync(path.join(dir, '.fleet'))).toBe(true)
  })
})
