import type { Sha } from '../types.js'
import { type Argv, inDir, quote, render } from './shell.js'

/**
 * Pure builders of the commands fleet runs on a host. Git steps are built in
 * and take validated values; operator steps are templates from the config.
 */
export const gitHead = (dir: string): Argv => ['git', '-C', dir, 'rev-parse', '--verify', 'HEAD']

/**
 * Every object whose name starts with `prefix` (hex, validated), with its type, then every ref whose
 * last part is exactly `prefix`. A hex string is looked up as an object name only, never as a ref
 * (`rev-parse <x>` would prefer a tag named like a commit's abbreviation); the refs are listed so an
 * abbreviation that is also a ref's name can be refused as ambiguous.
 */
export const gitObjectsNamed = (dir: string, prefix: string): string =>
  `${render(['git', '-C', dir, 'rev-parse', `--disambiguate=${prefix}`])} 2>/dev/null | ${render(['git', '-C', dir, 'cat-file', '--batch-check'])}; ` +
  `${render(['git', '-C', dir, 'show-ref', '--', prefix])} 2>/dev/null; true`

export interface ObjectsNamed {
  readonly commits: readonly string[]
  /** Objects of other types with that prefix (trees, blobs, annotated tags). */
  readonly others: readonly string[]
  readonly refs: readonly string[]
}

/** Parses gitObjectsNamed's output (host text: only well-formed lines count). */
export function parseObjectsNamed(stdout: string): ObjectsNamed {
  const commits: string[] = []
  const others: string[] = []
  const refs: string[] = []
  for (const line of stdout.split('\n')) {
    const object = /^([0-9a-f]{40,64}) (commit|tree|blob|tag) \d+$/.exec(line)
    if (object) (object[2] === 'commit' ? commits : others).push(`${object[1]} (${object[2]})`.replace(/ \(commit\)$/, ''))
    const ref = /^[0-9a-f]{40,64} (refs\/\S+)$/.exec(line)
    if (ref) refs.push(ref[1]!)
  }
  return { commits, others, refs }
}

/** Tracked files with local modifications; untracked files (logs, caches) are not our business. */
export const gitDirtyFiles = (dir: string): Argv => ['git', '-C', dir, 'status', '--porcelain', '--untracked-files=no']

export const gitLsRemote = (dir: string, remote: string, ref: string): Argv => [
  'git', '-C', dir, 'ls-remote', '--', remote, ref, `${ref}^{}`,
]

/** All branches and tags of the remote (remote-tracking refs only: the checkout is untouched). */
/** Tags are pruned too: a tag deleted on the origin (say, one named like a commit) does not live on in hosts. */
export const gitFetchAll = (dir: string, remote: string): string => render(['git', '-C', dir, 'fetch', '--quiet', '--tags', '--prune', '--prune-tags', '--', remote])

/** One commit by its full name, for a SHA no branch or tag reaches (where the remote allows it). */
export const gitFetchCommit = (dir: string, remote: string, sha: string): string => render(['git', '-C', dir, 'fetch', '--quiet', '--', remote, sha])

/** Fetch branches and tags; if the commit is still unknown (e.g. an unadvertised SHA), ask for it by name. */
export const gitFetch = (dir: string, remote: string, sha: Sha): string =>
  `${gitFetchAll(dir, remote)} && ` +
  `{ ${render(['git', '-C', dir, 'cat-file', '-e', `${sha}^{commit}`])} 2>/dev/null || ` +
  `${gitFetchCommit(dir, remote, sha)}; }`

/** `--force` so a half-finished checkout or a lockfile rewritten by install never blocks the move. */
export const gitCheckout = (dir: string, sha: Sha): Argv => ['git', '-C', dir, 'checkout', '--quiet', '--force', '--detach', sha]

export const TEMPLATE_KEYS = ['service', 'appDir', 'sha', 'remote', 'branch'] as const
export type TemplateValues = Readonly<Record<(typeof TEMPLATE_KEYS)[number], string>>

/** Substitutes `{key}` placeholders with shell-quoted values; unknown placeholders were refused by the config. */
export const template = (script: string, values: TemplateValues): string =>
  script.replace(/(?<!\$)\{(service|appDir|sha|remote|branch)\}/g, (_, key: keyof TemplateValues) => quote(values[key]))

/** An operator step (install, restart, verify, health), run from the app dir. */
export const operatorStep = (script: string, values: TemplateValues): string => inDir(values.appDir, template(script, values))

/**
 * Picks the commit a ref names from `git ls-remote` output: a peeled tag
 * (`^{}`) wins over the tag object, and an exact branch or tag name over
 * anything else; a ref matching two different commits is ambiguous.
 */
export function parseLsRemote(output: string, ref: string): { sha: string } | { error: string } {
  const lines = output
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter((f): f is [string, string] => f.length === 2 && /^[0-9a-f]{40,64}$/.test(f[0]!))
  const byName = new Map(lines.map(([sha, name]) => [name, sha]))
  const candidates = [
    `refs/heads/${ref}`,
    `refs/tags/${ref}^{}`,
    `refs/tags/${ref}`,
    ref.startsWith('refs/') ? `${ref}^{}` : '',
    ref.startsWith('refs/') ? ref : '',
  ].filter(Boolean)
  const head = byName.get(`refs/heads/${ref}`)
  const tag = byName.get(`refs/tags/${ref}^{}`) ?? byName.get(`refs/tags/${ref}`)
  if (head && tag && head !== tag) return { error: `ref "${ref}" is both a branch and a tag pointing at different commits; use refs/heads/${ref} or refs/tags/${ref}` }
  for (const name of candidates) {
    const sha = byName.get(name)
    if (sha) return { sha }
  }
  return { error: `ref "${ref}" was not found on the remote` }
}
