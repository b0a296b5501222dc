/**
 * Requests a person makes from another shell or machine to a rollout that a
 * process is running: pause it (no new host starts, hosts in flight finish),
 * or promote it (end the current bake as passed). How they travel depends on
 * the store (events on Postgres, a file beside the embedded store); the
 * driver only polls.
 */
export type ControlRequest =
  | { readonly kind: 'pause'; readonly actor: string; readonly reason: string | null; readonly at: string }
  | { readonly kind: 'promote'; readonly actor: string; readonly reason: string; readonly skipBake: boolean; readonly at: string }

export interface ControlChannel {
  /** Requests for this rollout not seen before, oldest first. */
  poll(rolloutId: string): Promise<readonly ControlRequest[]>
}

/** How often a running rollout looks for requests: "within seconds". */
export const CONTROL_POLL_MS = 1_000
