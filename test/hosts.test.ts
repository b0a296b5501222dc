/**
 * `fleet hosts add | update | list | forget-key` through the built binary: names are labels,
 * addresses are strict, and nothing the operator did not name changes. CLI behaviour runs on a
 * fresh database on the real Postgres per test (fast); the store next to the config file on PGlite.
 */
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'

import { formatEndpoint } from '../src/render/endpoint.js'
import { openDatabase } from '../src/store/database.js'
import { Store } from '../src/store/store.js'
import { cliStore, runFleet, type CliStore } from './support/cli.js'

let cwd: string
let store: CliStore

const writeConfig = (config: object) => writeFile(path.join(cwd, 'rollout.config.json'), JSON.stringify({ database: store.database, ...config }))

beforeEach(async () => {
  store = await cliStore()
  cwd = await mkdtemp(path.join(os.tmpdir(), 'fleet-hosts-'))
  await writeConfig({})
})

afterEach(async () => {
  await rm(cwd, { recursive: true, force: true })
  await store.drop()
})

const fleet = (...args: string[]) => runFleet(args, { cwd, env: {} })
interface Listed {
  name: string
  address: string
  port: number | null
  user: string | null
  appDir: string | null
  active: boolean
}
const listHosts = async (): Promise<Listed[]> => {
  const run = await fleet('hosts', 'list', '--json')
  expect(run.code).toBe(0)
  return (JSON.parse(run.stdout) as { hosts: Listed[] }).hosts
}

describe('hosts add refuses an existing name; hosts update changes only what it is given', () => {
  it('keeps an imported host exactly as it was, and points to update', async () => {
    const seed = [{ name: 'imp-2', address: '10.0.0.2', port: 2200, user: 'deploy', appDir: '/srv/x', active: false }]
    await writeFile(path.join(cwd, 'seed.json'), JSON.stringify(seed))
    expect((await fleet('hosts', 'import', 'seed.json')).code).toBe(0)
    const before = await listHosts()

    const add = await fleet('hosts', 'add', 'imp-2', '198.51.100.99')
    expect(add.code).toBe(2)
    expect(add.stdout).toBe('')
    expect(add.stderr).toBe(
      'fleet: host imp-2 already exists (nothing changed); to change it: fleet hosts update imp-2 [--address <address>] [--port <port>] [--user <user>] [--app-dir <path>] [--ring <name>] [--timezone <zone>]\n',
    )
    expect(await listHosts()).toEqual(before)

    const update = await fleet('hosts', 'update', 'imp-2', '--address', '198.51.100.99')
    expect(update.stderr).toBe('')
    expect(update.stdout).toBe('updated imp-2: address 10.0.0.2 → 198.51.100.99\n')
    expect(await listHosts()).toEqual([{ ...before[0]!, address: '198.51.100.99' }])

    const port = await fleet('hosts', 'update', 'imp-2', '--port', '2222', '--user', 'ops', '--json')
    expect(JSON.parse(port.stdout)).toEqual({ updated: 'imp-2', fields: ['port', 'user'] })
    expect((await listHosts())[0]).toMatchObject({ address: '198.51.100.99', port: 2222, user: 'ops', appDir: '/srv/x', active: false })
  })

  it('update refuses bad values, unknown hosts and an empty change (exit 2, nothing changed)', async () => {
    expect((await fleet('hosts', 'add', 'web-1', '10.0.0.1', '--port', '2200')).code).toBe(0)
    const before = await listHosts()
    const cases: [string[], RegExp][] = [
      [['web-1', '--port', '22x'], /^fleet: host web-1: port "22x" must be an integer from 1 to 65535 \(nothing changed\)$/m],
      [['web-1', '--address', '203.0.113.999'], /address "203\.0\.113\.999" must be a host name or an IP address/],
      [['web-1', '--app-dir', 'relative'], /app_dir "relative" must be an absolute path/],
      [['web-1'], /nothing to change: give --address, --port, --user, --app-dir, --ring or --timezone/],
      [['web-9', '--port', '22'], /no host named web-9 in the hosts table \(add it with: fleet hosts add web-9 <address>\)/],
    ]
    for (const [args, message] of cases) {
      const run = await fleet('hosts', 'update', ...args)
      expect(run.code, args.join(' ')).toBe(2)
      expect(run.stderr).toMatch(message)
    }
    expect(await listHosts()).toEqual(before)
  })
})

describe('a host name is a label; an address is a host name, IPv4 or IPv6', () => {
  it('accepts emails, UUIDs in braces, spaces and non-ASCII letters as names', async () => {
    // Even shell syntax is a fine label: a name never reaches a shell, a command line or a path.
    const names = ['alice@example.com', '{6f1c2a9e-1b7d-4c1e-9a51-3f0f7a3c9d10}', 'Kunde 42 (Berlin)', 'Jörg Müller – 東京', 'x'.repeat(253), '$(touch /tmp/x); -oProxyCommand=y']
    for (const [i, name] of names.entries()) {
      const run = await fleet('hosts', 'add', '--', name, `10.0.0.${i + 1}`)
      expect(run.stderr, name).toBe('')
      expect(run.code).toBe(0)
    }
    expect((await listHosts()).map((h) => h.name).sort()).toEqual([...names].sort())
    // Disabled by such a name.
    expect((await fleet('hosts', 'disable', 'Kunde 42 (Berlin)')).code).toBe(0)
    expect((await listHosts()).find((h) => h.name === 'Kunde 42 (Berlin)')?.active).toBe(false)
    // The hint for an existing name is quoted for a shell.
    expect((await fleet('hosts', 'add', 'Kunde 42 (Berlin)', '10.0.0.9')).stderr).toMatch(/fleet hosts update 'Kunde 42 \(Berlin\)' \[--address/)
  })

  it('refuses control characters in names and anything but strict IPv4, IPv6 or RFC 1123 in addresses (exit 2, nothing added)', async () => {
    const cases: [string, string, string, RegExp][] = [
      ['a name with a newline', 'two\nlines', '10.0.0.1', /name must not contain control characters/],
      ['a name with an escape sequence', 'red\x1b[31m', '10.0.0.1', /name must not contain control characters/],
      ['a name with a bidi override', 'abc\u202egnp.exe', '10.0.0.1', /name must not contain control characters/],
      ['a 254-character name', 'x'.repeat(254), '10.0.0.1', /name must be 1 to 253 characters/],
      ['a blank name', '   ', '10.0.0.1', /name must not be blank/],
      ['":::"', 'h', ':::', /address ":::" must be a host name or an IP address/],
      ['"1:2"', 'h', '1:2', /address "1:2" must be/],
      ['an IPv4 octet over 255', 'h', '203.0.113.999', /address "203\.0\.113\.999" must be/],
      ['hex IPv4', 'h', '0x7f.1', /address "0x7f\.1" must be/],
      ['a leading-zero octet', 'h', '010.0.0.1', /address "010\.0\.0\.1" must be/],
      ['a short IPv4 form', 'h', '127.1', /address "127\.1" must be/],
      ['an IPv6 address in brackets', 'h', '[2001:db8::1]', /address "\[2001:db8::1\]" must be/],
      ['a label starting with "-"', 'h', '-oProxyCommand=x', /address "-oProxyCommand=x" must be/],
      ['a label over 63 characters', 'h', `${'a'.repeat(64)}.example.com`, /must be a host name or an IP address/],
      ['an underscore in a host name', 'h', 'web_1.example.com', /must be a host name or an IP address/],
    ]
    for (const [what, name, address, message] of cases) {
      // "--": so a name or address starting with "-" reaches fleet's own validation, not commander's.
      const run = await fleet('hosts', 'add', '--', name, address)
      expect(run.code, what).toBe(2)
      expect(run.stderr, what).toMatch(message)
      expect(run.stderr.split('\n').length, what).toBe(2) // one line: a newline in the name stays escaped
    }
    expect(await listHosts()).toEqual([])
  })

  it('accepts strict IPv4, IPv6 and RFC 1123 names; hosts list shows them under headers, the port in its own column', async () => {
    const hosts: [string, string, string[]][] = [
      ['v4', '203.0.113.7', []],
      ['v6', '2001:db8::1', []],
      ['v6-port', '2001:db8::2', ['--port', '2222']],
      ['v4-mapped', '::ffff:192.0.2.1', []],
      ['dns', 'vps-1.eu-west.example.com', []],
      ['single', 'localhost', []],
    ]
    for (const [name, address, extra] of hosts) expect((await fleet('hosts', 'add', name, address, ...extra)).code, name).toBe(0)
    const list = await fleet('hosts', 'list')
    expect(list.code).toBe(0)
    const [summary, header, ...rows] = list.stdout.trimEnd().split('\n')
    expect(summary).toBe('6 host(s) in the fleet hosts table')
    expect(header).toMatch(/^name +state +user +address +port +app_dir +version +status +ring +timezone +hold$/)
    expect(list.stdout).toMatch(/^v6 +active +rachel +2001:db8::1 +22 +\/home\/rachel\/rachel +- +- +- +- +-$/m)
    expect(list.stdout).toMatch(/^v6-port +active +rachel +2001:db8::2 +2222 /m)
    expect(list.stdout).toMatch(/^v4 +active +rachel +203\.0\.113\.7 +22 /m)
    expect(list.stdout).toMatch(/^dns +active +rachel +vps-1\.eu-west\.example\.com +22 /m)
    // Aligned: every row's port starts under the header's.
    const at = header!.indexOf(' port ') + 1
    for (const row of rows) expect(row.slice(at), row).toMatch(/^(22|2222) /)
    expect(formatEndpoint('2001:db8::1', 22)).toBe('[2001:db8::1]:22')
    expect(formatEndpoint('vps-1.example.com', 2222)).toBe('vps-1.example.com:2222')
  })

  it('an operator query keyed by email rolls those rows into the inventory; a bad row is named once, not "row row"', async () => {
    const query = `select * from (values ('alice@example.com', '10.0.0.1'), ('{0d5e…}', '2001:db8::5'), ('bob@example.com', '203.0.113.999'), (null, '10.0.0.3'), ('tab' || chr(9) || 'name', '10.0.0.4')) as t(name, address)`
    await writeConfig({ inventory: { query } })
    const run = await fleet('hosts', 'list', '--json')
    expect(run.code).toBe(0)
    const listed = JSON.parse(run.stdout) as { hosts: { name: string }[]; rejected: { name: string; reason: string }[] }
    expect(listed.hosts.map((h) => h.name)).toEqual(['alice@example.com', '{0d5e…}'])
    expect(listed.rejected).toEqual([
      { name: 'bob@example.com', reason: 'address "203.0.113.999" must be a host name or an IP address' },
      { name: '(no name)', reason: 'name must be 1 to 253 characters' },
      { name: '"tab\\tname"', reason: 'name must not contain control characters (newlines, tabs, escape sequences)' },
    ])
    const text = await fleet('hosts', 'list')
    expect(text.stdout).toMatch(/^name +user +address +port +app_dir +ring +timezone +hold$/m)
    expect(text.stdout).toMatch(/^\{0d5e…\} +rachel +2001:db8::5 +22 +\/home\/rachel\/rachel +- +- +-$/m)
    expect(text.stdout).toMatch(/^rejected bob@example\.com: address "203\.0\.113\.999" must be a host name or an IP address$/m)
    expect(text.stdout).not.toMatch(/row row/)
  })
})

describe('hosts forget-key', () => {
  it('works for a disabled host (a reinstalled host is usually disabled until it is back)', async () => {
    expect((await fleet('hosts', 'add', 'reinstalled', '2001:db8::9', '--port', '2222', '--inactive')).stdout).toBe('added reinstalled (2001:db8::9), disabled\n')
    const database = await openDatabase(store.databaseConfig)
    await new Store(database).pinHostKey('[2001:db8::9]:2222', 'ssh-ed25519', Buffer.from('old key').toString('base64'))
    await database.close()

    const run = await fleet('hosts', 'forget-key', 'reinstalled')
    expect(run.stderr).toBe('')
    expect(run.code).toBe(0)
    expect(run.stdout).toBe('forgot the pinned key of reinstalled ([2001:db8::9]:2222); the next connection pins the key it presents\n')
    const after = await openDatabase(store.databaseConfig)
    try {
      expect(await new Store(after).getHostKey('[2001:db8::9]:2222')).toBeNull()
    } finally {
      await after.close()
    }
    const unknown = await fleet('hosts', 'forget-key', 'nobody')
    expect(unknown.code).toBe(2)
    expect(unknown.stderr).toMatch(/no host named nobody in the inventory \(the hosts table\)/)
  })
})

describe('the embedded store follows the config file, not the working directory', () => {
  it('--config from another directory uses the .fleet next to the file', async () => {
    const ops = path.join(cwd, 'ops')
    const elsewhere = path.join(cwd, 'elsewhere')
    await mkdir(ops)
    await mkdir(elsewhere)
    await writeFile(path.join(ops, 'rollout.config.json'), JSON.stringify({ database: { dir: '.fleet' } }))
    const config = path.join(ops, 'rollout.config.json')
    const add = await runFleet(['--config', config, 'hosts', 'add', 'web-1', '10.0.0.1'], { cwd: elsewhere, env: {} })
    expect(add.stderr).toBe('')
    expect(existsSync(path.join(ops, '.fleet'))).toBe(true)
    expect(existsSync(path.join(elsewhere, '.fleet'))).toBe(false)
    // Through $FLEET_CONFIG, from a third directory: the same store.
    const list = await runFleet(['hosts', 'list', '--json'], { cwd, env: { FLEET_CONFIG: config } })
    expect(JSON.parse(list.stdout).hosts.map((h: { name: string }) => h.name)).toEqual(['web-1'])
  })
})

describe('a misspelt FLEET_* variable', () => {
  it('is refused before anything is opened (exit 2, with the variable it was meant to be)', async () => {
    const run = await runFleet(['hosts', 'list'], { cwd, env: { FLEET_ROLLOUT_STAGEDELAY: '1s' } })
    expect(run.code).toBe(2)
    expect(run.stderr).toBe('fleet: $FLEET_ROLLOUT_STAGEDELAY: unknown variable (did you mean FLEET_ROLLOUT_STAGE_DELAY?)\n')
  })
})
