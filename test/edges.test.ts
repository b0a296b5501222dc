/**
 * Every edge hostile, round 3: what a server, a person or the inventory sends is bounded, cleaned
 * and never trusted. Real HTTP servers on 127.0.0.1 that answer with huge bodies, a real `sh` whose
 * check leaves a detached child behind, real config files.
 */
import { spawn } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { PassThrough } from 'node:stream'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { makeOutput, printJson, say } from '../src/cli/output.js'
import { loadConfig } from '../src/config/load.js'
import { FleetError } from '../src/errors.js'
import { instantQuery, parseSampleValue } from '../src/gates/prometheus.js'
import { snapshotFromEvents } from '../src/metrics/index.js'
import { publish } from '../src/metrics/publish.js'
import { maskSecrets } from '../src/redact.js'
import { checkHostName } from '../src/remote/validate.js'
import { validateRows } from '../src/rollout/inventory.js'
import { cleanReason } from '../src/text/sanitize.js'
import { cliStore, runFleet } from './support/cli.js'
import { REPO_ROOT } from './support/origin.js'

/** A server that answers every request with `status` and an endless body, counting what it managed to send. */
async function flood(status: number, contentType = 'text/plain'): Promise<{ url: string; sent: () => number; close: () => Promise<void> }> {
  let sent = 0
  const chunk = Buffer.alloc(1 << 16, 'x')
  const server = http.createServer((req, res) => {
    req.resume()
    res.writeHead(status, { 'content-type': contentType })
    const pump = () => {
      // Up to 700 MB, as the report had it; a reader that stops reading stops it long before.
      while (sent < 700 << 20) {
        sent += chunk.length
        if (!res.write(chunk)) return void res.once('drain', pump)
      }
      res.end()
    }
    res.on('close', () => res.removeAllListeners('drain'))
    pump()
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    sent: () => sent,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  }
}

describe('bodies are capped: a flooding server is an error, never a crash or a full read', () => {
  it('a Pushgateway answering 500 with an endless body: a returned failure with the status, most of the body never read', async () => {
    const gateway = await flood(500)
    try {
      const snapshot = snapshotFromEvents({ rollout: null, hosts: {}, events: [], lastRunAt: new Date(), lastSuccessAt: null })
      const result = await publish(snapshot, { pushgateway: gateway.url, timeoutMs: 20_000 })
      expect(result.pushgateway).toMatchObject({ ok: false })
      expect(result.pushgateway!.error).toMatch(/^HTTP 500: x+$/)
      expect(gateway.sent()).toBeLessThan(64 << 20)
    } finally {
      await gateway.close()
    }
  })

  it('a Prometheus answering with more than 16 MB: a gate error naming the cause', async () => {
    const prometheus = await flood(200, 'application/json')
    try {
      const result = await instantQuery(prometheus.url, 'up', { timeoutMs: 20_000 })
      expect(result).toMatchObject({ kind: 'error', reason: expect.stringMatching(/answered more than 16 MB; a gate query must return one number/) })
      expect(prometheus.sent()).toBeLessThan(64 << 20)
    } finally {
      await prometheus.close()
    }
  })
})

describe('numbers from Prometheus', () => {
  it('plain decimals and the special values only; anything else is not a number', () => {
    expect(parseSampleValue('0.25')).toBe(0.25)
    expect(parseSampleValue('1e-3')).toBe(0.001)
    expect(parseSampleValue('+Inf')).toBe(Number.POSITIVE_INFINITY)
    expect(parseSampleValue('-Inf')).toBe(Number.NEGATIVE_INFINITY)
    expect(parseSampleValue('NaN')).toBeNaN()
    for (const bad of ['0x0', ' 0 ', '', '0b1', '1_000', 'Infinity', '1,5']) expect(parseSampleValue(bad)).toBeNull()
  })
})

describe('text from people and servers reaches no output raw', () => {
  const HOSTILE = 'ok\r\x1b[2K\x1b[32mexit 0: completed\x1b[0m\x1b]0;pwned\x07\u009b31m\u202eevil'

  it('a --reason becomes one clean, bounded line', () => {
    expect(cleanReason(HOSTILE)).toBe('okexit 0: completedevil')
    expect(cleanReason('x'.repeat(2000))).toHaveLength(500)
  })

  it('say and printJson: no escape sequence, no C0/C1 control, no bidi override on stdout', () => {
    const stdout = new PassThrough()
    let written = ''
    stdout.on('data', (d: Buffer) => (written += d.toString()))
    const out = { ...makeOutput({}, {}, { stdout: stdout as never, stderr: stdout as never }) }
    say(out, `paused: ${HOSTILE}`)
    printJson(out, { reason: HOSTILE, nested: [{ error: HOSTILE }] })
    expect(written).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/)
    expect(written).toContain('paused: okexit 0: completedevil\n')
    expect(JSON.parse(written.split('\n')[1]!)).toEqual({ reason: 'okexit 0: completedevil', nested: [{ error: 'okexit 0: completedevil' }] })
  })
})

describe('names that print alike are refused', () => {
  it('zero-width, bidi and other invisible characters, with the code point named', () => {
    expect(checkHostName('x\u200b')).toMatch(/invisible characters \(U\+200B at character 2\)/)
    expect(checkHostName('\u200fKunde')).toMatch(/U\+200F at character 1/)
    expect(checkHostName('a\u00a0b')).toMatch(/U\+00A0/)
    expect(checkHostName('Kunde 42')).toBeNull()
    expect(checkHostName('café')).toBeNull()
  })

  it('names are compared in NFC: a composed and a decomposed é are one host', () => {
    const defaults = { user: 'u', port: 22, appDir: '/srv/app' } as never
    const { hosts, rejected } = validateRows(
      [
        { name: 'caf\u00e9', address: '127.0.0.1' },
        { name: 'cafe\u0301', address: '127.0.0.2' },
        { name: 'x\u200b', address: '127.0.0.3' },
      ],
      { ssh: defaults, app: { dir: '/srv/app' } } as never,
    )
    expect(hosts.map((h) => h.name)).toEqual(['caf\u00e9'])
    expect(rejected.map((r) => r.reason)).toEqual([expect.stringMatching(/duplicate name/), expect.stringMatching(/invisible characters \(U\+200B/)])
    // The rejected label shows the invisible character as its code point, never as itself.
    expect(rejected[1]!.name).toBe('"x<U+200B>"')
  })
})

describe('the config file', () => {
  let dir: string
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'fleet-edges-'))
  })
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  it('a key written twice is an error naming it, not a silent "last one wins"', async () => {
    const file = path.join(dir, 'rollout.config.json')
    await writeFile(file, '{\n  "rollout": { "stages": [10, 100] },\n  "rollout": { "failureThreshold": 0.5 }\n}\n')
    const error = (() => {
      try {
        loadConfig({ env: {}, cwd: dir })
        return null
      } catch (e) {
        return e
      }
    })()
    expect(error).toBeInstanceOf(FleetError)
    expect((error as FleetError).exitCode).toBe(2)
    expect((error as FleetError).message).toMatch(/key "rollout" is written twice \(line 3\)/)
    await writeFile(file, '{ "app": { "service": "a", "service": "b" } }')
    expect(() => loadConfig({ env: {}, cwd: dir })).toThrow(/key "app.service" is written twice/)
  })
})

describe('secrets are masked in every form', () => {
  it('URL passwords with any characters, libpq key/value passwords, webhook tokens, token parameters', () => {
    const masked = maskSecrets(
      [
        'postgres://alice:pa ss@w0rd@db.example:5432/app refused',
        "host=db port=5432 password=s3cret dbname=fleet; password='two words' sslmode=require",
        'https://hooks.slack.com/services/T0001/B0002/XXXXSECRET timed out',
        'http://prom:9090/api/v1/query?token=abc123&x=1',
      ].join('\n'),
    )
    for (const secret of ['pa ss', 'w0rd', 's3cret', 'two words', 'XXXXSECRET', 'abc123', 'T0001']) expect(masked).not.toContain(secret)
    expect(masked).toContain('postgres://alice:***@db.example:5432/app refused')
    expect(masked).toContain('?token=***&x=1')
  })
})

describe('a gate check that leaves a detached child behind', () => {
  it('cannot keep fleet alive: the check ends, and so does the process that ran it, long before the child', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'fleet-detached-'))
    const pidFile = path.join(dir, 'pid')
    // The child leaves the process group (setsid) and keeps the check's stdout and stderr open for 60 s.
    const script = `
      const { runCheck } = await import(${JSON.stringify(path.join(REPO_ROOT, 'dist', 'gates', 'check.js'))})
      const r = await runCheck(${JSON.stringify(`setsid -f sh -c 'echo $$ > ${pidFile}; exec sleep 60'; echo started`)}, { sha: 'a', stage: 0, hosts: ['h1'] }, { timeoutMs: 10_000 })
      console.log(JSON.stringify(r))`
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    child.stdout.on('data', (d: Buffer) => (out += d.toString()))
    try {
      const code = await new Promise<number | null>((resolve, reject) => {
        const bound = setTimeout(() => reject(new Error('the process that ran the check is still alive after 30 s: the detached child holds it')), 30_000)
        child.on('exit', (c) => {
          clearTimeout(bound)
          resolve(c)
        })
      })
      expect(code).toBe(0)
      expect(JSON.parse(out.trim())).toMatchObject({ verdict: 'pass', exitCode: 0, output: expect.stringContaining('started') })
    } finally {
      const pid = Number((await readFile(pidFile, 'utf8').catch(() => '')).trim())
      if (pid > 0) {
        try {
          process.kill(pid, 'SIGKILL')
        } catch {
          /* gone */
        }
      }
      await rm(dir, { recursive: true, force: true })
    }
  })
})

describe('metrics never stop a command, and idle ticks publish', () => {
  it('an idle tick refreshes the last-run time; a textfile in a missing directory is a warning, never a failure', async () => {
    const store = await cliStore('postgres')
    const dir = await mkdtemp(path.join(os.tmpdir(), 'fleet-idle-'))
    try {
      const textfile = path.join(dir, 'fleet.prom')
      await writeFile(path.join(dir, 'rollout.config.json'), JSON.stringify({ database: store.database, metrics: { textfile } }))
      const idle = await runFleet(['rollout', 'tick'], { cwd: dir })
      expect(idle.code, idle.stderr).toBe(0)
      expect(idle.stdout).toMatch(/no rollout yet; nothing to do/)
      expect(await readFile(textfile, 'utf8')).toMatch(/^fleet_last_run_timestamp_seconds \d/m)

      await writeFile(path.join(dir, 'rollout.config.json'), JSON.stringify({ database: store.database, metrics: { textfile: path.join(dir, 'missing', 'fleet.prom') } }))
      for (const args of [['rollout', 'status'], ['rollout', 'tick']]) {
        const run = await runFleet(args, { cwd: dir })
        expect(run.code, `${args.join(' ')}: ${run.stderr}`).toBe(0)
      }
      const tick = await runFleet(['rollout', 'tick'], { cwd: dir })
      expect(tick.stderr).toMatch(/warning: metrics: writing .*missing\/fleet\.prom failed/)
    } finally {
      await store.drop()
      await rm(dir, { recursive: true, force: true })
    }
  })
})
