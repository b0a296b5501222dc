/** Local check gates: real /bin/sh processes, placeholders shell-quoted, exit codes classified. */
import { existsSync, readFileSync } from 'node:fs'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { commandPlaceholderProblem, OUTPUT_TAIL_BYTES, runCheck, runCommand, substituteCommand } from '../src/gates/check.js'

const CTX = { sha: 'a'.repeat(40), stage: 2, hosts: ['h01', 'h02'] }
let dir: string
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'fleet-gates-check-'))
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

/** Alive and not a zombie (nothing may reap orphans in a container). */
const isAlive = (pid: number): boolean => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z'
  } catch {
    return false
  }
}

describe('check gates', () => {
  test.each([
    ['exit 0', 'echo all good', 'pass', 0, 'exit 0: all good'],
    ['exit 1', 'echo "p99 too high" >&2; exit 1', 'fail', 1, 'exit 1: p99 too high'],
    ['exit 7', 'exit 7', 'error', 7, 'exit 7'],
    ['not found', 'no-such-command-fleet-test', 'error', 127, 'exit 127 (command not found)'],
  ])('%s', async (_, command, verdict, exitCode, reason) => {
    const r = await runCommand(command, { timeoutMs: 5000 })
    expect(r).toMatchObject({ verdict, exitCode })
    expect(r.reason.startsWith(reason)).toBe(true)
  })

  test('a timeout is an error and kills the whole process group (a background child too)', async () => {
    const pidFile = path.join(dir, 'bg.pid')
    const t0 = Date.now()
    const r = await runCommand(`sleep 30 & echo $! > ${pidFile}; sleep 30`, { timeoutMs: 300 })
    expect(r).toMatchObject({ verdict: 'error', exitCode: null, reason: 'timed out after 300 ms' })
    expect(Date.now() - t0).toBeLessThan(3000)
    const bg = Number((await readFile(pidFile, 'utf8')).trim())
    await new Promise((r) => setTimeout(r, 100))
    expect(isAlive(bg)).toBe(false)
  })

  test('a background job holding the output open does not hold the check', async () => {
    const t0 = Date.now()
    const r = await runCommand('sleep 30 & echo started; exit 0', { timeoutMs: 10_000 })
    expect(r).toMatchObject({ verdict: 'pass', output: 'started\n' })
    expect(Date.now() - t0).toBeLessThan(3000)
  })

  test('a command that cannot start (missing cwd) is an error', async () => {
    const r = await runCommand('true', { timeoutMs: 1000, cwd: path.join(dir, 'missing') })
    expect(r.verdict).toBe('error')
    expect(r.reason).toMatch(/^could not run the command: .*ENOENT/)
  })

  test('an abort kills the command: error "aborted"', async () => {
    const ac = new AbortController()
    setTimeout(() => ac.abort(), 100)
    const r = await runCommand('sleep 30', { timeoutMs: 10_000, signal: ac.signal })
    expect(r).toMatchObject({ verdict: 'error', reason: 'aborted' })
  })

  test('the output keeps its last 2 KiB, sanitized (no escape sequences, no carriage-return tricks)', async () => {
    const r = await runCommand(`i=0; while [ $i -lt 500 ]; do echo "line $i"; i=$((i+1)); done; printf '\\033[2J\\033]0;pwned\\007evil\\rok\\n'; exit 1`, {
      timeoutMs: 5000,
    })
    expect(r.verdict).toBe('fail')
    expect(Buffer.byteLength(r.output)).toBeLessThanOrEqual(OUTPUT_TAIL_BYTES)
    expect(r.output).toContain('line 499')
    expect(r.output).not.toContain('line 0\n')
    expect(r.output).not.toMatch(/[\u001b\u0007\r]/)
    expect(r.reason).toBe('exit 1: evilok')
  })

  test('placeholders are substituted as single shell words, whatever the host names', async () => {
    expect(substituteCommand('./smoke.sh {sha} {stage} {hosts} ${HOME}', CTX)).toBe(`./smoke.sh ${CTX.sha} 2 h01,h02 \${HOME}`)
    const script = path.join(dir, 'args.sh')
    await writeFile(script, 'for a in "$@"; do printf "[%s]\\n" "$a"; done\n', { mode: 0o755 })
    const hostile = ["it's", '$(touch pwned)', 'a b;c', '`id`']
    const r = await runCheck(`${script} {hosts} {stage}`, { ...CTX, hosts: hostile }, { timeoutMs: 5000, cwd: dir })
    expect(r.verdict).toBe('pass')
    expect(r.output).toBe(`[${hostile.join(',')}]\n[2]\n`)
    expect(existsSync(path.join(dir, 'pwned'))).toBe(false)
  })

  test('a placeholder where quoting cannot protect it is never run (the config refuses it too)', async () => {
    const r = await runCheck('echo \\{hosts}', { ...CTX, hosts: ["x;touch pwned;'"] }, { timeoutMs: 5000, cwd: dir })
    expect(r).toMatchObject({ verdict: 'error', exitCode: null, reason: expect.stringMatching(/after a backslash/) })
    expect(existsSync(path.join(dir, 'pwned'))).toBe(false)
  })

  test.each([
    ['./smoke.sh {sha} {hosts}', null],
    ['echo ${HOME} {stage}', null],
    ['./smoke.sh {service}', /unknown placeholder \{service\}/],
    ['./smoke.sh "{hosts}"', /inside quotes/],
    ["./smoke.sh '{sha}'", /inside quotes/],
    ['./smoke.sh "a" {sha} \'b\'', null],
    ['echo \\"{sha}', null],
    ['echo \\{sha}', /after a backslash/],
    ['echo `echo {sha}`', /inside quotes/],
    ['cat <<EOF\n{hosts}\nEOF', /here-document/],
    ["echo it\\'s {sha}", null],
  ])('config check of %s', (command, problem) => {
    const got = commandPlaceholderProblem(command)
    if (problem === null) expect(got).toBeNull()
    else expect(got).toMatch(problem)
  })
})
