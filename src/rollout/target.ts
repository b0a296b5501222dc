import { ExitCode, FleetError, UsageError, errorMessage } from '../errors.js'
import { gitFetchAll, gitFetchCommit, gitLsRemote, gitObjectsNamed, parseLsRemote, parseObjectsNamed } from '../remote/commands.js'
import { render } from '../remote/shell.js'
import { checkRef } from '../remote/validate.js'
import type { CommandResult, Executor, Session } from '../ssh/executor.js'
import { sanitizeLine } from '../text/sanitize.js'
import type { Host, Sha } from '../types.js'

/** Hosts asked, in turn, before resolution gives up: each silent one costs a connect timeout. */
export const RESOLVE_ATTEMPTS = 3

/** A commit given by its full hexadecimal name. */
export const isFullSha = (ref: string): boolean => /^[0-9a-f]{40}$/.test(ref) || /^[0-9a-f]{64}$/.test(ref)

/** A commit given by (part of) its hexadecimal name rather than by a branch or tag. */
export const isCommitName = (ref: string): boolean => /^[0-9a-f]{7,64}$/.test(ref)

export interface ResolveRequest {
  readonly ref: string
  /** In the order to ask them: the canaries first. */
  readonly hosts: readonly Host[]
  readonly remote: string
  readonly connectTimeoutMs: number
  readonly commandTimeoutMs: number
}

const lastLine = (result: CommandResult): string => sanitizeLine(result.stderr.trim().split('\n').slice(-2).join(' ')) || `exit ${result.code ?? result.signal}`

/** The host answered, but not about the ref: try the next one. */
class HostProblem extends Error {}

/**
 * Turns the ref into the one commit every host moves to, and proves that
 * commit exists before any host changes: a branch or tag through
 * `git ls-remote`, a (short) SHA by fetching on the host and asking git for
 * it. Asks the hosts in turn (a silent or broken one is skipped); the open
 * connection of the host that answered is handed back for its own update.
 * A ref or commit that does not exist is bad input (exit 2); no host that
 * answers is a failure to reach the fleet (exit 1). Nothing is changed either
 * way: fetching only adds objects and remote-tracking refs, never touches the
 * checkout the app runs from.
 */
export async function resolveTarget(request: ResolveRequest, executor: Executor): Promise<{ sha: Sha; host: string; session: Session }> {
  const { ref } = request
  if (!isCommitName(ref)) {
    const problem = checkRef(ref)
    if (problem) throw new UsageError(`--ref ${JSON.stringify(ref)} ${problem}`)
  }
  const tried: string[] = []
  for (const host of request.hosts.slice(0, RESOLVE_ATTEMPTS)) {
    let session: Session
    try {
      session = await executor.connect(host, { timeoutMs: request.connectTimeoutMs })
    } catch (error) {
      tried.push(`${host.name}: ${errorMessage(error)}`)
      continue
    }
    try {
      const sha = isCommitName(ref) ? await findCommit(session, host, request) : await lookUpRef(session, host, request)
      return { sha, host: host.name, session }
    } catch (error) {
      session.close()
      if (error instanceof HostProblem) {
        tried.push(`${host.name}: ${error.message}`)
        continue
      }
      if (error instanceof FleetError) throw error
      // The connection dropped or a command could not start: this host cannot answer.
      tried.push(`${host.name}: ${errorMessage(error)}`)
    }
  }
  throw new FleetError(
    `cannot resolve ${JSON.stringify(ref)}: no host could answer (${tried.join('; ')}); nothing was changed`,
    ExitCode.internal,
  )
}

async function lookUpRef(session: Session, host: Host, request: ResolveRequest): Promise<Sha> {
  const result = await session.run(render(gitLsRemote(host.appDir, request.remote, request.ref)), { timeoutMs: request.commandTimeoutMs })
  if (result.code !== 0) throw new HostProblem(`git ls-remote failed: ${lastLine(result)}`)
  const parsed = parseLsRemote(result.stdout, request.ref)
  if ('error' in parsed) throw new UsageError(`${parsed.error} (asked ${host.name}, remote "${request.remote}"); nothing was changed`)
  return parsed.sha as Sha
}

async function findCommit(session: Session, host: Host, request: ResolveRequest): Promise<Sha> {
  const run = (command: string) => session.run(command, { timeoutMs: request.commandTimeoutMs })
  const fetched = await run(gitFetchAll(host.appDir, request.remote))
  if (fetched.code !== 0) throw new HostProblem(`git fetch failed: ${lastLine(fetched)}`)
  const lookUp = async () => commitNamed((await run(gitObjectsNamed(host.appDir, request.ref))).stdout, request.ref, host.name)
  let sha = await lookUp()
  // A full SHA no branch or tag reaches may still be fetched by name, where the remote allows it.
  if (!sha && request.ref.length >= 40 && (await run(gitFetchCommit(host.appDir, request.remote, request.ref))).code === 0) sha = await lookUp()
  if (!sha)
    throw new UsageError(
      `${request.ref} does not name a commit of remote "${request.remote}" (asked ${host.name} after fetching; a short SHA must be unique); nothing was changed`,
    )
  return sha
}

/**
 * The one commit a hex name stands for, or null when none does. An abbreviation that several objects
 * share, or that a branch or tag is also named, is refused with the candidates: fleet never guesses.
 */
export function commitNamed(stdout: string, name: string, host: string): Sha | null {
  const found = parseObjectsNamed(stdout)
  const full = isFullSha(name)
  const candidates = [...found.commits, ...found.others, ...(full ? [] : found.refs)]
  if (found.commits.length === 1 && candidates.length === 1) return found.commits[0]! as Sha
  if (found.commits.length === 0 && (full || found.refs.length === 0)) return null
  const shown = candidates.slice(0, 6).map(sanitizeLine).join(', ') + (candidates.length > 6 ? `, +${candidates.length - 6} more` : '')
  throw new UsageError(`${name} is ambiguous on ${host}: ${shown}; give more digits of the commit (a hex name is never read as a branch or tag); nothing was changed`)
}
