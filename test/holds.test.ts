/**
 * `fleet hosts hold | unhold` and the hosts table's ring and timezone, through the built binary:
 * a hold is recorded by name with who, why and until when, for either inventory source; bad input
 * is exit 2 with nothing changed; `hosts list` shows holds, rings and zones; add, update and import
 * take ring and timezone, checked as the inventory checks them.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { openDatabase } from '../src/store/database.js'
import { Store } from '../src/store/store.js'
import { cliStore, runFleet, type CliStore } from './support/cli.js'

let cwd: string
let store: CliStore

const writeConfig = (config: object = {}) => writeFile(path.join(cwd, 'rollout.config.json'), JSON.stringify({ database: store.database, ...config }))
const fleet = (...args: string[]) => runFleet(args, { cwd, env: {} })

interface Listed {
  name: string
  ring: string | null
  timezone: string | null
  hold: { name: string; reason: string; actor: string; since: string; until: string | null } | null
}
const listed = async (): Promise<Listed[]> => {
  const run = await fleet('hosts', 'list', '--json')
  expect(run.code, run.stderr).toBe(0)
  return (JSON.parse(run.stdout) as { hosts: Listed[] }).hosts
}

/** The store itself, for a moment (PGlite: one process at a time, so never while a command runs). */
async function withStore<T>(fn: (s: Store) => Promise<T>): Promise<T> {
  const database = await openDatabase(store.databaseConfig)
  try {
    return await fn(new Store(database))
  } finally {
    await database.close()
  }
}

beforeAll(async () => {
  store = await cliStore()
  cwd = await mkdtemp(path.join(os.tmpdir(), 'fleet-holds-'))
  await writeConfig()
})

afterAll(async () => {
  if (cwd) await rm(cwd, { recursive: true, force: true })
  await store?.drop()
})

describe('ring and timezone in the hosts table', () => {
  it('add, update and import take them, checked like the inventory (bad input: exit 2, nothing changed)', async () => {
    expect((await fleet('hosts', 'add', 'web-1', '10.0.0.1', '--ring', 'internal', '--timezone', 'Europe/Berlin')).code).toBe(0)
    expect((await fleet('hosts', 'add', 'web-2', '10.0.0.2')).code).toBe(0)
    const bad = await fleet('hosts', 'add', 'web-3', '10.0.0.3', '--timezone', 'Mars/Olympus')
    expect(bad.code).toBe(2)
    expect(bad.stderr).toMatch(/timezone "Mars\/Olympus" is not an IANA time zone .*\(nothing changed\)/)
    const badRing = await fleet('hosts', 'update', 'web-2', '--ring', 'a\u001b[31mb')
    expect(badRing.code).toBe(2)
    expect(badRing.stderr).toMatch(/ring .* must not contain control characters/)
    expect((await listed()).map((h) => [h.name, h.ring, h.timezone])).toEqual([
      ['web-1', 'internal', 'Europe/Berlin'],
      ['web-2', null, null],
    ])

    const update = await fleet('hosts', 'update', 'web-2', '--ring', 'paid', '--timezone', 'America/New_York')
    expect(update.stdout).toBe('updated web-2: ring (default) → paid, timezone (default) → America/New_York\n')
    expect((await fleet('hosts', 'update', 'web-1', '--ring', '')).code).toBe(0)

    // Import: the columns are carried when the file has them, kept when it does not.
    await writeFile(path.join(cwd, 'rings.csv'), 'name,address,ring,timezone\nweb-2,10.0.0.2,free,Asia/Tokyo\nweb-4,10.0.0.4,,\n')
    expect((await fleet('hosts', 'import', 'rings.csv')).code).toBe(0)
    await writeFile(path.join(cwd, 'plain.csv'), 'name,address\nweb-2,10.0.0.2\n')
    expect((await fleet('hosts', 'import', 'plain.csv')).stdout).toContain('kept port, user, app_dir, active, ring, timezone')
    await writeFile(path.join(cwd, 'bad.json'), JSON.stringify([{ name: 'web-5', address: '10.0.0.5', timezone: 'Europe/Nowhere' }]))
    const refused = await fleet('hosts', 'import', 'bad.json')
    expect(refused.code).toBe(2)
    expect(refused.stderr).toMatch(/bad\.json\[0\] \(web-5\): timezone "Europe\/Nowhere" is not an IANA time zone/)
    expect((await listed()).map((h) => [h.name, h.ring, h.timezone])).toEqual([
      ['web-1', null, 'Europe/Berlin'],
      ['web-2', 'free', 'Asia/Tokyo'],
      ['web-4', null, null],
    ])
    const text = await fleet('hosts', 'list')
    expect(text.stdout).toMatch(/^web-2 +active +.* +free +Asia\/Tokyo +-$/m)
  })
})

describe('fleet hosts hold | unhold', () => {
  it('holds by name with who, why and until when; hosts list shows it; unhold lifts it', async () => {
    const held = await fleet('hosts', 'hold', 'web-2', '--reason', 'customer asked\u001b[2J: no changes', '--until', '2d', '--json')
    expect(held.code, held.stderr).toBe(0)
    const hold = JSON.parse(held.stdout) as { held: string; reason: string; actor: string; since: string; until: string }
    expect(hold).toMatchObject({ held: 'web-2', reason: 'customer asked: no changes', actor: `${os.userInfo().username}@${os.hostname()}` })
    const days = (Date.parse(hold.until) - Date.parse(hold.since)) / 86_400_000
    expect(days).toBeGreaterThan(1.99)
    expect(days).toBeLessThan(2.01)

    const hosts = await listed()
    expect(hosts.find((h) => h.name === 'web-2')!.hold).toEqual({ name: 'web-2', reason: 'customer asked: no changes', actor: hold.actor, since: hold.since, until: hold.until })
    expect(hosts.find((h) => h.name === 'web-1')!.hold).toBeNull()
    const text = await fleet('hosts', 'list')
    expect(text.stdout).toMatch(new RegExp(`^web-2 .* held until ${hold.until.slice(0, 16)}Z$`, 'm'))
    expect(text.stdout).toMatch(/^web-1 .* -$/m)

    // A new hold replaces the old one: no end now.
    const again = await fleet('hosts', 'hold', 'web-2', '--reason', 'incident 42')
    expect(again.stdout).toMatch(/^held web-2 until `fleet hosts unhold`: incident 42 \(.+@.+\); rollouts leave it alone$/m)
    expect((await listed()).find((h) => h.name === 'web-2')!.hold).toMatchObject({ reason: 'incident 42', until: null })

    const lifted = await fleet('hosts', 'unhold', 'web-2')
    expect(lifted.code).toBe(0)
    expect(lifted.stdout).toMatch(/^unheld web-2 \(held since .* by .+: incident 42\)$/m)
    expect((await listed()).every((h) => h.hold === null)).toBe(true)
    const twice = await fleet('hosts', 'unhold', 'web-2')
    expect(twice.code).toBe(0)
    expect(twice.stdout).toBe('web-2 was not held; nothing changed\n')
  })

  it('refuses an unknown host, a missing reason and a bad or past --until (exit 2, nothing held)', async () => {
    const cases: [string[], RegExp][] = [
      [['hold', 'web-9', '--reason', 'x'], /no host named "web-9" in the inventory \(the hosts table\); nothing changed/],
      [['hold', 'web-1'], /required option '--reason <text>' not specified/],
      [['hold', 'web-1', '--reason', '   '], /--reason must say why/],
      [['hold', 'web-1', '--reason', 'x', '--until', 'tomorrow'], /--until must be an ISO time .* got "tomorrow" \(nothing changed\)/],
      [['hold', 'web-1', '--reason', 'x', '--until', '2d3x'], /--until must be an ISO time/],
      [['hold', 'web-1', '--reason', 'x', '--until', '2001-01-01T00:00Z'], /--until "2001-01-01T00:00Z" is not in the future/],
      [['hold', 'web-1', '--reason', 'x', '--until', '0d'], /is not in the future/],
      [['hold', 'web-1', '--reason', 'x', '--until', '2031-02-30'], /--until must be an ISO time/],
      [['hold', 'web-1', '--reason', 'x', '--until', '2999-01-01'], /more than 10 years away/],
    ]
    for (const [args, message] of cases) {
      const run = await fleet('hosts', ...args)
      expect(run.code, args.join(' ')).toBe(2)
      expect(run.stderr, args.join(' ')).toMatch(message)
    }
    expect(await withStore((s) => s.listHolds())).toEqual([])
  })

  it('works with inventory.query (holds are by name); an expired hold is shown as none', async () => {
    await writeConfig({ inventory: { query: "select name, address from fleet_hosts where name <> 'web-4'" } })
    const year = new Date().getUTCFullYear() + 2
    try {
      const byQuery = await fleet('hosts', 'hold', 'web-1', '--reason', 'by query', '--until', `${year}-01-01T00:00:00Z`)
      expect(byQuery.code, byQuery.stderr).toBe(0)
      const refused = await fleet('hosts', 'hold', 'web-4', '--reason', 'not in the query')
      expect(refused.code).toBe(2)
      expect(refused.stderr).toMatch(/no host named "web-4" in the inventory \(inventory\.query\)/)
      const run = await fleet('hosts', 'list', '--json')
      const hosts = (JSON.parse(run.stdout) as { source: string; hosts: Listed[] }).hosts
      expect(hosts.find((h) => h.name === 'web-1')!.hold).toMatchObject({ reason: 'by query', until: `${year}-01-01T00:00:00.000Z` })
      expect((await fleet('hosts', 'list')).stdout).toMatch(new RegExp(`^web-1 .* held until ${year}-01-01T00:00Z$`, 'm'))

      // Ended by itself: the row stays until unheld, but no longer holds.
      await withStore((s) => s.hold({ name: 'web-2', reason: 'old', actor: 'ann@ops', until: new Date(Date.now() - 60_000) }))
      expect((await listed()).find((h) => h.name === 'web-2')!.hold).toBeNull()
    } finally {
      await writeConfig()
    }
  })
})
