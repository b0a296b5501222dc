// Self-test of the test fleet (test/support/test-fleet.ts): everything here goes through the system
// `ssh` client and real sshd, git, bun and the simulated systemctl, the same way `fleet` will.
import { spawn } from 'node:child_process'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import pg from 'pg'
import { Client } from 'ssh2'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createOrigin, git } from './support/origin.js'
import { createTestDatabase, pgAvailable, pgSkipReason } from './support/postgres.js'
import { SIM_BIN, startTestFleet, type SimHost, type TestFleet } from './support/test-fleet.js'

interface Result {
  code: number | null
  stdout: string
  stderr: string
}

function sshArgs(fleet: TestFleet, h: SimHost, knownHosts = fleet.knownHosts): string[] {
  return [
    '-F', '/dev/null',
    '-i', fleet.clientKey,
    '-o', 'IdentitiesOnly=yes',
    '-o', `UserKnownHostsFile=${knownHosts}`,
    '-o', 'GlobalKnownHostsFile=/dev/null',
    '-o', 'StrictHostKeyChecking=yes',
    '-o', 'BatchMode=yes',
    '-o', 'ConnectTimeout=5',
    '-o', 'LogLevel=ERROR',
    '-p', String(h.port),
    `${h.user}@${h.address}`,
  ]
}

function ssh(fleet: TestFleet, h: SimHost, command: string, knownHosts?: string): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn('ssh', [...sshArgs(fleet, h, knownHosts), command], { stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    child.on('error', reject)
    child.on('close', (code) => resolve({ code, stdout: stdout.trim(), stderr: stderr.trim() }))
  })
}

async function ok(fleet: TestFleet, h: SimHost, command: string): Promise<string> {
  const r = await ssh(fleet, h, command)
  if (r.code !== 0) throw new Error(`ssh ${h.name} '${command}' exited ${r.code}: ${r.stderr || r.stdout}`)
  return r.stdout
}

/** Command lines of the processes running in that simulated host's sessions or service. */
function hostProcesses(hostDir: string): string[] {
  const out: string[] = []
  for (const pid of readdirSync('/proc').filter((e) => /^\d+$/.test(e))) {
    try {
      if (!readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').includes(`FLEET_SIM_HOST=${hostDir}`)) continue
      out.push(readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim())
    } catch {
      // exited meanwhile
    }
  }
  return out
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

async function eventually<T>(fn: () => Promise<T>, check: (v: T) => boolean, ms = 3000): Promise<T> {
  const end = Date.now() + ms
  for (;;) {
    const v = await fn()
    if (check(v) || Date.now() > end) return v
    await sleep(50)
  }
}

/** Move a host to a commit the way fleet does: fetch, detached checkout, install, restart. */
async function deploy(fleet: TestFleet, h: SimHost, sha: string): Promise<void> {
  await ok(fleet, h, `cd ${h.appDir} && git fetch -q origin && git checkout -q --detach ${sha}`)
  await ok(fleet, h, `cd ${h.appDir} && bun install`)
  await ok(fleet, h, `cd ${h.appDir} && sudo systemctl restart rachel8`)
}

describe('test fleet over real OpenSSH sshd', { timeout: 30_000 }, () => {
  let fleet: TestFleet
  let h01: SimHost
  let h02: SimHost

  beforeAll(async () => {
    fleet = await startTestFleet({ hosts: 2, ssh: 'sshd' })
    h01 = fleet.host('h01')
    h02 = fleet.host('h02')
  })
  afterAll(async () => {
    await fleet?.stop()
  })

  it('starts every host at v1 with its service running', async () => {
    expect(fleet.hosts.map((h) => h.name)).toEqual(['h01', 'h02'])
    expect(readFileSync(fleet.knownHosts, 'utf8')).toMatch(new RegExp(`^\\[127\\.0\\.0\\.1\\]:${h01.port} ssh-ed25519 AAAA`, 'm'))
    for (const h of fleet.hosts) {
      expect(h.sshdPid).toBeGreaterThan(0)
      expect(await fleet.head(h.name)).toBe(fleet.origin.shas.v1)
      const svc = await eventually(() => fleet.service(h.name), (s) => s.sha !== null)
      expect(svc).toEqual({ running: true, sha: fleet.origin.shas.v1 })
    }
  })

  it('gives sessions the simulated host environment and PATH', async () => {
    const before = fleet.acceptedConnections('h01')
    const out = await ok(fleet, h01, 'echo "$FLEET_SIM_HOST"; echo "$PATH"; for c in systemctl bun sudo git; do command -v $c; done; git -C ' + h01.appDir + ' rev-parse HEAD')
    const [simHost, pathVar, systemctl, bun, sudo, gitBin, head] = out.split('\n')
    expect(simHost).toBe(h01.dir)
    expect(pathVar?.split(':')[0]).toBe(SIM_BIN)
    expect(systemctl).toBe(path.join(SIM_BIN, 'systemctl'))
    expect(bun).toBe(path.join(SIM_BIN, 'bun'))
    expect(sudo).toBe(path.join(SIM_BIN, 'sudo'))
    expect(gitBin).toMatch(/\/git$/)
    expect(head).toBe(fleet.origin.shas.v1)
    expect(fleet.acceptedConnections('h01')).toBe(before + 1)
    await ok(fleet, h01, 'true')
    expect(fleet.acceptedConnections('h01')).toBe(before + 2)
  })

  it('rolls a host forward to v2 with a clean worktree and a verified service', async () => {
    await deploy(fleet, h01, fleet.origin.shas.v2)
    expect(await ok(fleet, h01, `cd ${h01.appDir} && git status --porcelain --untracked-files=no`)).toBe('')
    expect(await fleet.head('h01')).toBe(fleet.origin.shas.v2)
    await sleep(1000)
    expect((await ssh(fleet, h01, 'systemctl is-active --quiet rachel8')).code).toBe(0)
    expect(await fleet.service('h01')).toEqual({ running: true, sha: fleet.origin.shas.v2 })
  })

  it('crash release: restart succeeds, then the service is not active', async () => {
    await deploy(fleet, h01, fleet.origin.shas.crash)
    // Active once launched, until it crashes: wait for that (at most 3 s) rather than a fixed while.
    const r = await eventually(() => ssh(fleet, h01, 'systemctl is-active rachel8'), (x) => x.code !== 0)
    expect(r.code).not.toBe(0)
    expect(r.stdout).toBe('failed')
    expect((await fleet.service('h01')).running).toBe(false)
    // ...and rolling back brings it up again.
    await deploy(fleet, h01, fleet.origin.shas.v1)
    await sleep(500)
    expect((await ssh(fleet, h01, 'systemctl is-active --quiet rachel8')).code).toBe(0)
  })

  it('bad-install release: bun install fails fast, offline', async () => {
    await ok(fleet, h02, `cd ${h02.appDir} && git checkout -q --detach ${fleet.origin.shas.badInstall}`)
    const started = Date.now()
    const r = await ssh(fleet, h02, `cd ${h02.appDir} && bun install`)
    expect(r.code).not.toBe(0)
    expect(r.stderr).toMatch(/missing/)
    expect(Date.now() - started).toBeLessThan(5000)
    await ok(fleet, h02, `cd ${h02.appDir} && git checkout -q --detach ${fleet.origin.shas.v1} && bun install`)
  })

  it('new-release-crashes: v2 dies at start on that host, v1 still starts', async () => {
    await fleet.setFault('h02', 'new-release-crashes', true)
    await deploy(fleet, h02, fleet.origin.shas.v2)
    expect((await eventually(() => ssh(fleet, h02, 'systemctl is-active --quiet rachel8'), (x) => x.code !== 0)).code).not.toBe(0)
    await deploy(fleet, h02, fleet.origin.shas.v1)
    await sleep(700)
    expect((await ssh(fleet, h02, 'systemctl is-active --quiet rachel8')).code).toBe(0)
    expect(await fleet.service('h02')).toEqual({ running: true, sha: fleet.origin.shas.v1 })
    await fleet.setFault('h02', 'new-release-crashes', false)
  })

  it('service-broken: nothing starts, not even v1', async () => {
    await fleet.setFault('h02', 'service-broken', true)
    await ok(fleet, h02, 'sudo systemctl restart rachel8')
    expect((await eventually(() => ssh(fleet, h02, 'systemctl is-active --quiet rachel8'), (x) => x.code !== 0)).code).not.toBe(0)
    expect(await fleet.service('h02')).toEqual({ running: false, sha: null })
    await fleet.setFault('h02', 'service-broken', false)
    await ok(fleet, h02, 'sudo systemctl restart rachel8')
    expect(await eventually(() => fleet.service('h02'), (s) => s.sha !== null)).toEqual({ running: true, sha: fleet.origin.shas.v1 })
  })

  it('install-hangs: bun install hangs until its client goes away', async () => {
    await fleet.setFault('h02', 'install-hangs', true)
    const child = spawn('ssh', [...sshArgs(fleet, h02), `cd ${h02.appDir} && bun install`], { stdio: 'ignore' })
    const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)))
    const first = await Promise.race([exited, sleep(1500).then(() => 'still running' as const)])
    expect(first).toBe('still running')
    child.kill('SIGKILL')
    await exited
    // The hung install notices its session is gone within about a second.
    const hung = async () => hostProcesses(h02.dir).filter((cmd) => cmd.includes(`${SIM_BIN}/bun install`))
    expect(await eventually(hung, (l) => l.length === 0, 4000)).toEqual([])
    await fleet.setFault('h02', 'install-hangs', false)
  })

  it('serves an ssh2 client: several commands over one connection count as one login', async () => {
    const before = fleet.acceptedConnections('h01')
    const conn = new Client()
    await new Promise<void>((resolve, reject) => {
      conn.once('ready', resolve).once('error', reject)
      conn.connect({ host: h01.address, port: h01.port, username: h01.user, privateKey: readFileSync(fleet.clientKey) })
    })
    const exec = (cmd: string) =>
      new Promise<Result>((resolve, reject) => {
        conn.exec(cmd, (err, stream) => {
          if (err) return reject(err)
          let stdout = ''
          let stderr = ''
          let code: number | null = null
          stream.on('data', (d: Buffer) => (stdout += d.toString()))
          stream.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
          stream.on('exit', (c: number | null) => (code = c))
          stream.on('close', () => resolve({ code, stdout: stdout.trim(), stderr: stderr.trim() }))
        })
      })
    try {
      expect((await exec(`cd ${h01.appDir} && git rev-parse HEAD`)).stdout).toMatch(/^[0-9a-f]{40}$/)
      expect(await exec('systemctl is-active rachel8')).toMatchObject({ code: 0, stdout: 'active' })
      expect(await exec('echo oops >&2; exit 3')).toEqual({ code: 3, stdout: '', stderr: 'oops' })
    } finally {
      conn.end()
    }
    expect(fleet.acceptedConnections('h01')).toBe(before + 1)
  })

  // OpenSSH refuses "signal" requests for root logins (no post-auth privilege separation), so a
  // client gives up on a command by closing its channel: the hung install dies of SIGPIPE.
  it('install-hangs: closing the ssh2 channel ends the hung install, the connection stays usable', async () => {
    await fleet.setFault('h02', 'install-hangs', true)
    const conn = new Client()
    await new Promise<void>((resolve, reject) => {
      conn.once('ready', resolve).once('error', reject)
      conn.connect({ host: h02.address, port: h02.port, username: h02.user, privateKey: readFileSync(fleet.clientKey) })
    })
    const hung = async () => hostProcesses(h02.dir).filter((cmd) => cmd.includes(`${SIM_BIN}/bun install`))
    try {
      await new Promise<void>((resolve, reject) => {
        conn.exec(`cd ${h02.appDir} && bun install`, (err, stream) => {
          if (err) return reject(err)
          stream.on('data', () => {})
          stream.stderr.on('data', () => {})
          stream.on('close', () => resolve())
          setTimeout(() => stream.close(), 1200)
        })
      })
      expect(await eventually(hung, (l) => l.length === 0, 4000)).toEqual([])
      await new Promise<void>((resolve, reject) => {
        conn.exec('true', (err, stream) => {
          if (err) return reject(err)
          stream.on('data', () => {}).on('close', () => resolve())
        })
      })
    } finally {
      conn.end()
    }
    await fleet.setFault('h02', 'install-hangs', false)
  })

  it('killSshd refuses connections, restartSshd brings the same host back', async () => {
    const pid = h01.sshdPid
    await fleet.killSshd('h01')
    expect(h01.sshdPid).toBe(0)
    expect(existsSync(`/proc/${pid}/status`) && !/State:\s+Z/.test(readFileSync(`/proc/${pid}/status`, 'utf8'))).toBe(false)
    const refused = await ssh(fleet, h01, 'true')
    expect(refused.code).toBe(255)
    expect(refused.stderr).toMatch(/refused/i)
    await fleet.restartSshd('h01')
    expect(h01.sshdPid).toBeGreaterThan(0)
    expect(await ok(fleet, h01, 'echo back')).toBe('back')
  })

  it('rotateHostKey makes the recorded host key mismatch', async () => {
    await fleet.rotateHostKey('h02')
    const r = await ssh(fleet, h02, 'true')
    expect(r.code).toBe(255)
    expect(r.stderr).toMatch(/HOST IDENTIFICATION HAS CHANGED|Host key verification failed/)
    const fresh = path.join(fleet.dir, 'known_hosts.rotated')
    await writeFile(fresh, `${await fleet.knownHostsLine('h02')}\n`)
    expect((await ssh(fleet, h02, 'true', fresh)).code).toBe(0)
  })

  it('dirtyWorktree modifies a tracked file', async () => {
    await fleet.dirtyWorktree('h01')
    expect(await ok(fleet, h01, `cd ${h01.appDir} && git status --porcelain --untracked-files=no`)).toBe('M server.js')
  })

  it('stop() kills sshds and services and removes the fleet dir', async () => {
    const sshdPids = fleet.hosts.map((h) => h.sshdPid)
    const servicePids = fleet.hosts.map((h) => Number(readFileSync(path.join(h.dir, 'run', 'service.pid'), 'utf8')))
    await fleet.stop()
    await fleet.stop() // idempotent
    expect(existsSync(fleet.dir)).toBe(false)
    for (const pid of [...sshdPids, ...servicePids]) {
      const status = existsSync(`/proc/${pid}/status`) ? readFileSync(`/proc/${pid}/status`, 'utf8') : ''
      expect(status === '' || /State:\s+Z/.test(status)).toBe(true)
    }
  })
})

describe('test fleet over the ssh2 fallback server', { timeout: 30_000 }, () => {
  let fleet: TestFleet

  beforeAll(async () => {
    fleet = await startTestFleet({ hosts: 2, ssh: 'ssh2', initialRelease: { h02: 'v2' } })
  })
  afterAll(async () => {
    await fleet?.stop()
  })

  it('serves the same hosts: env, deploy, verify, connection count, kill/restart', async () => {
    const [h01, h02] = fleet.hosts as [SimHost, SimHost]
    expect(fleet.ssh).toBe('ssh2')
    expect(await fleet.head('h02')).toBe(fleet.origin.shas.v2)
    const out = await ok(fleet, h01, 'echo "$FLEET_SIM_HOST"; command -v systemctl')
    expect(out).toBe(`${h01.dir}\n${path.join(SIM_BIN, 'systemctl')}`)
    expect(fleet.acceptedConnections('h01')).toBe(1)

    await deploy(fleet, h01, fleet.origin.shas.v3)
    await sleep(500)
    expect((await ssh(fleet, h01, 'systemctl is-active --quiet rachel8')).code).toBe(0)
    expect(await fleet.service('h01')).toEqual({ running: true, sha: fleet.origin.shas.v3 })
    expect((await ssh(fleet, h01, 'exit 7')).code).toBe(7)
    expect(fleet.acceptedConnections('h01')).toBe(6)
    expect(fleet.acceptedConnections('h02')).toBe(0)

    await fleet.killSshd('h02')
    expect((await ssh(fleet, h02, 'true')).code).toBe(255)
    await fleet.restartSshd('h02')
    expect(await ok(fleet, h02, 'echo back')).toBe('back')
    await fleet.rotateHostKey('h02')
    expect((await ssh(fleet, h02, 'true')).code).toBe(255)
  })
})

describe('origin repo', () => {
  it('has the releases where the fixture says, with stable SHAs', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'fleet-test-origin-'))
    try {
      const a = await createOrigin(dir)
      const isAncestor = (sha: string) =>
        git(a.path, ['merge-base', '--is-ancestor', sha, 'main']).then(
          () => true,
          () => false,
        )
      expect(await isAncestor(a.shas.v1)).toBe(true)
      expect(await isAncestor(a.shas.v2)).toBe(true)
      expect(await git(a.path, ['rev-parse', 'main'])).toBe(a.shas.v2)
      expect(await isAncestor(a.shas.v3)).toBe(false)
      expect(await isAncestor(a.shas.crash)).toBe(false)
      expect(await isAncestor(a.shas.badInstall)).toBe(false)
      expect(await git(a.path, ['rev-parse', 'v3^{commit}', 'crash^{commit}', 'bad-install^{commit}'])).toBe(
        [a.shas.v3, a.shas.crash, a.shas.badInstall].join('\n'),
      )
      const b = await createOrigin(await mkdtemp(path.join(os.tmpdir(), 'fleet-test-origin-')))
      expect(b.shas).toEqual(a.shas)
      await rm(path.dirname(b.path), { recursive: true, force: true })
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})

const pgUp = await pgAvailable()
if (!pgUp) console.warn(`skipping Postgres fixture test: ${await pgSkipReason()}`)

describe.skipIf(!pgUp)('test Postgres database', () => {
  it('creates a fresh database and drops it even with a connection open', async () => {
    const db = (await createTestDatabase())!
    const client = new pg.Client({ connectionString: db.url })
    await client.connect()
    client.on('error', () => {}) // the forced drop terminates this connection
    await client.query('create table t (x int)')
    expect((await client.query('select count(*)::int as n from t')).rows[0]).toEqual({ n: 0 })
    await db.drop()
    await db.drop()
    const check = new pg.Client({ connectionString: db.url })
    await expect(check.connect()).rejects.toThrow(/does not exist/)
    await client.end().catch(() => {})
  })
})
