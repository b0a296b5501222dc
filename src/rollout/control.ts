import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'

import type { FleetConfig } from '../config/types.js'
import { ExitCode, FleetError } from '../errors.js'
import { leaseIsStale, rollbackLeaseHost } from './lease.js'
import { isAlive, readDirLock } from '../store/dir-lock.js'
import { openDatabase } from '../store/database.js'
import { requestFileTakenIn, takeAnswerFile, withdrawRequestFile, writeRequestFile, type RequestAnswer } from '../store/request-files.js'
import { Store, type NewRequest } from '../store/store.js'

/**
 * How pause and promote requests reach the rollout in progress: a row of
 * fleet_requests for that rollout, consumed once by id by whoever drives it
 * (or by the next command that takes it over). The embedded PGlite store is
 * open in one process only, so a request to the rollout that process drives
 * waits as a file beside the store, addressed to that process, until it takes
 * it in (store/request-files.ts). The sender waits for the answer and says it.
 */

export const newRequestId = (): string => randomUUID()

/** How long a sender waits for the driver's answer: it polls every second. */
export const ANSWER_WAIT_MS = 10_000

/**
 * Who holds the rollout now, if a live process does: the lease holder by the database's clock
 * (Postgres), or the embedded store's lock holder when it runs a rollout command (PGlite).
 * `rolloutId`: the rollout it drives (Postgres; it may still be starting, not yet recorded).
 * `rollback`: a `fleet rollback <host>` holds the lease, no rollout is driven.
 */
export interface Holder {
  readonly holder: string
  readonly rolloutId: string | null
  readonly rollback: boolean
  /** PGlite: the lock's pid and since, where a request file is addressed. */
  readonly lock?: { readonly pid: number; readonly since: string }
}

/** The store is opened only when needed (Postgres), so PGlite held by a running rollout is never touched. */
export async function whoRunsIt(config: FleetConfig): Promise<{ holder: Holder | null; store: Store | null; close(): Promise<void> }> {
  if (!config.database.url) {
    const lock = readDirLock(config.database.dir)
    // Only a process driving a rollout takes requests in; a reader, a dry run or `hosts check` holds the store for a moment only.
    const command = lock?.command ?? ''
    // The command itself, after any global options (a config path that says "demo" is not one).
    const drives = /^(?:-\S+(?: (?!rollout |demo\b)[^-\s]\S*)? )*(?:rollout (?:start|resume|promote|tick|abort|pause)|demo)(?: |$)/.test(command) && !/(?:^| )--dry-run\b/.test(command)
    const holder: Holder | null =
      lock && drives && isAlive(lock.pid) ? { holder: `pid ${lock.pid} on ${lock.host} (fleet ${command})`, rolloutId: null, rollback: false, lock: { pid: lock.pid, since: lock.since } } : null
    return { holder, store: null, close: async () => {} }
  }
  const database = await openDatabase(config.database)
  const store = new Store(database)
  try {
    const lease = await store.leaseState()
    const live = lease.holder !== null && lease.heartbeatAt !== null && !leaseIsStale(lease.holder, lease.heartbeatAt, lease.now.getTime())
    const holder: Holder | null = live ? { holder: lease.holder!, rolloutId: lease.rolloutId, rollback: rollbackLeaseHost(lease.rolloutId) !== null } : null
    return { holder, store, close: () => database.close() }
  } catch (error) {
    await database.close()
    throw error
  }
}

/** What became of a request: taken in and applied, taken in without effect (and why), or not answered in time. */
export type Answer = { readonly kind: 'applied' } | { readonly kind: 'not-applied'; readonly why: string } | { readonly kind: 'unanswered' }

/** Records a request for `rolloutId` (Postgres) and waits for whoever drives it to answer. */
export async function requestAndWait(store: Store, request: NewRequest, waitMs = ANSWER_WAIT_MS): Promise<Answer> {
  await store.addRequest(request)
  return waitForAnswer(store, request.id, waitMs)
}

/** Polls the request's row until it is settled or `waitMs` passed. */
export async function waitForAnswer(store: Store, id: string, waitMs = ANSWER_WAIT_MS): Promise<Answer> {
  for (const deadline = Date.now() + waitMs; ; await sleep(200)) {
    const row = await store.getRequest(id)
    if (row?.outcome) return row.outcome === 'applied' ? { kind: 'applied' } : { kind: 'not-applied', why: row.outcome.replace(/^not applied: /, '') }
    if (Date.now() > deadline) return { kind: 'unanswered' }
  }
}

/**
 * PGlite: leaves the request as a file addressed to the process holding the store and waits until
 * it is taken in. Not taken in (that process let go of the store first, or in `waitMs` it did not
 * take it: it is not driving a rollout), the file is withdrawn, so no later rollout can take it in
 * by mistake.
 */
export async function requestByFile(
  config: FleetConfig,
  lock: { readonly pid: number; readonly since: string },
  request: Omit<NewRequest, 'rolloutId'>,
  waitMs = ANSWER_WAIT_MS,
): Promise<{ readonly kind: 'taken-in'; readonly answer: RequestAnswer | null } | { readonly kind: 'let-go' } | { readonly kind: 'ignored' }> {
  const dir = config.database.dir
  writeRequestFile(dir, { ...request, rolloutId: null, to: lock })
  const deadline = Date.now() + waitMs
  for (; ; await sleep(100)) {
    if (requestFileTakenIn(dir, request.id)) break
    const now = readDirLock(dir)
    const letGo = !now || now.pid !== lock.pid || now.since !== lock.since || !isAlive(lock.pid)
    if (letGo || Date.now() > deadline) {
      if (withdrawRequestFile(dir, request.id)) return letGo ? { kind: 'let-go' } : { kind: 'ignored' }
      break
    }
  }
  // Taken in: the holder answers by file once it settled it (applied, or not and why).
  for (; ; await sleep(100)) {
    const answer = takeAnswerFile(dir, request.id)
    if (answer || Date.now() > deadline || !isAlive(lock.pid)) return { kind: 'taken-in', answer }
  }
}

/** What a sender says of its request: one line for people, one object for `--json`, and its exit code. */
export interface Said {
  readonly text: string
  readonly json: Record<string, unknown>
  readonly exitCode: ExitCode
}

type Request = Omit<NewRequest, 'rolloutId'>

/**
 * Sends a request to the rollout a live process drives (or starts) and says its answer. Not applied
 * is exit 2 with why; on the embedded store, a request the holder did not take in is withdrawn: exit 6,
 * or null when it let go of the store first (the caller then acts as between ticks).
 */
export async function askDriver(config: FleetConfig, holder: Holder, store: Store | null, request: Request): Promise<Said | null> {
  if (store && holder.rolloutId) return describeAnswer(request, holder, await requestAndWait(store, { ...request, rolloutId: holder.rolloutId }))
  // The embedded store: a file addressed to the process that holds it.
  const sent = await requestByFile(config, holder.lock!, request)
  if (sent.kind === 'ignored')
    throw new FleetError(`${request.kind} not sent: ${holder.holder} holds the embedded store but did not take the request in within ${ANSWER_WAIT_MS / 1000} s (it is not driving a rollout); nothing was changed, try again`, ExitCode.locked)
  // It let go of the store without taking it in (a tick that ended): null, the caller goes on as between ticks.
  if (sent.kind === 'let-go') return null
  if (!sent.answer) return describeAnswer(request, holder, { kind: 'taken-in' })
  const answered = { ...holder, rolloutId: sent.answer.rolloutId }
  return describeAnswer(request, answered, sent.answer.outcome === 'applied' ? { kind: 'applied' } : { kind: 'not-applied', why: sent.answer.outcome.replace(/^not applied: /, '') })
}

/** What the driver did with the request, said as it is: applied, taken in, not applied (exit 2, and why), or not answered yet. */
export function describeAnswer(request: Request, holder: Holder, got: Answer | { readonly kind: 'taken-in' }): Said {
  const json = { requested: request.kind, request: request.id, holder: holder.holder, rolloutId: holder.rolloutId }
  const rollout = holder.rolloutId ? ` rollout ${holder.rolloutId}` : ''
  const effect = request.kind === 'pause' ? `it starts no new host and pauses${rollout} once its hosts in flight finish` : `the current bake${rollout ? ` of${rollout}` : ''} ends as passed`
  switch (got.kind) {
    case 'applied':
      return { json: { ...json, outcome: 'applied' }, text: `${request.kind} taken in by ${holder.holder} (request ${request.id}): ${effect}`, exitCode: ExitCode.ok }
    case 'taken-in':
      return {
        json: { ...json, outcome: 'taken-in' },
        text: `${request.kind} taken in by ${holder.holder} (request ${request.id}), not answered yet; \`fleet rollout status\` and \`fleet rollout events\` show what it did`,
        exitCode: ExitCode.ok,
      }
    case 'not-applied':
      return { json: { ...json, outcome: `not applied: ${got.why}` }, text: `${request.kind} not applied (request ${request.id}): ${got.why}`, exitCode: ExitCode.usage }
    case 'unanswered':
      return {
        json: { ...json, outcome: 'pending' },
        text: `${request.kind} requested (request ${request.id}) but not answered within ${ANSWER_WAIT_MS / 1000} s by ${holder.holder}: it stays pending, and whoever drives the rollout next applies it (\`fleet rollout status\` shows it)`,
        exitCode: ExitCode.ok,
      }
  }
}

