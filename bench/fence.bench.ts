/**
 * Issue 15's host fence, measured on this machine as the host: what the fence adds to every
 * command (a check under a shared flock, the command's registration and its removal at exit), what
 * a claim costs, and how long a claim takes to stop a command an older epoch still runs there
 * (a frozen holder's install). Paired, interleaved `sh -c` runs; medians.
 */
import { execFileSync, spawn } from 'node:child_process'
import { mkdtempSync, readdirSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { expect, it } from 'vitest'

import { fenceCheck, fenceClaim, fencePath } from '../src/remote/fence.js'
import { record } from './support/results.js'

const RUNS = 100
const STOPS = 10
const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const timed = (script: string): number => {
  const t0 = process.hrtime.bigint()
  execFileSync('sh', ['-c', script])
  return Number(process.hrtime.bigint() - t0) / 1e6
}

it('the fence per command, per claim, and stopping an older epoch', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'fleet-fence-bench-'))
  const appDir = path.join(dir, 'app')
  try {
    const token = { storeId: 'bench', epoch: 1 }
    timed(fenceClaim(appDir, token, 'bench', 'true'))
    const plain: number[] = []
    const checked: number[] = []
    const claimed: number[] = []
    for (let i = 0; i < RUNS; i++) {
      plain.push(timed('true'))
      checked.push(timed(fenceCheck(appDir, token, 'true')))
      claimed.push(timed(fenceClaim(appDir, token, 'bench', 'true')))
    }

    // An older epoch's command stopped by a newer claim: from the claim's start to that command's exit.
    const stops: number[] = []
    const claims: number[] = []
    for (let i = 0; i < STOPS; i++) {
      const epoch = 10 + i * 2
      const old = spawn('sh', ['-c', fenceCheck(appDir, { storeId: 'bench', epoch }, 'sleep 60')], { detached: true, stdio: 'ignore' })
      const exited = new Promise<number>((resolve) => old.on('exit', () => resolve(Date.now())))
      while (!readdirSync(`${fencePath(appDir)}.run`).includes(String(old.pid))) await new Promise((r) => setTimeout(r, 5))
      const t0 = Date.now()
      claims.push(timed(fenceClaim(appDir, { storeId: 'bench', epoch: epoch + 1 }, 'bench', 'true')))
      stops.push((await exited) - t0)
    }
    const perCheck = median(checked) - median(plain)
    const perClaim = median(claimed) - median(plain)
    record({
      id: 'fence',
      title: 'The host fence (issue 15)',
      order: 70,
      summary: [
        { metric: 'a fenced command over a plain one (check + registration), median', target: '—', value: `+${perCheck.toFixed(1)} ms`, ok: null },
        { metric: 'a claim over a plain command, median', target: '—', value: `+${perClaim.toFixed(1)} ms`, ok: null },
        { metric: "an older epoch's command stopped by a claim (claim start → its exit), median / max", target: '≤ 5 s', value: `${median(stops)} ms / ${Math.max(...stops)} ms`, ok: Math.max(...stops) <= 5_500 },
      ],
      notes: `${RUNS} interleaved runs each of \`sh -c true\`, a fenced check and a claim on this machine (as the host); ${STOPS} stops of a \`sleep 60\` registered by an older epoch. Over SSH, the fence adds this to each command's round trip. Claims that stopped something took ${median(claims).toFixed(0)} ms (median).`,
      data: { plainMs: median(plain), checkMs: median(checked), claimMs: median(claimed), stopMs: stops, stoppingClaimMs: claims },
    })
    expect(stops.every((ms) => ms < 10_000)).toBe(true)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})
