import { gitDirtyFiles } from './commands.js'
import { fencePath } from './fence.js'
import { type Argv, inDir, quote, render } from './shell.js'

/**
 * Pure builders and judges of `fleet hosts check`: read-only commands that tell whether a host is
 * ready for a rollout. Nothing here changes a host: git is only asked (rev-parse, status,
 * ls-remote), programs are looked up with `command -v`, and sudo is asked with `-n -l`, which
 * lists what the policy allows and runs nothing.
 */

export interface CheckSettings {
  readonly appDir: string
  readonly remote: string
  readonly branch: string
  readonly service: string
  readonly steps: { readonly install: string; readonly restart: string; readonly verify: string; readonly health: string | null }
}

export interface CommandOutcome {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
  readonly timedOut: boolean
}

export interface Verdict {
  readonly ok: boolean
  readonly detail: string
  /** The git check's answer: the commit the host runs (full SHA). */
  readonly commit?: string
}

export interface HostCheck {
  /** Stable id for --json: git, remote, clean, fence, program:<name>, sudo:<step>. */
  readonly id: string
  /** What is checked, for people. */
  readonly label: string
  /** Shell text to run, or null when the check cannot be made (then `skipped` says why). */
  readonly command: string | null
  readonly skipped?: string
  /** Skipped when the git check failed: its answer would only repeat that failure. */
  readonly needsGit: boolean
  judge(outcome: CommandOutcome): Verdict
}

const STEP_NAMES = ['install', 'restart', 'verify', 'health'] as const
type StepName = (typeof STEP_NAMES)[number]

/** A word the check may pass on: plain characters, or placeholders whose value is known before a rollout. */
const PLAIN_WORD = /^(?:[A-Za-z0-9_@%+=:,./-]|\{(?:service|appDir|remote|branch)\})+$/
const ASSIGNMENT = /^[A-Za-z_][A-Za-z0-9_]*=/

/** The words of a step when it is one simple command (no quotes, operators or {sha}); else null. */
export function simpleWords(script: string, settings: CheckSettings): string[] | null {
  const words = script.trim().split(/\s+/).filter(Boolean)
  if (words.length === 0 || !words.every((w) => PLAIN_WORD.test(w))) return null
  const values: Record<string, string> = { service: settings.service, appDir: settings.appDir, remote: settings.remote, branch: settings.branch }
  return words.map((w) => w.replace(/\{(service|appDir|remote|branch)\}/g, (_, k: string) => values[k]!))
}

/** The program a step starts (after leading VAR=value words), or null when the step is not that simple. */
export function programOf(script: string): string | null {
  const words = script.trim().split(/\s+/).filter((w) => w && !ASSIGNMENT.test(w))
  const first = words[0]
  return first !== undefined && /^[A-Za-z0-9_@%+=:,./-]+$/.test(first) ? first : null
}

/** Credentials in a URL (https://user:token@host) never reach the output. */
export const redactUrls = (text: string): string => text.replace(/([a-z][a-z0-9+.-]*:\/\/)[^/\s@]+@/gi, '$1***@')

const lastLine = (text: string): string => redactUrls(text.trim().split('\n').filter(Boolean).at(-1) ?? '')

/** git and sudo say what went wrong on their first `fatal:`/`error:` line and add advice after it. */
const reason = (text: string): string => {
  const lines = text.split('\n').map((l) => l.trim()).filter(Boolean)
  return redactUrls(lines.find((l) => /^(fatal|error|sudo):/i.test(l)) ?? lines.at(-1) ?? '')
}

const failure = (o: CommandOutcome, fallback: string): Verdict => ({
  ok: false,
  detail: o.timedOut ? 'timed out' : reason(o.stderr) || lastLine(o.stdout) || `${fallback} (exit ${o.code ?? 'none'})`,
})

export const gitWorkTree = (dir: string): Argv => ['git', '-C', dir, 'rev-parse', '--is-inside-work-tree', 'HEAD']

/** `--exit-code`: 2 when the remote answers but has no such branch. No prompt may wait for a person. */
export const gitRemoteBranch = (dir: string, remote: string, branch: string): Argv => [
  'env', 'GIT_TERMINAL_PROMPT=0', 'git', '-C', dir, 'ls-remote', '--exit-code', '--', remote, `refs/heads/${branch}`,
]

/** Where the program is on the PATH a non-interactive SSH session gets, in the app dir (steps run there). */
export const programLookup = (dir: string, program: string): string =>
  inDir(dir, `${render(['command', '-v', program])} || { echo "not found; PATH is $PATH" >&2; exit 127; }`)

/**
 * What the fence (remote/fence.ts) needs, asked without writing: the app dir's parent exists and the
 * SSH user may write it, and the fence's lock and log, where they exist, are writable too.
 */
export function fenceWritable(appDir: string): string {
  const fence = fencePath(appDir)
  const files = ['lock', 'log', 'tmp'].map((ext) => quote(`${fence}.${ext}`)).join(' ')
  return (
    `d=${quote(fence.slice(0, fence.lastIndexOf('/')) || '/')}; ` +
    `if [ ! -d "$d" ]; then echo "$d does not exist" >&2; exit 1; fi; ` +
    `if [ ! -w "$d" ]; then echo "$(id -un) cannot write $d" >&2; exit 1; fi; ` +
    `for f in ${files}; do if [ -e "$f" ] && [ ! -w "$f" ]; then echo "$(id -un) cannot write $f" >&2; exit 1; fi; done; ` +
    `echo "$d"`
  )
}

/** Where flock is on the non-interactive PATH (the fence claims a host under it). */
export const flockLookup = (): string => `${render(['command', '-v', 'flock'])} || { echo "not found (util-linux); PATH is $PATH" >&2; exit 127; }`

/** Asks sudo's policy whether the step's command may run without a password; runs nothing. */
export const sudoAllowed = (words: readonly string[]): Argv => ['sudo', '-n', '-l', ...words.slice(1)]

export function hostChecks(settings: CheckSettings): HostCheck[] {
  const { appDir, remote, branch } = settings
  const checks: HostCheck[] = [
    {
      id: 'git',
      label: 'app dir is a git work tree',
      command: render(gitWorkTree(appDir)),
      needsGit: false,
      judge: (o) => {
        const [inside, head] = o.stdout.trim().split('\n')
        if (o.code === 0 && inside === 'true') return { ok: true, detail: `${appDir} at ${(head ?? '').slice(0, 12)}`, ...(head ? { commit: head } : {}) }
        return failure(o, `${appDir} is not a git work tree`)
      },
    },
    {
      id: 'remote',
      label: `remote ${remote} is fetchable`,
      command: render(gitRemoteBranch(appDir, remote, branch)),
      needsGit: true,
      judge: (o) => {
        if (o.code === 0) return { ok: true, detail: `${remote} has ${branch} at ${o.stdout.trim().slice(0, 12)}` }
        if (o.code === 2) return { ok: false, detail: `${remote} answers but has no branch ${branch}` }
        return failure(o, `git ls-remote ${remote} failed`)
      },
    },
    {
      id: 'clean',
      label: 'worktree is clean',
      command: render(gitDirtyFiles(appDir)),
      needsGit: true,
      judge: (o) => {
        if (o.code !== 0) return failure(o, 'git status failed')
        const files = o.stdout.split('\n').map((l) => l.slice(3).trim()).filter(Boolean)
        if (files.length === 0) return { ok: true, detail: 'no modified tracked files' }
        const shown = files.slice(0, 5).join(', ') + (files.length > 5 ? `, … (${files.length - 5} more)` : '')
        return { ok: false, detail: `${files.length} modified tracked file${files.length === 1 ? '' : 's'} (a rollout refuses this host): ${shown}` }
      },
    },
    {
      id: 'fence',
      label: "the app dir's parent is writable (fleet's fence)",
      command: fenceWritable(appDir),
      needsGit: false,
      judge: (o) => (o.code === 0 ? { ok: true, detail: `${o.stdout.trim()} is writable` } : failure(o, 'cannot write beside the app dir')),
    },
    {
      id: 'program:flock',
      label: 'flock on the non-interactive PATH',
      command: flockLookup(),
      needsGit: false,
      judge: (o) => (o.code === 0 ? { ok: true, detail: o.stdout.trim().split('\n')[0] ?? '' } : failure(o, 'flock not found')),
    },
  ]

  const seen = new Set<string>(['flock'])
  for (const step of STEP_NAMES) {
    const script = settings.steps[step]
    if (!script) continue
    const program = programOf(script)
    if (program === null) {
      checks.push(skip(`program:${step}`, `program of steps.${step}`, `steps.${step} does not start with a plain program name`))
    } else if (!seen.has(program)) {
      seen.add(program)
      checks.push({
        id: `program:${program}`,
        label: `${program} on the non-interactive PATH`,
        command: programLookup(appDir, program),
        needsGit: false,
        judge: (o) => (o.code === 0 ? { ok: true, detail: o.stdout.trim().split('\n')[0] ?? '' } : failure(o, `${program} not found`)),
      })
    }
    if (program === 'sudo') checks.push(sudoCheck(step, script, settings))
  }
  return checks
}

function sudoCheck(step: StepName, script: string, settings: CheckSettings): HostCheck {
  const label = `sudo allows steps.${step} without a password`
  const words = simpleWords(script, settings)
  if (words === null || words.length < 2) return skip(`sudo:${step}`, label, `steps.${step} is not one simple command; check it by hand with sudo -n -l`)
  const shown = words.slice(1).join(' ')
  return {
    id: `sudo:${step}`,
    label,
    command: render(sudoAllowed(words)),
    needsGit: false,
    judge: (o) => {
      if (o.code === 0) return { ok: true, detail: `allowed: ${lastLine(o.stdout) || shown}` }
      const said = reason(o.stderr)
      if (/password is required/i.test(said)) return { ok: false, detail: `sudo wants a password for: ${shown} (add a NOPASSWD rule)` }
      return { ok: false, detail: `${said || 'not allowed'}: ${shown}` }
    },
  }
}

function skip(id: string, label: string, why: string): HostCheck {
  return { id, label, command: null, skipped: why, needsGit: false, judge: () => ({ ok: true, detail: why }) }
}

