import { readFileSync } from 'node:fs'
import { join } from 'node:path'

import { Command, CommanderError, Option } from 'commander'

import { CONFIG_FILE_DEFAULTS } from '../config/load.js'
import { ExitCode, FleetError, errorMessage } from '../errors.js'
import type { GlobalFlags } from './context.js'
import { guardStdio } from './stdio.js'
import { packageRoot } from '../package-root.js'
import { cleanReason, sanitize } from '../text/sanitize.js'

/**
 * The command tree: flags in, a plain function per command, an exit code out.
 * Command modules are imported lazily so `fleet --help` loads almost nothing.
 */
export function buildProgram(): Command {
  const program = new Command('fleet')
    .description('Staged, self-healing rollouts of an app to a fleet of VPSs over SSH')
    .version(VERSION, '-V, --version')
    .option('-c, --config <path>', 'config file (default: ./rollout.config.json if present)')
    .option('--database-url <url>', 'Postgres URL (default: $FLEET_DATABASE_URL, $DATABASE_URL, else embedded PGlite)')
    .option('--json', 'machine-readable output on stdout (human text goes to stderr)')
    .option('--no-color', 'no colours (also NO_COLOR=1)')
    .option('-v, --verbose', 'more detail: every step of every host')
    .option('-q, --quiet', 'only the final outcome')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    .configureOutput({ outputError: (text, write) => write(text) })
    .addHelpText(
      'after',
      `
Settings: flags > $FLEET_<SECTION>_<KEY> > rollout.config.json > defaults (rollout.config.example.json lists every key).

Example:
  fleet hosts import hosts.csv && fleet rollout start --dry-run && fleet rollout start --ref v2.3.0`,
    )

  // A --reason is stored and shown to others: one clean line from the start (no escape sequence, no \r).
  const globals = (cmd: Command): GlobalFlags => {
    const flags = cmd.optsWithGlobals<GlobalFlags & { reason?: string }>()
    return flags.reason === undefined ? flags : ({ ...flags, reason: cleanReason(flags.reason) } as GlobalFlags)
  }

  const rollout = program
    .command('rollout')
    .description('start a staged rollout, show its status, and resume or abort one whose orchestrator died')
    .addHelpText('after', '\nExample:\n  fleet rollout start --dry-run   # the plan: target commit, canaries, stages\n  fleet rollout status --watch')
  rollout
    .command('start')
    .description('ship a ref to the fleet in stages, rolling failing hosts back')
    .option('--ref <ref>', `branch, tag or commit to ship (default: app.branch, ${builtIn('app.branch')})`)
    .option('--stages <list>', `cumulative percentages (default: ${builtIn('rollout.stages')})`)
    .option('--failure-threshold <rate>', `halt when a stage fails more often than this, 0..1 (default: ${builtIn('rollout.failureThreshold')})`)
    .option('--concurrency <n>', `hosts in flight at once within a stage (default: ${builtIn('rollout.concurrency')})`)
    .option('--stage-delay <duration>', `pause between stages, e.g. 30s, 2m (default: ${builtIn('rollout.stageDelay')})`)
    .option('--seed <seed>', 'canary order seed (default: the target commit, so the dry run shows the canaries the real run uses)')
    .option('--dry-run', 'print the plan (target commit, stages with hosts) and change nothing')
    .option('-y, --yes', 'do not ask for confirmation (fleet never prompts without a TTY)')
    .option('--detach', 'run the first stage, then return (state baking); `fleet rollout tick` from cron does the rest')
    .option('--ignore-cooldown', 'start even though rollout.cooldown after a halted or reverted rollout is in force (needs --reason; recorded)')
    .option('--ignore-window', 'start outside every deploy window (rollout.windows; needs --reason; recorded); no window applies to this rollout')
    .option('--reason <text>', 'why, with --ignore-cooldown or --ignore-window (recorded in the audit trail)')
    .addHelpText(
      'after',
      '\nDefaults are the built-in ones; rollout.config.json and $FLEET_ROLLOUT_* change them, flags win.\n\nExample:\n  fleet rollout start --ref v2.3.0 --stages 5,25,100 --concurrency 10',
    )
    .action(async (_opts, cmd: Command) => {
      const { rolloutStart } = await import('./commands/rollout-start.js')
      exit(await rolloutStart(globals(cmd)))
    })
  rollout
    .command('status [rollout-id]')
    .description('state, stage, counts and per-host table of the latest (or given) rollout')
    .option('-w, --watch', "redraw until the rollout ends, then exit with the rollout's exit code (with --json: one status per change)")
    .option('--interval <duration>', 'how often --watch re-reads the store', '2s')
    .option('--timeout <duration>', 'with --watch: stop waiting after this long and exit 8')
    .option('--all', 'list every host (above 50 hosts only those not success/skipped/pending are listed)')
    .addHelpText('after', '\nExample:\n  fleet rollout status --json | jq .counts')
    .action(async (id: string | undefined, _opts, cmd: Command) => {
      const { rolloutStatus } = await import('./commands/rollout-status.js')
      exit(await rolloutStatus(id, globals(cmd)))
    })

  rollout
    .command('resume')
    .description('continue a paused, interrupted or crashed rollout: settle hosts left updating, then go on (a paused stage bakes again)')
    .option('--reason <text>', 'why (recorded in the audit trail)')
    .option('--detach', 'go on only until waiting is left (a bake, a stage delay), then leave the rest to `fleet rollout tick`; a rollout cron drives is handed back anyway')
    .addHelpText('after', '\nGates are taken from the config as it is now (what changed from the recorded ones is said and recorded).\n\nExample:\n  fleet rollout resume --reason "metrics back" --json')
    .action(async (_opts, cmd: Command) => {
      const { rolloutResume } = await import('./commands/recover.js')
      exit(await rolloutResume(globals(cmd)))
    })
  rollout
    .command('pause')
    .description('stop starting hosts (in-flight hosts finish); the rollout stays paused until resume or promote; works from any shell')
    .option('--reason <text>', 'why (recorded in the audit trail)')
    .addHelpText('after', '\nExample:\n  fleet rollout pause --reason "db migration running"')
    .action(async (_opts, cmd: Command) => {
      const { rolloutPause } = await import('./commands/rollout-control.js')
      exit(await rolloutPause(globals(cmd)))
    })
  rollout
    .command('promote')
    .description("end the current stage's bake as passed (a paused rollout goes on past its inconclusive or unreachable gates)")
    .requiredOption('--reason <text>', 'why (recorded in the audit trail)')
    .option('--skip-bake', "also skip the bake of a stage whose hosts are still updating")
    .option('--detach', 'go on only until waiting is left, then leave the rest to `fleet rollout tick`')
    .addHelpText('after', '\nExample:\n  fleet rollout promote --reason "error budget reviewed by ann"')
    .action(async (_opts, cmd: Command) => {
      const { rolloutPromote } = await import('./commands/rollout-control.js')
      exit(await rolloutPromote(globals(cmd)))
    })
  rollout
    .command('tick')
    .description('for cron: take the one step that is due (next stage, a gate measurement, a revert), then exit; with --ref, start a rollout when none is in progress')
    .option('--ref <ref>', 'start a rollout of this ref when none is in progress, unless it is the commit the last completed rollout shipped')
    .option('--ignore-cooldown', 'start even though rollout.cooldown is in force (needs --reason; recorded)')
    .option('--reason <text>', 'why, with --ignore-cooldown (recorded in the audit trail)')
    .addHelpText('after', '\nExit: 0 progressed or waited (also while another process runs it), 7 paused or gates in error, 3/4/5 on the tick that ended it.\n\nExample:\n  fleet rollout tick --ref main   # from cron, every minute: continuous delivery of main')
    .action(async (_opts, cmd: Command) => {
      const { rolloutTick } = await import('./commands/rollout-tick.js')
      exit(await rolloutTick(globals(cmd)))
    })
  rollout
    .command('abort')
    .description('end a rollout whose orchestrator died, optionally moving updated hosts back')
    .option('--rollback', 'move every host the rollout updated back to its previous version (staged)')
    .option('--reason <text>', 'why (recorded in the audit trail)')
    .addHelpText('after', '\nExit: 0 aborted, 3 the move back halted, 5 a rollback failed, 130 a stop came before every host was moved back (run it again).\n\nExample:\n  fleet rollout abort --rollback --reason "checkout errors"')
    .action(async (_opts, cmd: Command) => {
      const { rolloutAbort } = await import('./commands/recover.js')
      exit(await rolloutAbort(globals(cmd)))
    })
  rollout
    .command('events [rollout-id]')
    .description('the audit trail of the latest (or given) rollout: who did what, when and why, with gate values')
    .option('--markdown', 'a report to paste into an incident document')
    .option('--all', 'with the text output: host progress too (--json always has every event)')
    .addHelpText('after', '\nExample:\n  fleet rollout events --markdown > incident.md\n  fleet rollout events --json | jq -c \'select(.manual)\'')
    .action(async (id: string | undefined, _opts, cmd: Command) => {
      const { rolloutEvents } = await import('./commands/rollout-events.js')
      exit(await rolloutEvents(id, globals(cmd)))
    })

  program
    .command('rollback <host>')
    .description('move one host back to its previous version (or --to a commit), verified')
    .option('--to <sha>', 'commit to move to (default: the previous version fleet recorded)')
    .option('--reason <text>', 'why (recorded in the audit trail of the latest rollout that included the host)')
    .addHelpText('after', '\nExample:\n  fleet rollback customer-42 --to 3f2a9c1')
    .action(async (host: string, _opts, cmd: Command) => {
      const { rollbackHostCommand } = await import('./commands/rollback.js')
      exit(await rollbackHostCommand(host, globals(cmd)))
    })

  program
    .command('init')
    .description('write the config example (every key at its default) to ./rollout.config.json, or to the --config path; an existing file is kept unless --force')
    .option('--force', 'overwrite an existing file')
    .addHelpText('after', '\nExample:\n  fleet init --config /etc/fleet/rollout.config.json')
    .action(async (_opts, cmd: Command) => {
      const { init } = await import('./commands/init.js')
      exit(await init(globals(cmd)))
    })

  program
    .command('demo')
    .description('run two real rollouts on a throw-away local fleet (real SSH, git, PGlite); cleans up after')
    .option('--hosts <n>', 'simulated hosts', '20')
    .addHelpText('after', '\nExample:\n  fleet demo --hosts 10')
    .action(async (_opts, cmd: Command) => {
      const { demo } = await import('./commands/demo.js')
      exit(await demo(globals(cmd)))
    })

  const hosts = program
    .command('hosts')
    .description("the hosts fleet rolls out to: its built-in inventory table (list, add, update, import, enable, disable), holds and host checks")
    .addHelpText('after', '\nExample:\n  fleet hosts add customer-42 203.0.113.42 --port 2222 && fleet hosts list')
  hosts
    .command('list')
    .description('list the inventory (the hosts table, or the inventory.query result)')
    .addHelpText('after', '\nExample:\n  fleet hosts list --json | jq -r \'.hosts[].name\'')
    .action(async (_opts, cmd: Command) => {
      const { hostsList } = await import('./commands/hosts.js')
      exit(await hostsList(globals(cmd)))
    })
  hosts
    .command('add <name> <address>')
    .description('add a new host; the name is any label (an email, a UUID), the address a host name, IPv4 or IPv6. An existing name is refused: use update')
    .option('--port <port>', `SSH port (default: ssh.port, ${builtIn('ssh.port')})`)
    .option('--user <user>', `SSH user (default: ssh.user, ${builtIn('ssh.user')})`)
    .option('--app-dir <path>', `app checkout (default: app.dir, ${builtIn('app.dir')})`)
    .option('--ring <name>', 'its ring (rollout.rings; default: none, the last ring)')
    .option('--timezone <zone>', 'its IANA time zone, for windows with "timezone": "host" (e.g. Europe/Berlin)')
    .option('--inactive', 'add it disabled (default: active)')
    .addHelpText('after', '\nExample:\n  fleet hosts add customer-42 203.0.113.42 --port 2222')
    .action(async (name: string, address: string, _opts, cmd: Command) => {
      const { hostsAdd } = await import('./commands/hosts.js')
      exit(await hostsAdd(name, address, globals(cmd)))
    })
  hosts
    .command('update <name>')
    .description('change only the given fields of a host; everything else stays as it is')
    .option('--address <address>', 'new address (host name, IPv4 or IPv6)')
    .option('--port <port>', 'SSH port')
    .option('--user <user>', 'SSH user')
    .option('--app-dir <path>', 'app checkout')
    .option('--ring <name>', 'its ring ("": none, the last ring)')
    .option('--timezone <zone>', 'its IANA time zone ("": none)')
    .addHelpText('after', '\nExample:\n  fleet hosts update customer-42 --address 198.51.100.7')
    .action(async (name: string, _opts, cmd: Command) => {
      const { hostsUpdate } = await import('./commands/hosts.js')
      exit(await hostsUpdate(name, globals(cmd)))
    })
  hosts
    .command('import <file>')
    .description(
      'add or update hosts from a JSON array or a CSV file with a header (name,address[,port,user,app_dir,active,ring,timezone]). ' +
        'Existing hosts change only in the columns the file has (an empty cell: back to the config default); one bad row and nothing is imported',
    )
    .addOption(new Option('--format <format>', 'file format (default: from the extension)').choices(['json', 'csv']))
    .option('--deactivate-missing', 'disable the hosts of the table that the file does not list')
    .addHelpText('after', '\nExample:\n  fleet hosts import hosts.csv --deactivate-missing')
    .action(async (file: string, _opts, cmd: Command) => {
      const { hostsImport } = await import('./commands/hosts-import.js')
      exit(await hostsImport(file, globals(cmd)))
    })
  for (const [verb, active] of [['enable', true], ['disable', false]] as const)
    hosts
      .command(`${verb} <names...>`)
      .description(`${verb} hosts (disabled hosts are never touched by a rollout)`)
      .addHelpText('after', `\nExample:\n  fleet hosts ${verb} customer-42 customer-43`)
      .action(async (names: string[], _opts, cmd: Command) => {
        const { hostsSetActive } = await import('./commands/hosts.js')
        exit(await hostsSetActive(names, active, globals(cmd)))
      })
  hosts
    .command('hold <name>')
    .description('keep a host out of every rollout (never touched, shown as held) until unheld or --until; by name, whatever the inventory source')
    .requiredOption('--reason <text>', 'why (shown wherever the host is, with who held it)')
    .option('--until <time>', 'lift it by itself at this ISO time (2030-06-01T06:00Z) or after a duration (12h, 2d, 1w)')
    .addHelpText('after', '\nExample:\n  fleet hosts hold customer-42 --reason "customer asked: no changes this week" --until 7d')
    .action(async (name: string, _opts, cmd: Command) => {
      const { hostsHold } = await import('./commands/hosts.js')
      exit(await hostsHold(name, globals(cmd)))
    })
  hosts
    .command('unhold <name>')
    .description('lift a hold: the host takes part in rollouts again')
    .addHelpText('after', '\nExample:\n  fleet hosts unhold customer-42')
    .action(async (name: string, _opts, cmd: Command) => {
      const { hostsUnhold } = await import('./commands/hosts.js')
      exit(await hostsUnhold(name, globals(cmd)))
    })
  hosts
    .command('forget-key <name>')
    .description("drop fleet's pinned host key after a host was really reinstalled (known_hosts is never touched)")
    .addHelpText('after', '\nExample:\n  fleet hosts forget-key customer-42')
    .action(async (name: string, _opts, cmd: Command) => {
      const { hostsForgetKey } = await import('./commands/hosts.js')
      exit(await hostsForgetKey(name, globals(cmd)))
    })
  hosts
    .command('check [names...]')
    .description("read-only preflight of each active host (or the named ones): SSH login and host key, app dir a clean git work tree, remote fetchable, step programs and flock on the non-interactive PATH, sudo without a password, the app dir's parent writable; and drift: the commit it runs against the one fleet recorded. Exit 0 when all are ready, 9 when some are not or drifted")
    .addHelpText('after', '\nExample:\n  fleet hosts check customer-42 --json')
    .action(async (names: string[], _opts, cmd: Command) => {
      const { hostsCheck } = await import('./commands/hosts-check.js')
      exit(await hostsCheck(names, globals(cmd)))
    })

  program
    .command('history')
    .description('past rollouts, newest first: state, target, start, duration and host counts')
    .option('--limit <n>', 'how many rollouts to show (1..10000)', '20')
    .addHelpText('after', '\nExample:\n  fleet history --limit 5 --json | jq .[0].counts')
    .action(async (_opts, cmd: Command) => {
      const { history } = await import('./commands/history.js')
      exit(await history(globals(cmd)))
    })

  const see = () => import('./commands/see.js')
  program.command('dashboard').description('a read-only web page of the rollouts, live: stages, hosts, gate plots, audit trail; prints its URL')
    .option('--port <n>', 'port to listen on (0: any free one)', '7070').option('--host <address>', 'address to listen on (another than 127.0.0.1 shows the fleet to that network)', '127.0.0.1')
    .addHelpText('after', '\nExample:\n  fleet dashboard --port 8080   # then open http://127.0.0.1:8080/')
    .action(async (_opts, cmd: Command) => exit(await (await see()).dashboard(globals(cmd))))
  program.command('completion <shell>').description('print a completion script for bash, zsh or fish: commands, options, host names from the inventory')
    .addHelpText('after', '\nExample:\n  fleet completion bash > ~/.local/share/bash-completion/completions/fleet   # or in ~/.bashrc: source <(fleet completion bash)')
    .action(async (shell: string) => exit((await see()).completion(shell, program)))
  program.command('__complete <what>', { hidden: true }).description('host names for the completion scripts (what: hosts), one a line')
    .addHelpText('after', '\nExample:\n  fleet __complete hosts   # what the completion scripts call')
    .action(async (_what: string, _opts, cmd: Command) => exit(await (await see()).complete(globals(cmd))))

  return program
}

/** The version is package.json's, at the package root. */
const VERSION = (JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version

/** A built-in default as help shows it (`10,50,100`, `0.3`, `10s`), from the config schema so it cannot drift. */
const builtIn = (dotted: string): string => {
  const [section = '', key = ''] = dotted.split('.')
  const value = CONFIG_FILE_DEFAULTS[section]?.[key]
  return Array.isArray(value) ? value.join(',') : String(value)
}

class Exit extends Error {
  constructor(readonly code: number) {
    super(`exit ${code}`)
  }
}
const exit = (code: number): never => {
  throw new Exit(code)
}

/** The only catch: typed errors become their exit codes, anything else is an internal error (1). */
export async function main(argv: readonly string[]): Promise<number> {
  // A closed pipe or a dead terminal must never crash fleet (see stdio.ts).
  guardStdio()
  const program = buildProgram()
  try {
    await program.parseAsync(argv as string[])
    return ExitCode.ok
  } catch (error) {
    if (error instanceof Exit) return error.code
    if (error instanceof CommanderError) {
      if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version' || error.code === 'commander.help')
        return ExitCode.ok
      return ExitCode.usage
    }
    if (error instanceof FleetError) {
      // Messages quote what others wrote (a lock holder's argv, a server's error): cleaned at the edge.
      process.stderr.write(`fleet: ${sanitize(error.message)}\n`)
      return error.exitCode
    }
    const verbose = argv.includes('-v') || argv.includes('--verbose')
    process.stderr.write(`fleet: internal error: ${sanitize(errorMessage(error))}\n${verbose && error instanceof Error ? `${error.stack}\n` : '(run with -v for details)\n'}`)
    return ExitCode.internal
  }
}
