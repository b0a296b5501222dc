import { UsageError } from '../../errors.js'
import { shortSha } from '../../render/style.js'
import { runDemo } from '../../sim/demo.js'
import { makeContext, type GlobalFlags } from '../context.js'
import { printJson, say } from '../output.js'
import { pickRenderer } from '../renderer.js'

/** `fleet demo [--hosts n]`: two real rollouts on a throw-away local fleet (sim/demo.ts). */
export async function demo(flags: GlobalFlags & { hosts?: string }): Promise<number> {
  const ctx = makeContext(flags)
  const count = Number(flags.hosts ?? 20)
  if (!Number.isInteger(count) || count < 2 || count > 200) throw new UsageError(`--hosts must be an integer from 2 to 200, got ${flags.hosts}`)
  const result = await runDemo(count, { say: (line) => say(ctx.out, line), renderer: () => pickRenderer(ctx) })
  const [first, second] = result.rollouts
  if (ctx.out.json) printJson(ctx.out, { rollouts: result.rollouts, hostsOnV2: result.hostsOnV2, asExpected: result.asExpected })
  else {
    say(ctx.out, `\ndemo done: rollout 1 ${first!.state} (exit ${first!.exitCode}: ${result.drifted} rolled back, the rest on ${shortSha(first!.sha)});`)
    say(ctx.out, `           rollout 2 ${second!.state} (exit ${second!.exitCode}: the canary crashed and was rolled back, nothing else touched).`)
    say(ctx.out, `           ${result.hostsOnV2} of ${count} hosts run v2 now. Everything the demo started is being removed.`)
  }
  return result.asExpected ? 0 : 1
}
