/**
 * The fenced lease, piece by piece: epochs and the database's clock in the store (a real Postgres,
 * and PGlite), requests consumed once by id, and the host's fence token run by a real shell.
 */
import { execFile, spawn } from 'node:child_process'
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'

import { fenceCheck, fenceClaim, fencePath, FENCE_REFUSED } from '../src/remote/fence.js'
import { HEARTBEAT_MS, keepLease, takeOverRollout } from '../src/rollout/lease.js'
import { LostLeaseError } from '../src/store/store.js'
import { until } from './support/fault-kit.js'
import { ageLease, openTestStore, seedRollout, type TestStore } from './support/harness.js'
import { createTestDatabase, type TestDatabase } from './support/postgres.js'

const run = promisify(execFile)

const rolloutRow = (id: string) => ({
  id,
  state: 'running' as const,
  ref: 'main',
  sha: 'a'.repeat(40),
  stages: [100],
  seed: 's',
  currentStage: 0,
  settings: {},
  owner: 'first@a pid 1',
  startedAt: new Date(),
  finishedAt: null,
  heartbeatAt: new Date(),
  exitCode: null,
  error: null,
})

for (const kind of ['postgres', 'pglite'] as const) {
  describe(`the lease is a fence (${kind})`, () => {
    let test: TestStore
    let database: TestDatabase | null = null
    beforeAll(async () => {
      if (kind === 'postgres') {
        database = await createTestDatabase()
        if (!database) throw new Error('no Postgres: the fence is tested on a real one')
        test = await openTestStore('postgres', database.url)
      } else test = await openTestStore('pglite')
    })
    afterAll(async () => {
      await test?.close()
      await database?.drop()
    })

    it('every acquisition takes a new epoch; a late holder can no longer write, renew or release', async () => {
      const { store } = test
      const first = await store.acquireLease('r1', 'first@a pid 1')
      if (!first.acquired) throw new Error('not acquired')
      await store.createRollout(first.fence, rolloutRow('r1'), [])
      await store.updateRollout(first.fence, { currentStage: 0 })

      // The holder froze: its heartbeat is 40 s old by the database's clock. A second process takes over.
      await ageLease(store, 40_000)
      const taken = await takeOverRollout(store, 'second@b pid 2', 'resume')
      if (!('fence' in taken)) throw new Error('not taken over')
      expect(taken.fence.epoch).toBe(first.fence.epoch + 1)
      expect(taken.from).toBe('first@a pid 1')
      // The owner is whoever drives it now, at its epoch.
      expect(await store.getRollout('r1')).toMatchObject({ owner: 'second@b pid 2', epoch: taken.fence.epoch })

      // The first wakes up: every write it tries is refused and names the new holder.
      const late = await store.updateRollout(first.fence, { state: 'completed' }).catch((e: unknown) => e)
      expect(late).toBeInstanceOf(LostLeaseError)
      expect((late as LostLeaseError).message).toMatch(/second@b pid 2/)
      await expect(store.appendEvents(first.fence, [{ rolloutId: 'r1', type: 'rollout-finished', data: {}, at: new Date() }])).rejects.toBeInstanceOf(LostLeaseError)
      expect((await store.heartbeat(first.fence)).held).toBe(false)
      expect(await store.releaseLease(first.fence)).toBe(false)
      expect((await store.getRollout('r1'))?.state).toBe('running')
      expect(await store.listEvents('r1')).toEqual([])

      // The new holder writes, renews and releases.
      await store.updateRollout(taken.fence, { state: 'completed' })
      expect((await store.heartbeat(taken.fence)).held).toBe(true)
      expect(await store.releaseLease(taken.fence)).toBe(true)

      // It has released it since: a late write, and a late renewal, still name it (the rollout's recorded owner).
      const released = /^lost r1 to second@b pid 2, which has released it since \(it took the lease over/
      await expect(store.updateRollout(first.fence, { state: 'running' })).rejects.toThrow(released)
      vi.useFakeTimers({ toFake: ['setInterval'] })
      let renewal: LostLeaseError | null = null
      try {
        const stop = keepLease(store, first.fence, { onLost: (error) => (renewal = error) })
        vi.advanceTimersByTime(HEARTBEAT_MS)
        stop()
      } finally {
        vi.useRealTimers()
      }
      for (let i = 0; i < 500 && !renewal; i++) await new Promise((resolve) => setTimeout(resolve, 10))
      expect(renewal).toMatchObject({ holder: null, owner: 'second@b pid 2', message: expect.stringMatching(released) })
    })

    it('a holder that renews in time keeps its rollout, whatever clock the other machine has', async () => {
      const { store } = test
      const lease = await store.acquireLease('r2', 'live@elsewhere pid 3')
      if (!lease.acquired) throw new Error('not acquired')
      await store.createRollout(lease.fence, rolloutRow('r2'), [])
      // Judged on the database's clock: a taker's own clock (here far ahead) is never asked.
      // (PGlite runs inside this process, on its clock: one machine, one clock.)
      const realNow = Date.now
      if (kind === 'postgres') Date.now = () => realNow() + 3_600_000
      try {
        await expect(takeOverRollout(store, 'skewed@c pid 4', 'resume')).rejects.toMatchObject({ exitCode: 6, message: expect.stringMatching(/still running \(live@elsewhere pid 3/) })
      } finally {
        Date.now = realNow
      }
      // Two takers of a stale lease: exactly one wins.
      await ageLease(store, 40_000)
      const results = await Promise.allSettled([takeOverRollout(store, 'x@c pid 5', 'tick'), takeOverRollout(store, 'y@d pid 6', 'tick')])
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1)
      const winner = results.find((r) => r.status === 'fulfilled')!.value as { fence: { epoch: number; leaseId: string; storeId: string } }
      await store.updateRollout(winner.fence, { state: 'aborted' })
      await store.releaseLease(winner.fence)
    })

    it('a host is claimed once: the updating write names the state it read', async () => {
      const { store } = test
      const lease = await store.acquireLease('r3', 'a@a pid 1')
      if (!lease.acquired) throw new Error('not acquired')
      const host = { name: 'h1', address: '127.0.0.1', port: 22, user: 'u', appDir: '/srv/app', position: 0, stage: 0, status: 'pending' as const, step: null, previousVersion: null, newVersion: null, error: null, startedAt: null, finishedAt: null }
      await store.createRollout(lease.fence, rolloutRow('r3'), [host])
      expect(await store.claimRolloutHost(lease.fence, 'h1', 'pending', { status: 'updating' })).toBe(true)
      expect(await store.claimRolloutHost(lease.fence, 'h1', 'pending', { status: 'updating' })).toBe(false)
      await store.updateRollout(lease.fence, { state: 'completed' })
      await store.releaseLease(lease.fence)
    })

    it('requests are consumed exactly once, by id, never matched by time', async () => {
      const { store } = test
      const fence = await seedRollout(store, rolloutRow('r4'), [])
      // Sent by a machine whose clock is two minutes behind: the row's time is the database's.
      const realNow = Date.now
      if (kind === 'postgres') Date.now = () => realNow() - 120_000
      try {
        await store.addRequest({ id: 'req-1', rolloutId: 'r4', kind: 'pause', actor: 'ann@ops', reason: 'db migration', skipBake: false })
      } finally {
        Date.now = realNow
      }
      await store.addRequest({ id: 'req-1', rolloutId: 'r4', kind: 'pause', actor: 'ann@ops', reason: 'again', skipBake: false }) // the same id twice: once
      const pending = await store.pendingRequests('r4')
      expect(pending.map((r) => [r.id, r.reason])).toEqual([['req-1', 'db migration']])
      expect(Math.abs(pending[0]!.requestedAt.getTime() - Date.now())).toBeLessThan(10_000)
      expect(await store.settleRequest(fence, 'req-1', 'driver', 'applied')).toBe(true)
      expect(await store.settleRequest(fence, 'req-1', 'driver', 'applied')).toBe(false)
      expect(await store.pendingRequests('r4')).toEqual([])
      expect((await store.listRequests('r4'))[0]).toMatchObject({ outcome: 'applied', settledBy: 'driver' })
    })
  })
}

describe("the host's fence token (real sh, flock)", () => {
  let dir: string
  let appDir: string
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'fleet-fence-'))
    appDir = path.join(dir, "app with 'quote")
  })
  afterEach(async () => {
    await rm(fencePath(appDir), { force: true })
  })
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true })
  })
  const sh = async (script: string): Promise<{ code: number; stdout: string; stderr: string }> => {
    try {
      const { stdout, stderr } = await run('sh', ['-c', script])
      return { code: 0, stdout, stderr }
    } catch (error) {
      const e = error as { code: number; stdout: string; stderr: string }
      return { code: e.code, stdout: e.stdout, stderr: e.stderr }
    }
  }
  const store = 'ab12'

  it('a claim writes the token and logs it; an older epoch of the same store is refused before its command runs', async () => {
    expect(await sh(fenceClaim(appDir, { storeId: store, epoch: 5 }, 'r1 ann@ops pid 9', 'echo ran'))).toMatchObject({ code: 0, stdout: 'ran\n' })
    expect((await readFile(fencePath(appDir), 'utf8')).trim()).toBe(`${store} 5`)
    expect(await readFile(`${fencePath(appDir)}.log`, 'utf8')).toMatch(/^\S+Z 5 r1 ann@ops pid 9\n$/)
    // Same or newer epoch: runs. Older: refused (75, marked), the command never ran.
    expect(await sh(fenceCheck(appDir, { storeId: store, epoch: 5 }, 'echo ran'))).toMatchObject({ code: 0, stdout: 'ran\n' })
    const refused = await sh(fenceCheck(appDir, { storeId: store, epoch: 4 }, 'echo ran'))
    expect(refused).toMatchObject({ code: FENCE_REFUSED, stdout: '' })
    expect(refused.stderr).toMatch(/^fleet-fence: refused: epoch 5 of this store has taken this host over \(ours: 4\)/)
    expect(await sh(fenceClaim(appDir, { storeId: store, epoch: 3 }, 'late', 'echo ran'))).toMatchObject({ code: FENCE_REFUSED, stdout: '' })
    expect((await readFile(fencePath(appDir), 'utf8')).trim()).toBe(`${store} 5`)
    // Another store's epochs are not compared (a host moved to another fleet database).
    expect(await sh(fenceClaim(appDir, { storeId: 'cd34', epoch: 1 }, 'other', 'echo ran'))).toMatchObject({ code: 0, stdout: 'ran\n' })
  })

  it('a claim stops the commands an older epoch still runs on the host (a frozen holder\'s install), not its own or another store\'s', async () => {
    const started = (epoch: number, storeId = store) => {
      const child = spawn('sh', ['-c', fenceCheck(appDir, { storeId, epoch }, 'echo started; sleep 30; echo survived')], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
      let out = ''
      let err = ''
      child.stdout.on('data', (d: Buffer) => (out += d.toString()))
      child.stderr.on('data', (d: Buffer) => (err += d.toString()))
      const ended = new Promise<{ code: number | null; out: string; err: string }>((resolve) => child.on('close', (code) => resolve({ code, out, err })))
      return { child, ended }
    }
    expect(await sh(fenceClaim(appDir, { storeId: store, epoch: 1 }, 'first', 'true'))).toMatchObject({ code: 0 })
    const old = started(1)
    const same = started(2)
    const other = started(1, 'cd34')
    await until('the three commands to register', async () => (await readdir(`${fencePath(appDir)}.run`).catch(() => [])).length >= 3)
    const claim = await sh(fenceClaim(appDir, { storeId: store, epoch: 2 }, 'second', 'echo claimed'))
    expect(claim).toMatchObject({ code: 0, stdout: 'claimed\n' })
    // Stopped before it printed more, and it says why the way a refusal does (its process learns it lost the host).
    expect(await old.ended).toMatchObject({ code: FENCE_REFUSED, out: 'started\n', err: expect.stringMatching(/^fleet-fence: refused: epoch 2 of this store has taken this host over \(ours: 1\)/m) })
    expect(await readFile(`${fencePath(appDir)}.log`, 'utf8')).toMatch(new RegExp(`\\S+Z 2 stopped pid ${old.child.pid} of epoch 1\\n`))
    // The claiming epoch's own commands and another store's are left alone.
    expect([same.child.exitCode, same.child.signalCode, other.child.exitCode, other.child.signalCode]).toEqual([null, null, null, null])
    for (const c of [same.child, other.child]) process.kill(-c.pid!, 'SIGKILL')
    await rm(`${fencePath(appDir)}.run`, { recursive: true, force: true })
  })

  it('a command that exits 75 by itself is not mistaken for a refusal; a host without a writable directory fails plainly', async () => {
    expect(await sh(fenceCheck(appDir, { storeId: store, epoch: 1 }, 'exit 75'))).toMatchObject({ code: 75, stderr: '' })
    const unwritable = await sh(fenceClaim('/proc/fleet-no-such-dir/app', { storeId: store, epoch: 1 }, 'x', 'echo ran'))
    expect(unwritable.code).toBe(1)
    expect(unwritable.stdout).toBe('')
    expect(unwritable.stderr).toMatch(/fleet could not open .*flock from util-linux is needed/)
  })
})
