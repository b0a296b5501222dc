// The simulated fleet as `fleet demo` starts it: straight from src/sim (no test defaults, no
// FLEET_TEST_* variables) and without a real bun, so the hosts' `bun` is fixtures/sim-bun.mjs.
// Driven over the system `ssh` client and real sshd, the way fleet drives a host.
import { execFile } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { startSimFleet, type SimHost, type TestFleet } from '../src/sim/fleet.js'

let fleet: TestFleet
let h: SimHost

function ssh(command: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const args = [
    '-F', '/dev/null', '-i', fleet.clientKey, '-o', 'IdentitiesOnly=yes', '-o', `UserKnownHostsFile=${fleet.knownHosts}`,
    '-o', 'GlobalKnownHostsFile=/dev/null', '-o', 'StrictHostKeyChecking=yes', '-o', 'BatchMode=yes', '-o', 'LogLevel=ERROR',
    '-p', String(h.port), `${h.user}@${h.address}`, command,
  ]
  return new Promise((resolve) => {
    execFile('ssh', args, { timeout: 20_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1) : 0
      resolve({ code, stdout: stdout.trim(), stderr: stderr.trim() })
    })
  })
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

async function serviceUp(sha: string): Promise<boolean> {
  for (let i = 0; i < 50; i++) {
    const s = await fleet.service(h.name)
    if (s.running && s.sha === sha) return true
    await sleep(100)
  }
  return false
}

/** Command lines of the processes of that simulated host. */
function hostProcesses(): string[] {
  return readdirSync('/proc')
    .filter((e) => /^\d+$/.test(e))
    .flatMap((pid) => {
      try {
        if (!readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').includes(`FLEET_SIM_HOST=${h.dir}`)) return []
        return [readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim()]
      } catch {
        return []
      }
    })
}

describe('simulated fleet without bun (fleet demo)', { timeout: 30_000 }, () => {
  beforeAll(async () => {
    fleet = await startSimFleet({ hosts: 1, ssh: 'sshd' })
    h = fleet.host('h01')
  })
  afterAll(async () => {
    await fleet?.stop()
  })

  it('runs the app with Node through the stand-in', async () => {
    expect(await serviceUp(fleet.origin.shas.v1)).toBe(true)
    const service = hostProcesses().filter((cmd) => cmd.includes('server.js'))
    expect(service).toHaveLength(1)
    expect(service[0]).toContain('sim-bun.mjs')
    expect(service[0]).not.toMatch(/node_modules\/bun/)
  })

  it('bun install passes for a release without dependencies and writes nothing', async () => {
    const r = await ssh(`cd ${h.appDir} && git fetch -q origin && git checkout -q --detach ${fleet.origin.shas.v2} && bun install && sudo systemctl restart rachel8`)
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    expect(r.stdout).toContain('fleet demo stand-in')
    expect((await ssh(`cd ${h.appDir} && git status --porcelain`)).stdout).toBe('')
    expect(await serviceUp(fleet.origin.shas.v2)).toBe(true)
  })

  it('bun install fails for the bad-install release, naming the missing dependency', async () => {
    const r = await ssh(`cd ${h.appDir} && git checkout -q --detach ${fleet.origin.shas.badInstall} && bun install`)
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/missing@file:\.\/does-not-exist: no such file or directory/)
  })

  it('install-hangs still applies in front of the stand-in', async () => {
    await fleet.setFault(h.name, 'install-hangs', true)
    const started = Date.now()
    const r = await ssh(`cd ${h.appDir} && timeout 2 bun install`)
    expect(r.code).toBe(124) // killed by timeout, not finished
    expect(Date.now() - started).toBeGreaterThanOrEqual(1900)
    await fleet.setFault(h.name, 'install-hangs', false)
  })
})
