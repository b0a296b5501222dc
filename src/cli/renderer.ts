import { createLiveRenderer } from '../render/live.js'
import { formatPlainEvent } from '../render/plain.js'
import type { RolloutEvent, RolloutListener } from '../rollout/events.js'
import type { Context } from './context.js'
import { printJson } from './output.js'

/** A renderer for the rollout's events, chosen by the output mode. */
export type RendererFactory = (ctx: Context) => { listener: RolloutListener; done(): void }

export const plainRenderer: RendererFactory = (ctx) => ({
  listener: (event: RolloutEvent) => {
    if (ctx.out.json) return printJson(ctx.out, event)
    if (ctx.out.quiet && event.type !== 'rollout-finished') return
    const line = formatPlainEvent(event, { color: ctx.out.color, verbose: ctx.out.verbose, timestamps: !ctx.out.stdout.isTTY })
    if (line !== null) ctx.out.stdout.write(`${line}\n`)
  },
  done: () => {},
})

/** Live redrawn view on a terminal; plain lines (or NDJSON) otherwise. */
export const pickRenderer: RendererFactory = (ctx) =>
  ctx.out.live && !ctx.out.quiet ? createLiveRenderer({ stream: ctx.out.stdout, color: ctx.out.color }) : plainRenderer(ctx)

