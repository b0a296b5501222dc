/**
 * `fleet hosts import` through the built binary: every row valid or nothing imported,
 * line-numbered problems, --deactivate-missing, and nothing the file does not carry changes on an
 * existing host. A fresh database on the real Postgres per test (fast); the CSV import also on PGlite.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'

import { cliStore, runFleet, type CliStore } from './support/cli.js'

let cwd: string
let store: CliStore | null = null

/** The store and working directory of one test: Postgres unless it is about the embedded store. */
async function workspace(kind: 'postgres' | 'pglite' = 'postgres'): Promise<void> {
  store = await cliStore(kind)
  cwd = await mkdtemp(path.join(os.tmpdir(), 'fleet-import-'))
  await writeFile(path.join(cwd, 'rollout.config.json'), JSON.stringify({ database: store.database }))
}

afterEach(async () => {
  await rm(cwd, { recursive: true, force: true })
  await store?.drop()
  store = null
})

const fleet = (...args: string[]) => runFleet(args, { cwd, env: {} })
const file = async (name: string, text: string): Promise<string> => {
  await writeFile(path.join(cwd, name), text)
  return name
}
const listHosts = async () => {
  const run = await fleet('hosts', 'list', '--json')
  expect(run.code).toBe(0)
  return (JSON.parse(run.stdout) as { hosts: { name: string; address: string; port: number | null; user: string | null; appDir: string | null; active: boolean }[] }).hosts
}

describe('fleet hosts import', () => {
  it('imports a JSON array (app_dir or appDir), then updates in place; an omitted "active" keeps the flag', async () => {
    await workspace()
    const hosts = [
      { name: 'web-1', address: '10.0.0.1' },
      { name: 'web-2', address: 'web-2.example.com', port: 2222, user: 'deploy', appDir: '/srv/app', active: false },
      { name: 'web-3', address: '2001:db8::3', app_dir: '/opt/app' },
    ]
    const first = await fleet('hosts', 'import', await file('hosts.json', JSON.stringify(hosts)))
    expect(first.stderr).toBe('')
    expect(first.code).toBe(0)
    expect(first.stdout).toBe('imported 3 hosts (3 added, 0 updated)\n')
    expect(await listHosts()).toEqual([
      expect.objectContaining({ name: 'web-1', address: '10.0.0.1', port: null, user: null, appDir: null, active: true }),
      expect.objectContaining({ name: 'web-2', address: 'web-2.example.com', port: 2222, user: 'deploy', appDir: '/srv/app', active: false }),
      expect.objectContaining({ name: 'web-3', address: '2001:db8::3', appDir: '/opt/app', active: true }),
    ])

    // web-2 leaves out port, user, appDir and active: it keeps all four; web-4 is new.
    const again = [{ name: 'web-2', address: '10.0.0.2' }, { name: 'web-4', address: '10.0.0.4', active: true }]
    const second = await fleet('hosts', 'import', await file('more.json', JSON.stringify(again)), '--json')
    expect(second.code).toBe(0)
    expect(JSON.parse(second.stdout)).toEqual({ imported: 2, added: 1, updated: 1, deactivated: [], keptColumns: ['port', 'user', 'app_dir', 'ring', 'timezone'] })
    const after = await listHosts()
    expect(after.map((h) => [h.name, h.address, h.port, h.user, h.appDir, h.active])).toEqual([
      ['web-1', '10.0.0.1', null, null, null, true],
      ['web-2', '10.0.0.2', 2222, 'deploy', '/srv/app', false],
      ['web-3', '2001:db8::3', null, null, '/opt/app', true],
      ['web-4', '10.0.0.4', null, null, null, true],
    ])
    // A key set to null sends that field back to the config default.
    await fleet('hosts', 'import', await file('reset.json', JSON.stringify([{ name: 'web-2', address: '10.0.0.2', port: null }])))
    expect((await listHosts()).find((h) => h.name === 'web-2')).toMatchObject({ port: null, user: 'deploy', appDir: '/srv/app', active: false })

    // `hosts list --json` output imports back unchanged.
    const exported = (await fleet('hosts', 'list', '--json')).stdout
    const before = (JSON.parse(exported) as { hosts: unknown[] }).hosts
    expect(before).toHaveLength(4)
    const roundTrip = await fleet('hosts', 'import', await file('export.json', exported))
    expect(roundTrip.stdout).toBe('imported 4 hosts (0 added, 4 updated)\n')
    expect(await listHosts()).toEqual(before)
  })

  it('imports CSV with a header, quoted fields, CRLF line ends and blank lines', async () => {
    await workspace('pglite')
    const csv = [
      'name,address,port,user,app_dir,active',
      'db-1,10.1.0.1,,,,',
      '"db-2", "10.1.0.2" ,2200,"ops","/srv/my app",no',
      '',
      'db-3,db-3.internal,22,rachel,/home/rachel/rachel,TRUE',
      '',
    ].join('\r\n')
    const run = await fleet('hosts', 'import', await file('hosts.csv', csv))
    expect(run.stderr).toBe('')
    expect(run.stdout).toBe('imported 3 hosts (3 added, 0 updated)\n')
    expect(await listHosts()).toEqual([
      expect.objectContaining({ name: 'db-1', address: '10.1.0.1', port: null, user: null, appDir: null, active: true }),
      expect.objectContaining({ name: 'db-2', address: '10.1.0.2', port: 2200, user: 'ops', appDir: '/srv/my app', active: false }),
      expect.objectContaining({ name: 'db-3', address: 'db-3.internal', port: 22, user: 'rachel', active: true }),
    ])

    // Only name and address are required columns; --format overrides the extension.
    const minimal = await fleet('hosts', 'import', await file('extra.txt', 'address,name\n10.1.0.4,db-4\n'), '--format', 'csv')
    expect(minimal.stdout).toBe('imported 1 host (1 added, 0 updated)\n')
  })

  it('one bad row → exit 2 with every problem by line number, and the table is unchanged', async () => {
    await workspace()
    await fleet('hosts', 'import', await file('seed.json', JSON.stringify([{ name: 'keep', address: '10.0.0.9', port: 22 }])))
    const before = await listHosts()
    const csv = [
      'name,address,port,user,app_dir,active',
      'ok-1,10.0.0.1,,,,', // line 2
      'ok-2,10.0.0.2,,,,',
      'keep,10.9.9.9,,,,', // would update keep
      'bad-1,"10.0.0.3; touch /tmp/x",,,,', // line 5
      'bad-2,10.0.0.4,70000,,,',
      'bad-3,10.0.0.5,,,relative/dir,',
      'bad-4,10.0.0.6,,,,maybe',
      'ok-1,10.0.0.7,,,,', // duplicate of line 2
      '"evil\x1b[2J",10.0.0.8,,,,', // an escape sequence in a name
      'short,10.0.0.9',
      '"multi', 'line",10.0.0.10,,,,', // one record over lines 12-13
      'last,10.0.0.11,,,,x',
    ].join('\n')
    const run = await fleet('hosts', 'import', await file('hosts.csv', csv))
    expect(run.code).toBe(2)
    expect(run.stdout).toBe('')
    const lines = run.stderr.trim().split('\n')
    expect(lines[0]).toBe('fleet: hosts.csv: 9 problems; nothing imported')
    expect(lines.slice(1).map((l) => l.trim())).toEqual([
      'hosts.csv:5: address "10.0.0.3; touch /tmp/x" must be a host name or an IP address',
      'hosts.csv:6: port "70000" must be an integer from 1 to 65535',
      'hosts.csv:7: app_dir "relative/dir" must be an absolute path',
      'hosts.csv:8: active "maybe" must be true or false',
      'hosts.csv:9: duplicate name "ok-1" (first at hosts.csv:2)',
      'hosts.csv:10: name must not contain control characters (newlines, tabs, escape sequences)',
      'hosts.csv:11: expected 6 fields (name,address,port,user,app_dir,active), got 2',
      'hosts.csv:12: name must not contain control characters (newlines, tabs, escape sequences)',
      'hosts.csv:14: active "x" must be true or false',
    ])
    expect(await listHosts()).toEqual(before)
  })

  it('JSON problems name the item; more than 20 problems are cut with "+N more"', async () => {
    await workspace()
    const items = [
      { name: 'a', address: '10.0.0.1' },
      { name: 'b', adress: '10.0.0.2' },
      'not an object',
      ...Array.from({ length: 25 }, (_, i) => ({ name: `x${i}`, address: 'not valid!' })),
    ]
    const run = await fleet('hosts', 'import', await file('hosts.json', JSON.stringify(items)))
    expect(run.code).toBe(2)
    const lines = run.stderr.trim().split('\n')
    expect(lines[0]).toBe('fleet: hosts.json: 27 problems; nothing imported')
    expect(lines[1]!.trim()).toBe('hosts.json[1] (b): unknown key "adress" (keys: name, address, port, user, app_dir, active, ring, timezone)')
    expect(lines[2]!.trim()).toBe('hosts.json[2]: must be an object with name and address')
    expect(lines[3]!.trim()).toBe('hosts.json[3] (x0): address "not valid!" must be a host name or an IP address')
    expect(lines).toHaveLength(22)
    expect(lines[21]!.trim()).toBe('+7 more')
    expect(await listHosts()).toEqual([])
  })

  it('--deactivate-missing disables the table’s hosts that the file does not list, in the same import', async () => {
    await workspace()
    await fleet('hosts', 'import', await file('all.csv', 'name,address\nh1,10.0.0.1\nh2,10.0.0.2\nh3,10.0.0.3\nh4,10.0.0.4\n'))
    await fleet('hosts', 'disable', 'h4')
    const run = await fleet('hosts', 'import', await file('some.csv', 'name,address\nh1,10.0.0.1\nh5,10.0.0.5\n'), '--deactivate-missing')
    expect(run.stderr).toBe('')
    expect(run.code).toBe(0)
    // h4 was already disabled: not reported again.
    expect(run.stdout).toBe(
      'imported 2 hosts (1 added, 1 updated)\n1 existing host kept port, user, app_dir, active, ring, timezone (not in some.csv)\ndeactivated 2 hosts not in some.csv: h2, h3\n',
    )
    expect((await listHosts()).map((h) => [h.name, h.active, h.address])).toEqual([
      ['h1', true, '10.0.0.1'],
      ['h2', false, '10.0.0.2'],
      ['h3', false, '10.0.0.3'],
      ['h4', false, '10.0.0.4'],
      ['h5', true, '10.0.0.5'],
    ])
    // Without the flag nothing is disabled.
    const plain = await fleet('hosts', 'import', await file('one.csv', 'name,address\nh1,10.0.0.1\n'))
    expect(plain.stdout).toBe('imported 1 host (0 added, 1 updated)\n1 existing host kept port, user, app_dir, active, ring, timezone (not in one.csv)\n')
    expect((await listHosts()).filter((h) => h.active).map((h) => h.name)).toEqual(['h1', 'h5'])
  })

  it('refuses unreadable, unparsable, empty or headerless input → exit 2 naming the file', async () => {
    await workspace()
    const cases: [string[], RegExp][] = [
      [['missing.csv'], /^fleet: cannot read missing\.csv: no such file$/m],
      [[await file('hosts.txt', 'name,address\n')], /cannot tell the format of hosts\.txt .* --format/],
      [[await file('broken.json', '[{"name": "a",')], /^fleet: broken\.json: invalid JSON: unexpected end of file; nothing imported$/m],
      [[await file('comma.json', '[\n  {"name": "a", "address": "10.0.0.1"},\n]')], /^fleet: comma\.json: invalid JSON at line 3, column 1: expected a value, found "]" \(trailing comma\?\)/m],
      [[await file('object.json', '{"name": "a"}')], /object\.json: expected a JSON array of host objects/],
      [[await file('empty.json', '[]')], /empty\.json lists no hosts; nothing imported/],
      [[await file('noheader.csv', 'web-1,10.0.0.1\n')], /noheader\.csv:1: the first line must be a header/],
      [[await file('typo.csv', 'name,address,prot\nweb-1,10.0.0.1,22\n')], /typo\.csv:1: unknown or repeated column "prot"/],
      [[await file('open.csv', 'name,address\nweb-1,10.0.0.1\nweb-2,"10.0.0.2\n')], /^fleet: open\.csv:3: not valid CSV: Quote Not Closed.*; nothing imported$/m],
      [['hosts.txt', '--format', 'xml'], /argument 'xml' is invalid/],
    ]
    for (const [args, message] of cases) {
      const run = await fleet('hosts', 'import', ...args)
      expect(run.code, args.join(' ')).toBe(2)
      expect(run.stderr).toMatch(message)
    }
    expect(await listHosts()).toEqual([])
  })

  it('an existing host keeps every column the file does not carry (CSV with only name,address); the output says so', async () => {
    await workspace()
    const seed = 'name,address,port,user,app_dir,active\nimp-1,10.0.0.1,2200,deploy,/srv/x,false\nimp-2,10.0.0.2,2201,ops,/srv/y,true\n'
    expect((await fleet('hosts', 'import', await file('seed.csv', seed))).code).toBe(0)
    const run = await fleet('hosts', 'import', await file('addresses.csv', 'name,address\nimp-1,198.51.100.1\nimp-3,198.51.100.3\n'))
    expect(run.stderr).toBe('')
    expect(run.stdout).toBe('imported 2 hosts (1 added, 1 updated)\n1 existing host kept port, user, app_dir, active, ring, timezone (not in addresses.csv)\n')
    expect(await listHosts()).toEqual([
      expect.objectContaining({ name: 'imp-1', address: '198.51.100.1', port: 2200, user: 'deploy', appDir: '/srv/x', active: false }),
      expect.objectContaining({ name: 'imp-2', address: '10.0.0.2', port: 2201, user: 'ops', appDir: '/srv/y', active: true }),
      expect.objectContaining({ name: 'imp-3', address: '198.51.100.3', port: null, user: null, appDir: null, active: true }),
    ])
    // A column the file has, with an empty cell: back to the config default (and only that column).
    const reset = await fleet('hosts', 'import', await file('reset.csv', 'name,address,port\nimp-1,198.51.100.1,\n'))
    expect(reset.stdout).toBe('imported 1 host (0 added, 1 updated)\n1 existing host kept user, app_dir, active, ring, timezone (not in reset.csv)\n')
    expect((await listHosts())[0]).toMatchObject({ name: 'imp-1', port: null, user: 'deploy', appDir: '/srv/x', active: false })
  })

  it('parses RFC 4180 CSV with csv-parse: a quoted field may hold commas, quotes and line breaks', async () => {
    await workspace()
    // Labels with commas and quotes, a BOM, and a record whose quoted field spans two lines (the
    // old line-by-line splitter called that an unterminated field and the next line a bad row).
    const csv = [
      '\uFEFFname,address,app_dir',
      '"Müller, Hans",10.2.0.1,"/srv/app, ""v2"""',
      '"{6f1c2a9e-1b7d-4c1e-9a51-3f0f7a3c9d10}",10.2.0.2,/srv/app',
      '"spans',
      'two lines",10.2.0.3,/srv/app',
      'alice@example.com,10.2.0.4,/srv/app',
    ].join('\n')
    const run = await fleet('hosts', 'import', await file('labels.csv', csv))
    expect(run.code).toBe(2)
    // The multi-line field is one field of one record, named by the line it starts on; no other line is blamed.
    expect(run.stderr).toBe('fleet: labels.csv: 1 problem; nothing imported\n  labels.csv:4: name must not contain control characters (newlines, tabs, escape sequences)\n')
    const fixed = csv.replace('"spans\ntwo lines"', '"spans one line"')
    const ok = await fleet('hosts', 'import', await file('labels.csv', fixed))
    expect(ok.stderr).toBe('')
    expect(ok.stdout).toBe('imported 4 hosts (4 added, 0 updated)\n')
    expect((await listHosts()).map((h) => [h.name, h.appDir])).toEqual([
      ['Müller, Hans', '/srv/app, "v2"'],
      ['alice@example.com', '/srv/app'],
      ['spans one line', '/srv/app'],
      ['{6f1c2a9e-1b7d-4c1e-9a51-3f0f7a3c9d10}', '/srv/app'],
    ])
  })
})
