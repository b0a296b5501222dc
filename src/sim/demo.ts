import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import { loadConfig } from '../config/load.js'
import { systemClock } from '../rollout/clock.js'
import type { RolloutListener } from '../rollout/events.js'
import { runRollout } from '../rollout/engine.js'
import { makeExecutor, rolloutRequest } from '../rollout/from-config.js'
import { loadInventory } from '../rollout/inventory.js'
import { canaryOrder } from '../rollout/plan.js'
import { openDatabase } from '../store/database.js'
import { Store } from '../store/store.js'
import { startSimFleet } from './fleet.js'

const SEED = 'demo'

export interface DemoIo {
  say(line: string): void
  /** A renderer per rollout (the live view on a terminal). */
  renderer(): { listener: RolloutListener; done(): void }
}

export interface DemoSummary {
  readonly rollouts: readonly { ref: string; sha: string; state: string; exitCode: number; counts: Record<string, number> }[]
  readonly hostsOnV2: number
  readonly asExpected: boolean
  /** The host whose config drift makes it fail the good release. */
  readonly drifted: string
  readonly hosts: number
}

/**
 * `fleet demo`: the main job on the embedded defaults, with nothing to set up.
 * A throw-away fleet of simulated hosts (each its own sshd on 127.0.0.1, or
 * ssh2's server where no sshd is installed), its own origin repo and a PGlite
 * store; two real rollouts: one completes with one host rolled back, one
 * halts at the canary. Everything is removed afterwards.
 */
export async function runDemo(count: number, io: DemoIo): Promise<DemoSummary> {
  io.say(`demo: starting ${count} simulated hosts on 127.0.0.1 (each with its own git checkout and service)…`)
  const fleet = await startSimFleet({ hosts: count })
  const workdir = await mkdtemp(path.join(os.tmpdir(), 'fleet-demo-'))
  try {
    // An empty known_hosts: fleet pins each host key on first use (accept-new) in its store.
    const knownHosts = path.join(workdir, 'known_hosts')
    await writeFile(knownHosts, '')
    const { config } = loadConfig({
      env: {},
      cwd: workdir,
      overrides: {
        database: { url: null, dir: path.join(workdir, 'store') },
        ssh: { user: fleet.hosts[0]!.user, privateKey: fleet.clientKey, knownHosts, connectTimeout: '10s' },
        verify: { delay: '500ms', retries: 2, interval: '300ms' },
        timeouts: { command: '30s' },
        rollout: { stageDelay: '1s', concurrency: 5 },
        // Release directories: prepared beside the live release, switched with a rename, rolled back without the network.
        app: { layout: 'releases' },
      },
    })
    const database = await openDatabase(config.database)
    const store = new Store(database)
    try {
      await store.upsertHosts(fleet.hosts.map((h) => ({ name: h.name, address: h.address, port: h.port, user: h.user, appDir: h.appDir })))
      // Config drift on one host of the last stage: new releases cannot start there.
      const drifted = canaryOrder(fleet.hosts, SEED).at(-1)!.name
      await fleet.setFault(drifted, 'new-release-crashes', true)
      io.say(`demo: ${fleet.ssh === 'sshd' ? 'OpenSSH sshd' : "ssh2's in-process server"} per host, PGlite store in ${workdir}`)
      io.say('demo: `bun` on the hosts is a stand-in (fixtures/sim-bun.mjs): `bun install` checks dependencies offline, the app runs on Node')
      io.say(`demo: origin has main → v2 (good; ${drifted} lacks what it needs) and branch broken/crash (crashes on start)`)

      const run = async (ref: string) => {
        const inventory = await loadInventory(store, config)
        const request = rolloutRequest({ config, configSource: null }, inventory.hosts, { ref, seed: SEED, owner: 'fleet demo' })
        const renderer = io.renderer()
        try {
          return await runRollout({ store, executor: makeExecutor(config, store), clock: systemClock, listeners: [renderer.listener] }, request)
        } finally {
          renderer.done()
        }
      }

      io.say('\ndemo 1/2: fleet rollout start --ref main')
      const first = await run('main')
      io.say(`\ndemo 2/2: fleet rollout start --ref broken/crash`)
      const second = await run('broken/crash')

      const onV2 = (await Promise.all(fleet.hosts.map((h) => fleet.head(h.name)))).filter((sha) => sha === fleet.origin.shas.v2).length
      const expected = first.exitCode === 4 && second.exitCode === 3
      const summary = {
        rollouts: [
          { ref: 'main', sha: first.sha, state: first.state, exitCode: first.exitCode, counts: first.counts },
          { ref: 'broken/crash', sha: second.sha, state: second.state, exitCode: second.exitCode, counts: second.counts },
        ],
        hostsOnV2: onV2,
        asExpected: expected,
      }
      return { ...summary, drifted, hosts: count }
    } finally {
      await database.close()
    }
  } finally {
    await fleet.stop()
    await rm(workdir, { recursive: true, force: true })
  }
}
