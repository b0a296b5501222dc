/**
 * Issue 19 figure: `fleet hosts check` over 1,000 simulated hosts (BENCH_CHECK_HOSTS), the CLI as
 * a user runs it (`--json`, PGlite store, the built-in hosts table), at the default
 * rollout.concurrency (5) and at 20 (BENCH_CHECK_CONCURRENCY="5,20"). Every host has its own app
 * checkout (a `git clone --shared` of one origin) and its own SSH server: ssh2's in-process server
 * (src/sim/ssh2-server.ts) on its own port of 127.0.0.1, running each command with bash like sshd,
 * so every check really runs (git rev-parse, ls-remote, status, the fence's test -w, command -v,
 * sudo -n -l of the stand-in). 1% of the hosts are changed by hand (another commit checked out) so
 * drift is found. Figures: wall time, CLI CPU and peak RSS, and connections (logins per host,
 * counted by the servers).
 */
import { execFile } from 'node:child_process'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import pLimit from 'p-limit'
import { afterAll, beforeAll, expect, it } from 'vitest'

import { openDatabase } from '../src/store/database.js'
import { Store } from '../src/store/store.js'
import { installFleetBin } from '../src/sim/environment.js'
import { keygen } from '../src/sim/exec.js'
import { createOrigin, type Origin } from '../src/sim/origin.js'
import { startSsh2SimServer, type Ssh2SimServer } from '../src/sim/ssh2-server.js'
import { pgliteCopy } from '../test/support/cli.js'
import { mb, ms, runCli, waitForQuiet } from './support/measure.js'
import { record, type SummaryRow } from './support/results.js'

const N = Number(process.env.BENCH_CHECK_HOSTS ?? 1000)
const CONCURRENCY = (process.env.BENCH_CHECK_CONCURRENCY ?? '5,20').split(',').map(Number)
const DRIFTED = Math.max(1, Math.round(N / 100))
const run = promisify(execFile)

let work = ''
let origin: Origin
const servers: Ssh2SimServer[] = []
const logins: number[] = []
const names = Array.from({ length: N }, (_, i) => `vps-${String(i + 1).padStart(4, '0')}`)

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'fleet-bench-check-'))
  origin = await createOrigin(work)
  const hostEnv = await installFleetBin(work, undefined)
  const clientKey = path.join(work, 'client_ed25519')
  const hostKey = path.join(work, 'host_ed25519')
  await keygen(clientKey, 'bench-client')
  await keygen(hostKey, 'bench-host')
  const user = os.userInfo().username
  const home = os.userInfo().homedir
  const hostLine = (await readFile(`${hostKey}.pub`, 'utf8')).split(' ').slice(0, 2).join(' ')

  // Hosts: a checkout each (v1; the first DRIFTED moved to v2 by hand), an SSH server each.
  const limit = pLimit(8)
  await Promise.all(
    names.map((name, i) =>
      limit(async () => {
        const dir = path.join(work, 'hosts', name)
        await mkdir(dir, { recursive: true })
        await run('git', ['clone', '-q', '--shared', '--no-checkout', origin.path, path.join(dir, 'app')])
        await run('git', ['-C', path.join(dir, 'app'), 'checkout', '-q', '--detach', i < DRIFTED ? origin.shas.v2 : origin.shas.v1])
        const server = await startSsh2SimServer({
          hostKey,
          clientPublicKey: `${clientKey}.pub`,
          user,
          home,
          env: hostEnv(dir),
          onAccepted: () => {
            logins[i] = (logins[i] ?? 0) + 1
          },
        })
        servers[i] = server
      }),
    ),
  )
  await writeFile(path.join(work, 'known_hosts'), servers.map((s) => `[127.0.0.1]:${s.port} ${hostLine}`).join('\n') + '\n')

  // The store: every host in the table, fleet's record of each at v1 (as after a completed rollout).
  const dir = await pgliteCopy(path.join(work, 'store'))
  const database = await openDatabase({ url: null, dir })
  try {
    const store = new Store(database)
    await store.upsertHosts(names.map((name, i) => ({ name, address: '127.0.0.1', port: servers[i]!.port, user, appDir: path.join(work, 'hosts', name, 'app') })))
    await store.db.updateTable('fleet_hosts').set({ current_version: origin.shas.v1 }).execute()
  } finally {
    await database.close()
  }
  await writeFile(
    path.join(work, 'rollout.config.json'),
    JSON.stringify({ database: { dir }, ssh: { user, privateKey: clientKey, knownHosts: path.join(work, 'known_hosts'), hostKeyPolicy: 'strict', connectTimeout: '30s' } }),
  )
}, 900_000)

afterAll(async () => {
  await Promise.all(servers.map((s) => s?.kill().catch(() => {})))
  if (work) await rm(work, { recursive: true, force: true })
})

it(`hosts check: ${N} simulated hosts`, async () => {
  const rows: Record<string, (string | number)[]> = {}
  const summary: SummaryRow[] = []
  const data: Record<string, unknown> = {}
  for (const c of CONCURRENCY) {
    logins.fill(0)
    await waitForQuiet()
    const r = await runCli(['hosts', 'check', '--json'], { cwd: work, env: { FLEET_ROLLOUT_CONCURRENCY: String(c) }, timeoutMs: 1_800_000 })
    expect(r.code, r.stderr.slice(0, 2000)).toBe(9)
    const report = JSON.parse(r.stdout) as { hosts: { name: string; ready: boolean; drift: boolean; commit: string | null; recorded: string | null }[] }
    expect(report.hosts).toHaveLength(N)
    const drifted = report.hosts.filter((h) => h.drift).map((h) => h.name)
    expect(drifted).toEqual(names.slice(0, DRIFTED))
    const notReady = report.hosts.filter((h) => !h.ready).length
    expect(notReady).toBe(0)
    const counts = names.map((_, i) => logins[i] ?? 0)
    const total = counts.reduce((a, b) => a + b, 0)
    const one = counts.every((n) => n === 1)
    rows[`c${c}`] = [
      c,
      ms(r.wallMs),
      `${(r.wallMs / N).toFixed(1)} ms`,
      r.userS !== null && r.systemS !== null ? `${(r.userS + r.systemS).toFixed(1)} s` : '-',
      r.maxRssKb ? mb(r.maxRssKb * 1024) : '-',
      total,
      one ? 'exactly 1 on every host' : `min ${Math.min(...counts)}, max ${Math.max(...counts)}`,
      `${drifted.length} of ${N}`,
    ]
    summary.push(
      { metric: `\`hosts check\` wall time, ${N} hosts, concurrency ${c}`, target: '—', value: `${ms(r.wallMs)} (${(r.wallMs / N).toFixed(1)} ms/host)`, ok: null },
      { metric: `SSH connections, ${N} hosts, concurrency ${c}`, target: 'one per host', value: `${total} (${one ? '1 on every host' : 'not 1 on every host'})`, ok: one },
    )
    data[`c${c}`] = { wallMs: r.wallMs, cpuS: (r.userS ?? 0) + (r.systemS ?? 0), maxRssKb: r.maxRssKb, connections: total, drifted: drifted.length }
  }
  record({
    id: 'hosts-check',
    title: 'hosts check over a simulated fleet (issue 19)',
    order: 45,
    summary,
    tables: {
      [`\`fleet hosts check --json\`, ${N} hosts (PGlite store, built-in table)`]: {
        header: ['concurrency', 'wall', 'per host', 'CLI CPU', 'CLI peak RSS', 'connections', 'per host', 'drift found'],
        rows,
      },
    },
    notes:
      `Each host: its own git checkout (\`git clone --shared\` of one origin) and its own ssh2 in-process SSH server on 127.0.0.1 (src/sim/ssh2-server.ts, ` +
      `in the bench process; each command runs in bash as under sshd), host keys checked strictly against a known_hosts file. ` +
      `Per host fleet runs 10 read-only commands over its one connection (git rev-parse, git ls-remote, git status, the fence's test -w, ` +
      `command -v for flock, bun, sudo and systemctl, sudo -n -l of the stand-in). 1% of the hosts (${DRIFTED}) run another commit than recorded: ` +
      `the run must report exactly those as drifted and exit 9. The machine's 2 cores run fleet, the SSH servers and every command, so the ` +
      `per-host time is mostly process start-up of bash and git on the "hosts".`,
    data,
  })
})
