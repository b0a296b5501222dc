/**
 * Pure builders for the release layout (`app.layout: "releases"`, design "Release directories").
 * Beside the app dir `<A>` (same parent, so a switch is a rename on one filesystem):
 *
 *   <A>.releases/repo.git      bare repository: fetched into, shares its objects with every release
 *   <A>.releases/shared/<p>    the `app.shared` paths, kept once, linked into each release
 *   <A>.releases/<sha>/        a release: a `git clone --shared` of repo.git at <sha>
 *   <A>.releases/<sha>.ready   written once install (and build) succeeded; only these count
 *   <A>                        a symlink to the live release, switched with `mv -T`
 *
 * Every value is validated here and quoted by shell.ts; nothing opens a connection.
 */
import type { Sha } from '../types.js'
import { gitDirtyFiles, gitFetch } from './commands.js'
import { quote, render } from './shell.js'
import { checkAbsolutePath, checkRemoteName, checkSha, checkSharedPath, type Check } from './validate.js'

export interface ReleasePaths {
  readonly app: string
  readonly root: string
  readonly repo: string
  readonly shared: string
}

const must = (check: Check, value: string, what: string): string => {
  const problem = check(value)
  if (problem) throw new Error(`${what} ${problem}: ${JSON.stringify(value)}`)
  return value
}

export function releasePaths(appDir: string): ReleasePaths {
  const app = must(checkAbsolutePath, appDir.replace(/\/+$/, ''), 'app dir')
  if (app === '') throw new Error('the app dir cannot be /')
  const root = `${app}.releases`
  return { app, root, repo: `${root}/repo.git`, shared: `${root}/shared` }
}

export const releaseDir = (appDir: string, sha: string): string => `${releasePaths(appDir).root}/${must(checkSha, sha, 'release')}`

const sharedList = (shared: readonly string[]): string => shared.map((p) => quote(must(checkSharedPath, p, 'shared path'))).join(' ')

/**
 * Moves a plain checkout into the release directories without stopping its service (a rename keeps
 * the running process's files), puts the symlink in its place, moves the untracked `shared` paths
 * to the shared place, and creates repo.git (a bare clone: hard-linked objects) with `remote`
 * pointing where the checkout's did. Idempotent; finishes a migration a crash interrupted.
 */
export function ensureReleases(appDir: string, remote: string, shared: readonly string[]): string {
  const p = releasePaths(appDir)
  must(checkRemoteName, remote, 'remote')
  return [
    'set -e',
    `A=${quote(p.app)}; R=${quote(p.root)}; remote=${quote(remote)}`,
    'mkdir -p "$R/shared"',
    // A crash between the rename and the symlink: finish it.
    'if [ ! -e "$A" ] && [ ! -L "$A" ] && [ -f "$R/.migrating" ]; then m=$(cat "$R/.migrating"); case $m in *[!0-9a-f]*|"") exit 3;; esac; ln -s "$R/$m" "$A"; fi',
    'rm -f "$R/.migrating"',
    'if [ ! -L "$A" ]; then',
    '  [ -d "$A/.git" ] || { echo "$A is neither a release symlink nor a git checkout" >&2; exit 3; }',
    '  sha=$(git -C "$A" rev-parse --verify HEAD)',
    '  [ ! -e "$R/$sha" ] || { echo "$R/$sha exists already; move it away to migrate" >&2; exit 3; }',
    `  for p in ${sharedList(shared)}; do`,
    '    if [ -e "$A/$p" ] && [ ! -L "$A/$p" ] && [ ! -e "$R/shared/$p" ] && ! git -C "$A" ls-files --error-unmatch -- "$p" >/dev/null 2>&1; then',
    '      mkdir -p "$(dirname "$R/shared/$p")"; mv "$A/$p" "$R/shared/$p"; ln -s "$R/shared/$p" "$A/$p"',
    '    fi',
    '  done',
    '  echo "$sha" > "$R/.migrating"',
    '  mv "$A" "$R/$sha"',
    '  ln -s "$R/$sha" "$A"',
    '  touch "$R/$sha.ready"',
    '  rm -f "$R/.migrating"',
    'fi',
    'if [ ! -d "$R/repo.git" ]; then',
    '  live=$(readlink "$A")',
    '  url=$(git -C "$live" remote get-url -- "$remote")',
    '  rm -rf "$R/repo.git.tmp"',
    '  git clone --quiet --bare -- "$live" "$R/repo.git.tmp"',
    '  git -C "$R/repo.git.tmp" remote remove origin',
    '  git -C "$R/repo.git.tmp" remote add -- "$remote" "$url"',
    '  git -C "$R/repo.git.tmp" update-ref "refs/fleet/releases/$(git -C "$live" rev-parse HEAD)" HEAD',
    '  mv "$R/repo.git.tmp" "$R/repo.git"',
    // The migrated checkout keeps its own objects and sees repo.git's too (a short SHA, a kept release).
    '  if [ -d "$live/.git/objects/info" ] && ! grep -qxF "$R/repo.git/objects" "$live/.git/objects/info/alternates" 2>/dev/null; then echo "$R/repo.git/objects" >> "$live/.git/objects/info/alternates"; fi',
    'fi',
  ].join('\n')
}

/**
 * Prints `ready` when the release exists and finished its preparation (nothing to fetch or install),
 * `damaged` when its ready mark is there but its directory is gone or at another commit (removed or
 * changed by hand), else `missing`.
 */
export function releaseReady(appDir: string, sha: Sha): string {
  const d = releaseDir(appDir, sha)
  const mark = quote(`${d}.ready`)
  return `if [ -f ${mark} ] && [ "$(${render(['git', '-C', d, 'rev-parse', '--verify', 'HEAD'])} 2>/dev/null)" = ${quote(sha)} ]; then echo ready; elif [ -f ${mark} ]; then echo damaged; else echo missing; fi`
}

/**
 * For an in-place update: `release-symlink <target>` when the app dir is a symlink (the host was moved
 * to release directories: a checkout there would rewrite the live release), else the modified
 * tracked files of the checkout (git status --porcelain).
 */
export function inPlaceState(appDir: string): string {
  const a = must(checkAbsolutePath, appDir, 'app dir').replace(/\/+$/, '') || '/'
  return `if [ -L ${quote(a)} ]; then printf 'release-symlink %s\\n' "$(readlink -- ${quote(a)})"; else ${render(gitDirtyFiles(a))}; fi`
}

/** Fetches into repo.git (branches, tags, else the commit by name). */
export const releaseFetch = (appDir: string, remote: string, sha: Sha): string =>
  gitFetch(releasePaths(appDir).repo, must(checkRemoteName, remote, 'remote'), must(checkSha, sha, 'commit') as Sha)

/**
 * A fresh release directory at `sha` (any leftover of a failed preparation is removed first; the
 * live release never is), its remote the real one, pinned in repo.git so no gc takes its objects, shared paths linked.
 */
export function releaseCreate(appDir: string, remote: string, sha: Sha, shared: readonly string[]): string {
  const p = releasePaths(appDir)
  const d = releaseDir(appDir, sha)
  return [
    'set -e',
    `A=${quote(p.app)}; R=${quote(p.root)}; d=${quote(d)}; sha=${quote(sha)}; remote=${quote(must(checkRemoteName, remote, 'remote'))}`,
    '[ "$(readlink -f "$A")" != "$(readlink -f "$d" 2>/dev/null || echo "$d")" ] || { echo "$d is the live release" >&2; exit 3; }',
    'rm -rf -- "$d" "$d.ready"',
    'git clone --quiet --shared --no-checkout -- "$R/repo.git" "$d"',
    'git -C "$d" checkout --quiet --detach "$sha"',
    // Its remote is the real one (ref look-ups, a move back to in place), not repo.git.
    'git -C "$d" remote remove origin',
    'git -C "$d" remote add -- "$remote" "$(git -C "$R/repo.git" remote get-url -- "$remote")"',
    'git -C "$R/repo.git" update-ref "refs/fleet/releases/$sha" "$sha"',
    `for p in ${sharedList(shared)}; do`,
    '  if [ -e "$R/shared/$p" ] || [ -L "$R/shared/$p" ]; then mkdir -p "$(dirname "$d/$p")"; rm -rf -- "$d/$p"; ln -s "$R/shared/$p" "$d/$p"; fi',
    'done',
  ].join('\n')
}

/** Marks a release prepared (after install and build). */
export const releaseMarkReady = (appDir: string, sha: Sha): string => render(['touch', `${releaseDir(appDir, sha)}.ready`])

/** Removes a failed preparation (never the live release). */
export function releaseDiscard(appDir: string, sha: Sha): string {
  const p = releasePaths(appDir)
  const d = releaseDir(appDir, sha)
  return `if [ "$(readlink -f ${quote(p.app)})" != "$(readlink -f ${quote(d)} 2>/dev/null)" ]; then rm -rf -- ${quote(d)} ${quote(`${d}.ready`)}; fi`
}

/**
 * Points the app dir at a prepared release atomically: a new symlink renamed over the old one
 * (`mv -T`, one rename(2)). Refuses a release that is not ready and an app dir that is not a symlink.
 */
export function releaseActivate(appDir: string, sha: Sha): string {
  const p = releasePaths(appDir)
  const d = releaseDir(appDir, sha)
  const tmp = `${p.app}.fleet-switch`
  return [
    'set -e',
    `[ -L ${quote(p.app)} ] || { echo ${quote(`${p.app} is not a symlink to a release`)} >&2; exit 3; }`,
    `[ -f ${quote(`${d}.ready`)} ] && [ -d ${quote(d)} ] || { echo ${quote(`release ${sha.slice(0, 12)} is not prepared on this host`)} >&2; exit 3; }`,
    `rm -f -- ${quote(tmp)}`,
    `ln -s -- ${quote(d)} ${quote(tmp)}`,
    `mv -T -- ${quote(tmp)} ${quote(p.app)}`,
  ].join('\n')
}

/** `<mtime> <name>` for every entry of the releases dir, then `live <target>`. */
export function releaseList(appDir: string): string {
  const p = releasePaths(appDir)
  return `find ${quote(p.root)} -mindepth 1 -maxdepth 1 -printf '%T@ %f\\n' 2>/dev/null; printf 'live %s\\n' "$(readlink ${quote(p.app)} 2>/dev/null)"`
}

export interface ReleaseEntry {
  readonly sha: string
  /** Its preparation finished (install, build). */
  readonly ready: boolean
  /** When it was prepared (the ready mark's time; else the directory's), epoch seconds. */
  readonly at: number
}

export interface ReleaseListing {
  readonly releases: readonly ReleaseEntry[]
  /** The sha of the release the app dir points at, or null (not a release symlink). */
  readonly live: string | null
}

/** Parses releaseList's output (host text: only well-formed lines count). */
export function parseReleaseList(stdout: string, appDir: string): ReleaseListing {
  const dirs = new Map<string, number>()
  const ready = new Map<string, number>()
  let live: string | null = null
  const root = releasePaths(appDir).root
  for (const line of stdout.split('\n')) {
    const entry = /^(\d+(?:\.\d+)?) ([0-9a-f]{40}|[0-9a-f]{64})(\.ready)?$/.exec(line)
    if (entry) (entry[3] ? ready : dirs).set(entry[2]!, Number(entry[1]))
    const link = /^live (.*)$/.exec(line)
    if (link) {
      const sha = link[1]!.startsWith(`${root}/`) ? link[1]!.slice(root.length + 1) : ''
      live = /^([0-9a-f]{40}|[0-9a-f]{64})$/.test(sha) ? sha : null
    }
  }
  const releases = [...dirs].map(([sha, at]) => ({ sha, ready: ready.has(sha), at: ready.get(sha) ?? at }))
  return { releases, live }
}

/**
 * Retention: which releases to delete. Kept always: the live one and every protected one (the
 * previous release, any release an unfinished rollout may switch to); then the newest `keep`
 * prepared releases (the kept ones above count). Failed or unfinished preparations never count and
 * are deleted unless protected. Nothing not listed is ever named.
 */
export function planPrune(listing: ReleaseListing, options: { readonly keep: number; readonly protect: readonly string[] }): string[] {
  const safe = new Set([...options.protect, ...(listing.live ? [listing.live] : [])])
  const ready = listing.releases.filter((r) => r.ready).sort((a, b) => b.at - a.at || (a.sha < b.sha ? -1 : 1))
  const kept = new Set(ready.filter((r) => safe.has(r.sha)).map((r) => r.sha))
  for (const r of ready) if (kept.size < options.keep) kept.add(r.sha)
  return listing.releases.filter((r) => !safe.has(r.sha) && !kept.has(r.sha)).map((r) => r.sha)
}

/** Deletes the named releases and their pins; re-checks on the host that none is the live one. */
export function releasePrune(appDir: string, shas: readonly string[]): string {
  const p = releasePaths(appDir)
  const lines = shas.map((sha) => {
    const d = releaseDir(appDir, sha)
    return `if [ "$(readlink -f ${quote(p.app)})" != "$(readlink -f ${quote(d)} 2>/dev/null)" ]; then rm -rf -- ${quote(d)} ${quote(`${d}.ready`)}; git -C ${quote(p.repo)} update-ref -d ${quote(`refs/fleet/releases/${sha}`)} 2>/dev/null || true; fi`
  })
  return lines.length ? lines.join('\n') : 'true'
}
