import { quote } from './shell.js'

/**
 * The fence on the host: a small token file beside the app dir holding the
 * store's id and the highest lease epoch that has touched the host. A host's
 * update claims it (under flock) in its first command; every later command
 * checks it first. A process that lost its lease but does not know it yet is
 * refused by the host itself: its epoch is older than the file's.
 */
export interface FenceToken {
  readonly storeId: string
  readonly epoch: number
}

/** The exit code of a command the fence refused (EX_TEMPFAIL), with FENCE_MARK at the start of stderr. */
export const FENCE_REFUSED = 75
export const FENCE_MARK = 'fleet-fence:'

/** `<app_dir>.fleet-fence` (+ `.lock`, `.log`): beside the app dir, in a directory the SSH user owns. */
export const fencePath = (appDir: string): string => `${appDir.replace(/\/+$/, '')}.fleet-fence`

const refuse = (file: string, epoch: number): string =>
  `{ s=; e=0; [ -f ${file} ] && read -r s e < ${file}; ` +
  `if [ "$s" = "$fs" ] && [ "$e" -gt ${epoch} ] 2>/dev/null; then echo "${FENCE_MARK} refused: epoch $e of this store has taken this host over (ours: ${epoch})" >&2; exit ${FENCE_REFUSED}; fi; }`

/** `<app_dir>.fleet-fence.run/<pid>`: one file per fenced command running, `<store> <epoch> <start time>`. */
const runDir = (appDir: string): string => `${fencePath(appDir)}.run`

/** A process group still has a live member (a zombie, reaped late where init is slow, does not count). */
const liveIn = (group: string): string =>
  `cat /proc/[0-9]*/stat 2>/dev/null | sed 's/.*) //' | awk -v g=${group} '$3 == g && $1 != "Z" { f = 1 } END { exit !f }'`

/** A process's start time (field 22 of /proc/<pid>/stat): with its pid it names one process, never a reused pid. */
const startOf = (pid: string): string => `$(sed 's/.*) //' /proc/${pid}/stat 2>/dev/null | cut -d' ' -f20)`

const shownOf = (appDir: string): string => fencePath(appDir).replace(/["$`\\]/g, '\\$&')
const cannot = (appDir: string, what: string): string =>
  `{ echo "fleet could not ${what} ${shownOf(appDir)}.lock (flock from util-linux is needed, and a directory the SSH user can write)" >&2; exit 1; }`

/** Under the lock: this command is registered as running for its epoch, so a later claim can stop it. */
const register = (appDir: string, epoch: number): string =>
  `{ mkdir -p ${quote(runDir(appDir))} && printf '%s %s %s\\n' "$fs" ${epoch} "${startOf('$$')}" > "$fr"; } || ${cannot(appDir, 'write beside')}`

/**
 * After the lock: the registration goes when the command ends (a command killed leaves it; the next
 * claim clears it). A command a newer claim stopped (TERM) says so like a refusal, so its process
 * learns at once that the rollout is someone else's; any other TERM is an ordinary 143.
 */
const run = (appDir: string, epoch: number, command: string): string =>
  `fleet_stopped() { ${refuse(quote(fencePath(appDir)), epoch)}; exit 143; }; trap fleet_stopped TERM; trap 'rm -f "$fr"' EXIT; ${command}`

/**
 * A claim stops what older epochs of the same store still run on the host (a frozen or lost
 * process's install, say): TERM to each command's process group, up to 5 s, then KILL. Only a
 * registered process whose start time still matches is signalled; stale entries are removed.
 */
const stopOlder = (appDir: string, epoch: number, log: string): string =>
  `k=; for f in ${quote(runDir(appDir))}/*; do [ -f "$f" ] || continue; p=\${f##*/}; s=; e=; st=; read -r s e st < "$f"; ` +
  `if [ "$s" = "$fs" ] && [ "$e" -lt ${epoch} ] 2>/dev/null; then ` +
  `if [ -n "$st" ] && [ "${startOf('$p')}" = "$st" ]; then kill -s TERM -- -$p 2>/dev/null || kill -s TERM $p 2>/dev/null; k="$k $p:$st"; ` +
  `printf '%s %s stopped pid %s of epoch %s\\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" ${epoch} $p "$e" >> ${log}; fi; rm -f "$f"; ` +
  `elif [ ! -e /proc/$p ]; then rm -f "$f"; fi; done; ` +
  `for ps in $k; do p=\${ps%%:*}; st=\${ps#*:}; n=0; while [ $n -lt 50 ] && ${liveIn('$p')}; do sleep 0.1; n=$((n+1)); done; ` +
  // The group, or (not a group leader) the process itself if it is still the same one: never a reused pid.
  `kill -s KILL -- -$p 2>/dev/null || { [ "${startOf('$p')}" = "$st" ] && kill -s KILL $p 2>/dev/null; }; done`

/**
 * Claims the host for `token` and then runs `command`: under an exclusive
 * flock, refuses if a newer epoch of the same store holds it, else writes the
 * token, appends `<time> <epoch> <label>` to the log and stops the commands
 * older epochs still run there. A host that cannot take the lock (no flock,
 * unwritable directory) fails like any step.
 */
export function fenceClaim(appDir: string, token: FenceToken, label: string, command: string): string {
  const file = quote(fencePath(appDir))
  const lock = quote(`${fencePath(appDir)}.lock`)
  const tmp = quote(`${fencePath(appDir)}.tmp`)
  const log = quote(`${fencePath(appDir)}.log`)
  return (
    `fs=${quote(token.storeId)}; fr=${quote(runDir(appDir))}/$$; ` +
    `( { flock -w 30 9 || ${cannot(appDir, 'lock')}; ` +
    `${refuse(file, token.epoch)}; ` +
    `{ printf '%s %s\\n' "$fs" ${token.epoch} > ${tmp} && mv -f ${tmp} ${file} && ` +
    `printf '%s %s %s\\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" ${token.epoch} ${quote(label)} >> ${log}; } || ${cannot(appDir, 'write beside')}; ` +
    `${stopOlder(appDir, token.epoch, log)}; ${register(appDir, token.epoch)}; } 9>>${lock} || ${cannot(appDir, 'open')} ) || exit $?; ` +
    run(appDir, token.epoch, command)
  )
}

/**
 * Runs `command` only if no newer epoch of the same store has claimed the host: checked and
 * registered under a shared lock, so a claim either comes first (and this is refused) or sees it
 * running (and stops it).
 */
export const fenceCheck = (appDir: string, token: FenceToken, command: string): string =>
  `fs=${quote(token.storeId)}; fr=${quote(runDir(appDir))}/$$; ` +
  `( { flock -s -w 30 9 || ${cannot(appDir, 'lock')}; ${refuse(quote(fencePath(appDir)), token.epoch)}; ${register(appDir, token.epoch)}; } 9>>${quote(`${fencePath(appDir)}.lock`)} || ${cannot(appDir, 'open')} ) || exit $?; ` +
  run(appDir, token.epoch, command)
