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

/**
 * Claims the host for `token` and then runs `command`: under an exclusive
 * flock, refuses if a newer epoch of the same store holds it, else writes the
 * token and appends `<time> <epoch> <label>` to the log. A host that cannot
 * take the lock (no flock, unwritable directory) fails like any step.
 */
export function fenceClaim(appDir: string, token: FenceToken, label: string, command: string): string {
  const file = quote(fencePath(appDir))
  const lock = quote(`${fencePath(appDir)}.lock`)
  const tmp = quote(`${fencePath(appDir)}.tmp`)
  const log = quote(`${fencePath(appDir)}.log`)
  const shown = fencePath(appDir).replace(/["$`\\]/g, '\\$&')
  const cannot = (what: string) => `{ echo "fleet could not ${what} ${shown}.lock (flock from util-linux is needed, and a directory the SSH user can write)" >&2; exit 1; }`
  return (
    `fs=${quote(token.storeId)}; ` +
    `( { flock -w 30 9 || ${cannot('lock')}; ` +
    `${refuse(file, token.epoch)}; ` +
    `{ printf '%s %s\\n' "$fs" ${token.epoch} > ${tmp} && mv -f ${tmp} ${file} && ` +
    `printf '%s %s %s\\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" ${token.epoch} ${quote(label)} >> ${log}; } || ${cannot('write beside')}; } 9>>${lock} || ${cannot('open')} ) || exit $?; ` +
    command
  )
}

/** Runs `command` only if no newer epoch of the same store has claimed the host. */
export const fenceCheck = (appDir: string, token: FenceToken, command: string): string =>
  `fs=${quote(token.storeId)}; ${refuse(quote(fencePath(appDir)), token.epoch)}; ${command}`
