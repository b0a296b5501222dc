/**
 * The per-host steps of the release layout (design "Release directories"): prepare a release while
 * the live one serves, activate it with one rename, switch back to a kept one, prune. The flow
 * around them (restart, verify, compensation) is host-update.ts's, the same for both layouts.
 */
import { operatorStep } from '../remote/commands.js'
import {
  ensureReleases,
  parseReleaseList,
  planPrune,
  releaseActivate,
  releaseCreate,
  releaseDir,
  releaseDiscard,
  releaseFetch,
  releaseList,
  releaseMarkReady,
  releasePrune,
  releaseReady,
} from '../remote/releases.js'
import { FencedError } from '../ssh/fenced-session.js'
import type { Host, Sha } from '../types.js'
import { valuesFor, type HostSettings, type Phase, type StepRunner } from './host-steps.js'

export type Prepared = 'prepared' | 'reused'

/**
 * The release `sha` ready beside the live one: the layout set up (a plain checkout migrated), then
 * reused when it was prepared before (no fetch, no install: a rollback works with the origin
 * unreachable), else fetched, created, installed and built in its own directory. A failure removes
 * the unfinished preparation and throws; nothing live has changed.
 */
export async function prepareRelease(
  runner: StepRunner,
  host: Host,
  settings: HostSettings,
  sha: Sha,
  phase: Phase,
  options: { readonly expectKept?: boolean } = {},
): Promise<Prepared> {
  const shared = settings.releases?.shared ?? []
  await runner.run('prepare', phase, ensureReleases(host.appDir, settings.remote, shared))
  const state = (await runner.run('prepare', phase, releaseReady(host.appDir, sha), { quietStep: true })).stdout.trim()
  if (state === 'ready') return 'reused'
  // A switch back (or `fleet rollback`) expects a kept release; a ready mark without its directory was removed by hand.
  const short = sha.slice(0, 12)
  const note =
    state === 'damaged'
      ? `release ${short} was prepared on this host but its directory is gone or changed (removed by hand?): preparing it again (fetch, install)`
      : phase === 'rollback' || options.expectKept
        ? `release ${short} is not kept on this host: preparing it again (fetch, install)`
        : undefined
  await runner.run('fetch', phase, releaseFetch(host.appDir, settings.remote, sha), note ? { note } : {})
  const values = { ...valuesFor(host, settings, sha), appDir: releaseDir(host.appDir, sha) }
  try {
    await runner.run('checkout', phase, releaseCreate(host.appDir, settings.remote, sha, shared))
    await runner.run('install', phase, operatorStep(settings.steps.install, values))
    if (settings.steps.build) await runner.run('build', phase, operatorStep(settings.steps.build, values))
    await runner.run('build', phase, releaseMarkReady(host.appDir, sha), { quietStep: true })
  } catch (error) {
    if (!(error instanceof FencedError)) await runner.quietly(releaseDiscard(host.appDir, sha))
    throw error
  }
  return 'prepared'
}

/** Points the app dir at a prepared release (one rename). */
export async function activateRelease(runner: StepRunner, host: Host, sha: Sha, phase: Phase): Promise<void> {
  await runner.run(phase === 'rollback' ? 'rollback' : 'activate', phase, releaseActivate(host.appDir, sha))
}

/** Back to `previous`: the kept release when there is one (else prepared again), then the switch. */
export async function switchBack(runner: StepRunner, host: Host, settings: HostSettings, previous: Sha): Promise<void> {
  await prepareRelease(runner, host, settings, previous, 'rollback')
  await activateRelease(runner, host, previous, 'rollback')
}

/**
 * Retention after a host proved a release: keeps the live one, the ones named in `protect` (the
 * previous release, any an unfinished rollout may switch to) and the newest `keep`; best effort,
 * never fails the host.
 */
export async function pruneReleases(runner: StepRunner, host: Host, settings: HostSettings, protect: readonly string[]): Promise<void> {
  if (!settings.releases || runner.lost) return
  try {
    const listed = await runner.run('confirm', 'update', releaseList(host.appDir), { quietStep: true })
    const doomed = planPrune(parseReleaseList(listed.stdout, host.appDir), { keep: settings.releases.keep, protect })
    if (doomed.length) await runner.quietly(releasePrune(host.appDir, doomed))
  } catch (error) {
    if (error instanceof FencedError) throw error
  }
}
