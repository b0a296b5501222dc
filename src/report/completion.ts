import type { Command } from 'commander'

import { UsageError } from '../errors.js'
import { withReadSource, type ReadContext } from './read-source.js'

/** One command of the tree, as a completion script needs it. */
export interface CompletionNode {
  /** ['hosts', 'enable']; [] is the program itself. */
  readonly path: readonly string[]
  readonly description: string
  readonly subcommands: readonly string[]
  readonly options: readonly { readonly flags: readonly string[]; readonly takesValue: boolean; readonly choices: readonly string[] | null; readonly description: string }[]
  /** What the positional arguments are: a host of the inventory, a file, or anything. */
  readonly argument: 'host' | 'file' | 'shell' | null
}

export const SHELLS = ['bash', 'zsh', 'fish'] as const

/** Arguments that name an existing host (`hosts add <name>` names a new one). */
const isHostArgument = (command: Command): boolean =>
  command.name() !== 'add' && command.registeredArguments.some((a) => ['host', 'name', 'names'].includes(a.name()))

const hidden = (command: Command): boolean => (command as unknown as { _hidden?: boolean })._hidden === true

/** The commander tree as data: commands, options and argument kinds, from the program itself (never a list kept by hand). */
export function completionTree(program: Command): CompletionNode[] {
  const walk = (command: Command, path: string[]): CompletionNode[] => {
    const subs = command.commands.filter((c) => !hidden(c))
    const argument = isHostArgument(command) ? 'host' : command.registeredArguments.some((a) => a.name() === 'file') ? 'file' : command.registeredArguments.some((a) => a.name() === 'shell') ? 'shell' : null
    const node: CompletionNode = {
      path,
      description: command.description(),
      subcommands: subs.map((c) => c.name()),
      options: command.options
        .filter((o) => !o.hidden)
        .map((o) => ({ flags: [o.short, o.long].filter((f): f is string => !!f), takesValue: o.required || o.optional, choices: o.argChoices ?? null, description: o.description })),
      argument,
    }
    return [node, ...subs.flatMap((c) => walk(c, [...path, c.name()]))]
  }
  return walk(program, [])
}

/** Host names for the scripts: one a line; a name a shell could misread (control characters) is left out. */
export const hostLines = (names: readonly string[]): string => names.filter((n) => n.length > 0 && !/[\u0000-\u001f\u007f]/.test(n)).map((n) => `${n}\n`).join('')

const q = (text: string): string => `'${text.replace(/'/g, `'\\''`)}'`

function bash(nodes: readonly CompletionNode[]): string {
  const root = nodes[0]!
  const valueFlags = (n: CompletionNode) => n.options.filter((o) => o.takesValue).flatMap((o) => o.flags)
  const cases = nodes
    .slice(1)
    .map((n) => {
      const opts = n.options.flatMap((o) => o.flags)
      const choices = n.options.filter((o) => o.choices).map((o) => `${o.flags.join('|')}) choices=${q(o.choices!.join(' '))} ;;`)
      return `    ${q(n.path.join(' '))}) subs=${q(n.subcommands.join(' '))}; opts=${q(opts.join(' '))}; vals=${q(valueFlags(n).join(' '))}; arg=${n.argument ?? 'none'}${choices.length ? `; case $2 in ${choices.join(' ')} esac` : ''} ;;`
    })
    .join('\n')
  return `# fleet completion for bash: add to ~/.bashrc
#   source <(fleet completion bash)
# Commands and options come from fleet's own command tree; host names from the inventory
# (\`fleet __complete hosts\`, read-only, with the --config and --database-url of the line).
_fleet_spec() {
  subs='' opts='' vals='' arg=none choices=''
  case "$1" in
    '') subs=${q(root.subcommands.join(' '))} ;;
${cases}
  esac
}
_fleet() {
  local cur=\${COMP_WORDS[COMP_CWORD]} prev=\${COMP_WORDS[COMP_CWORD-1]}
  local gopts=${q(root.options.flatMap((o) => o.flags).join(' '))} gvals=${q(valueFlags(root).join(' '))}
  local path='' subs opts vals arg choices w i skip=0 h quoted
  local -a store=()
  for ((i = 1; i < COMP_CWORD; i++)); do
    w=\${COMP_WORDS[i]}
    if ((skip)); then skip=0; store+=("$w"); continue; fi
    _fleet_spec "$path" ''
    if [[ " $gvals " == *" $w "* ]]; then skip=1; store+=("$w"); continue; fi
    if [[ " $vals " == *" $w "* ]]; then skip=1; continue; fi
    [[ $w == -* ]] && continue
    if [[ " $subs " == *" $w "* ]]; then path=\${path:+$path }$w; fi
  done
  _fleet_spec "$path" "$prev"
  COMPREPLY=()
  if [[ " $gvals $vals " == *" $prev "* ]]; then
    if [[ -n $choices ]]; then COMPREPLY=($(compgen -W "$choices" -- "$cur"))
    elif [[ $prev == -c || $prev == --config ]]; then COMPREPLY=($(compgen -f -- "$cur")); fi
    return 0
  fi
  if [[ $cur == -* ]]; then COMPREPLY=($(compgen -W "$opts $gopts" -- "$cur")); return 0; fi
  if [[ -n $subs ]]; then COMPREPLY=($(compgen -W "$subs" -- "$cur")); return 0; fi
  case $arg in
    host)
      # Names are data: matched by hand, never through compgen -W (which would expand $(…) in them).
      while IFS= read -r h; do
        if [[ $h == "$cur"* ]]; then printf -v quoted '%q' "$h"; COMPREPLY+=("$quoted"); fi
      done < <(command fleet "\${store[@]}" __complete hosts 2>/dev/null) ;;
    file) COMPREPLY=($(compgen -f -- "$cur")) ;;
    shell) COMPREPLY=($(compgen -W 'bash zsh fish' -- "$cur")) ;;
  esac
  return 0
}
complete -F _fleet fleet
`
}

const zsh = (nodes: readonly CompletionNode[]): string =>
  `#compdef fleet
# fleet completion for zsh: add to ~/.zshrc
#   source <(fleet completion zsh)
# zsh runs the bash completion through bashcompinit (same commands, options and host names).
autoload -U +X compinit && { (( $+functions[compdef] )) || compinit }
autoload -U +X bashcompinit && bashcompinit
${bash(nodes).replace(/^# fleet completion for bash[^\n]*\n#[^\n]*\n/, '')}`

function fish(nodes: readonly CompletionNode[]): string {
  const lines = ['# fleet completion for fish: fleet completion fish > ~/.config/fish/completions/fleet.fish', 'complete -c fleet -f']
  const esc = (text: string): string => q(text.replace(/\s+/g, ' ').slice(0, 80))
  const condition = (path: readonly string[], subs: readonly string[]): string => {
    const seen = path.map((p) => `__fish_seen_subcommand_from ${p}`)
    const notYet = subs.length ? [`not __fish_seen_subcommand_from ${subs.join(' ')}`] : []
    return [...(path.length ? seen : ['__fish_use_subcommand']), ...(path.length ? notYet : [])].join('; and ')
  }
  for (const node of nodes) {
    const parent = node.path.slice(0, -1)
    const siblings = nodes.find((n) => n.path.join(' ') === parent.join(' '))?.subcommands ?? []
    if (node.path.length) lines.push(`complete -c fleet -n ${q(condition(parent, siblings))} -a ${node.path.at(-1)!} -d ${esc(node.description)}`)
    const here = node.path.length ? node.path.map((p) => `__fish_seen_subcommand_from ${p}`).join('; and ') : null
    for (const o of node.options) {
      const flags = o.flags.map((f) => (f.startsWith('--') ? `-l ${f.slice(2)}` : `-s ${f.slice(1)}`)).join(' ')
      const value = o.takesValue ? (o.choices ? ` -x -a ${q(o.choices.join(' '))}` : o.flags.includes('--config') ? ' -r -F' : ' -x') : ''
      lines.push(`complete -c fleet${here ? ` -n ${q(here)}` : ''} ${flags}${value} -d ${esc(o.description)}`)
    }
    if (node.argument && here) {
      const args = node.argument === 'host' ? q('(fleet __complete hosts 2>/dev/null)') : node.argument === 'shell' ? q('bash zsh fish') : null
      lines.push(args ? `complete -c fleet -n ${q(`${here}; and not __fish_seen_subcommand_from ${node.subcommands.join(' ') || '__none__'}`)} -a ${args}` : `complete -c fleet -n ${q(here)} -F`)
    }
  }
  return `${lines.join('\n')}\n`
}

/** `fleet completion <shell>`: the script for that shell. */
export function completionScript(shell: string, program: Command): string {
  const nodes = completionTree(program)
  if (shell === 'bash') return bash(nodes)
  if (shell === 'zsh') return zsh(nodes)
  if (shell === 'fish') return fish(nodes)
  throw new UsageError(`no completion for ${JSON.stringify(shell)}: pick one of ${SHELLS.join(', ')}`)
}

/** `fleet __complete hosts`: the names of the inventory (the hosts table, or inventory.query's rows), read as read-only commands read. */
export async function inventoryNames(ctx: ReadContext): Promise<string> {
  const names = await withReadSource(ctx, async (source) =>
    ctx.config.inventory.query ? (await source.inventory()).hosts.map((h) => h.name) : (await source.hosts()).map((h) => h.name),
  )
  return hostLines(names)
}
