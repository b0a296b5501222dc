import type { Command } from 'commander'

import { completionScript, inventoryNames } from '../../report/completion.js'
import { makeContext, type GlobalFlags } from '../context.js'

/** `fleet dashboard`: the read-only web page (src/dashboard). */
export async function dashboard(flags: GlobalFlags & { port?: string; host?: string }): Promise<number> {
  const { runDashboard } = await import('../../dashboard/run.js')
  return runDashboard(makeContext(flags).config, flags, (line) => void process.stdout.write(`${line}\n`))
}

/** `fleet completion <shell>`, from the command tree itself. */
export const completion = (shell: string, program: Command): number => (process.stdout.write(completionScript(shell, program)), 0)

/** `fleet __complete hosts`: host names for the completion scripts, one a line. */
export const complete = async (flags: GlobalFlags): Promise<number> => (process.stdout.write(await inventoryNames(makeContext(flags))), 0)
