import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'

import { expandHome } from '../../config/parsers.js'
import { CONFIG_FILE_NAME } from '../../config/sources.js'
import { UsageError, errorMessage } from '../../errors.js'
import { packageRoot } from '../../package-root.js'
import type { GlobalFlags } from '../context.js'
import { makeOutput, printJson, say } from '../output.js'

/** Shipped at the package root ("files" in package.json). */
export const EXAMPLE_CONFIG = join(packageRoot(), 'rollout.config.example.json')

/** Errors about the path the operator gave (exit 2), not about fleet (EEXIST: a file where a directory must be). */
const BAD_PATH = new Set(['EACCES', 'EPERM', 'EISDIR', 'ENOTDIR', 'EROFS', 'EEXIST'])

/**
 * `fleet init`: the config example, every key at its default, where the other commands look for
 * the config (--config, $FLEET_CONFIG, ./rollout.config.json). It never loads that config: it is
 * what is being written, so a missing or broken one must not stop `--force`.
 */
export async function init(flags: GlobalFlags & { force?: boolean }): Promise<number> {
  const out = makeOutput(flags)
  const target = resolve(expandHome(flags.config ?? (process.env.FLEET_CONFIG || CONFIG_FILE_NAME)))
  const text = await readFile(EXAMPLE_CONFIG, 'utf8')
  try {
    await mkdir(dirname(target), { recursive: true })
    // 'wx' checks and creates in one step, so a file that appears meanwhile is not overwritten either.
    await writeFile(target, text, { flag: flags.force ? 'w' : 'wx' })
  } catch (error) {
    const { code = '', syscall } = error as NodeJS.ErrnoException
    if (code === 'EEXIST' && syscall === 'open') throw new UsageError(`${target} already exists (nothing changed); \`fleet init --force\` overwrites it`)
    if (BAD_PATH.has(code)) throw new UsageError(`cannot write ${target}: ${errorMessage(error)} (nothing changed)`)
    throw error
  }
  if (out.json) printJson(out, { written: target })
  say(out, `wrote ${target}: every key at its default. Set ssh, app and steps for your hosts, then: fleet hosts add <name> <address>`)
  return 0
}
