/**
 * The one place where remote shell text is produced. Builders return argv
 * arrays; only render() turns them into a string for the remote shell, and
 * every element goes through quote().
 */
export type Argv = readonly string[]

const SAFE = /^[A-Za-z0-9_@%+=:,./-]+$/

/** POSIX single-quote quoting: the result is always one literal word. */
export function quote(value: string): string {
  if (value.includes('\0')) throw new Error('a NUL byte cannot be passed to a remote command')
  if (value !== '' && SAFE.test(value)) return value
  return `'${value.replaceAll("'", `'\\''`)}'`
}

export const render = (argv: Argv): string => argv.map(quote).join(' ')

/** `a && b && c`, each rendered and quoted. */
export const chain = (...commands: Argv[]): string => commands.map(render).join(' && ')

/**
 * Runs an operator-written shell snippet (a `steps.*` value from the config) in
 * `dir`. The snippet itself is trusted config; the values substituted into it
 * were quoted by template().
 */
export const inDir = (dir: string, script: string): string => `cd ${quote(dir)} && ${script}`
