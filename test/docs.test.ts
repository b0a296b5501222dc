/**
 * The reference in docs/ against the code it describes, so neither can change without the other:
 * commands and options (the real commander tree, what `--help` prints), config keys with their
 * defaults and variables (the schema), event types (the catalogue), exit codes (ExitCode). Each page
 * is parsed (headings, backticked names in the first column of its tables), never grepped, so a name
 * mentioned in passing does not count. Links between the pages must lead somewhere.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import path from 'node:path'
import type { Command, Option } from 'commander'
import { describe, expect, it } from 'vitest'

import { buildProgram } from '../src/cli/main.js'
import { WATCH_TIMEOUT_EXIT } from '../src/cli/commands/rollout-status.js'
import { loadConfig } from '../src/config/load.js'
import { BY_KEY, FIELDS } from '../src/config/schema.js'
import { ExitCode } from '../src/errors.js'
import { DEFAULT_NOTIFY_ON, EVENT_TYPES } from '../src/events.js'
import { REPO_ROOT } from './support/origin.js'

const DOCS = path.join(REPO_ROOT, 'docs')
const read = (file: string): string => readFileSync(path.join(REPO_ROOT, file), 'utf8')

/** The page without its fenced code blocks: examples are not reference. */
const prose = (text: string): string => text.replace(/^```[\s\S]*?^```/gm, '')

/** Markdown sections keyed by heading text (any level from 2), each with the lines up to the next heading. */
function sections(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>()
  let current: string[] | null = null
  for (const line of prose(text).split('\n')) {
    const heading = /^#{2,6} (.+)$/.exec(line)
    if (heading) {
      expect(out.has(heading[1]!), `heading "${heading[1]}" appears twice`).toBe(false)
      out.set(heading[1]!, (current = []))
    } else current?.push(line)
  }
  return out
}

/** Table rows whose first cell is one backticked name: [name, other cells…]. The header and rule rows never match. */
const rows = (lines: readonly string[]): string[][] =>
  lines
    .filter((l) => /^\| *`[^`]+` *\|/.test(l))
    .map((l) => l.replace(/^\||\|$/g, '').split('|').map((cell) => cell.trim()))
    .map(([first = '', ...rest]) => [first.slice(1, -1), ...rest])

/** The value of a cell that is exactly one backticked text, else null. */
const code = (cell: string | undefined): string | null => /^`([^`]*)`$/.exec(cell ?? '')?.[1] ?? null

const sorted = (items: Iterable<string>): string[] => [...items].sort()

describe('docs/commands.md is the command tree', () => {
  /** `fleet hosts add <name> <address>`: the path and the arguments, as the usage line writes them. */
  const title = (command: Command, names: readonly string[]): string =>
    ['fleet', ...names, ...command.registeredArguments.map((a) => (a.required ? `<${a.name()}${a.variadic ? '...' : ''}>` : `[${a.name()}${a.variadic ? '...' : ''}]`))].join(' ')

  function walk(command: Command, names: string[] = []): { heading: string; options: readonly Option[]; leaf: boolean }[] {
    return [
      { heading: names.length === 0 ? 'Global options' : `\`${title(command, names)}\``, options: command.options, leaf: command.commands.length === 0 },
      ...command.commands.flatMap((sub) => walk(sub, [...names, sub.name()])),
    ]
  }

  const commands = walk(buildProgram())
  const page = sections(read('docs/commands.md'))

  it('has a section for every command, and no section for a command that does not exist', () => {
    expect(commands.length).toBeGreaterThan(20)
    const documented = [...page.keys()].filter((h) => h.startsWith('`fleet') || h === 'Global options')
    expect(sorted(documented)).toEqual(sorted(commands.map((c) => c.heading)))
  })

  it.each(commands.map((c) => [c.heading, c] as const))('%s: its options, exactly, with their defaults', (heading, command) => {
    const lines = page.get(heading) ?? []
    const table = rows(lines)
    expect(sorted(table.map(([flags]) => flags!)), heading).toEqual(sorted(command.options.map((o) => o.flags)))
    for (const option of command.options) {
      const [, defaults = ''] = table.find(([flags]) => flags === option.flags)!
      if (option.defaultValue !== undefined) expect(defaults, `${heading} ${option.flags}`).toBe(`\`${String(option.defaultValue)}\``)
      if (option.mandatory) expect(defaults, `${heading} ${option.flags}`).toBe('required')
    }
    // A command without options says so, so a forgotten table is not mistaken for "no options".
    if (command.leaf && command.options.length === 0) expect(lines.join('\n'), heading).toMatch(/No options besides the global ones\./)
  })
})

describe('docs/config.md is the config schema', () => {
  const table = rows(sections(read('docs/config.md')).get('Keys') ?? [])

  it('lists every key once, and only keys that exist', () => {
    expect(table.length).toBe(new Set(table.map(([key]) => key)).size)
    expect(sorted(table.map(([key]) => key!))).toEqual(sorted(FIELDS.map((f) => f.dotted)))
  })

  it.each(FIELDS.map((f) => [f.dotted, f] as const))('%s: its default (as JSON) and its variable', (dotted, field) => {
    const [, defaults, variable] = table.find(([key]) => key === dotted) ?? []
    expect(code(defaults), `${dotted} default`).not.toBeNull()
    expect(JSON.parse(code(defaults)!), `${dotted} default`).toEqual(field.default)
    expect(code(variable), `${dotted} variable`).toBe(field.env)
  })

  it('rollout.config.example.json loads, sets every key to its default and no other key', () => {
    const file = path.join(REPO_ROOT, 'rollout.config.example.json')
    const example = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>
    const set = new Map<string, unknown>()
    for (const [section, value] of Object.entries(example)) {
      if (BY_KEY.get(section)?.whole) set.set(section, value)
      else for (const [key, v] of Object.entries(value as Record<string, unknown>)) set.set(`${section}.${key}`, v)
    }
    expect(sorted(set.keys())).toEqual(sorted(FIELDS.map((f) => f.dotted)))
    for (const f of FIELDS) expect(set.get(f.dotted), f.dotted).toEqual(f.default)
    expect(() => loadConfig({ configPath: file, env: {}, cwd: REPO_ROOT })).not.toThrow()
  })
})

describe('docs/events.md is the event catalogue', () => {
  const table = rows(sections(read('docs/events.md')).get('Event types') ?? [])

  it('lists every event type once, and only types that exist', () => {
    expect(table.length).toBe(new Set(table.map(([type]) => type)).size)
    expect(sorted(table.map(([type]) => type!))).toEqual(sorted(EVENT_TYPES))
  })

  it('marks exactly the types notified by default', () => {
    const marked = table.filter(([, , notified]) => notified === 'yes').map(([type]) => type!)
    expect(sorted(marked)).toEqual(sorted(DEFAULT_NOTIFY_ON))
  })
})

describe('docs/exit-codes.md is the table of outcomes', () => {
  it('has one row per exit code fleet defines, and no other', () => {
    const lines = prose(read('docs/exit-codes.md')).split('\n')
    const table = lines.map((l) => /^\| *(\d+) *\| *(.*?) *\|$/.exec(l)).filter((m) => m !== null)
    const documented = table.map((m) => Number(m[1]))
    expect(documented.length).toBe(new Set(documented).size)
    expect([...documented].sort((a, b) => a - b)).toEqual([...new Set([...Object.values(ExitCode), WATCH_TIMEOUT_EXIT])].sort((a, b) => a - b))
    for (const m of table) expect(m[2]!.length, `exit ${m[1]}`).toBeGreaterThan(20)
  })
})

describe('README.md and docs/ hold together', () => {
  const pages = ['README.md', ...readdirSync(DOCS).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)]

  /** GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens. */
  const slug = (heading: string): string =>
    heading
      .toLowerCase()
      .replace(/[^\p{L}\p{N} _-]/gu, '')
      .replace(/ /g, '-')

  it('every relative link leads to a file, and every #anchor to a heading', () => {
    const broken: string[] = []
    for (const page of pages) {
      for (const [, target = ''] of prose(read(page)).matchAll(/\]\(([^)\s]+)\)/g)) {
        if (/^[a-z]+:/.test(target)) continue
        const [file = '', anchor] = target.split('#')
        const resolved = file === '' ? page : path.normalize(path.join(path.dirname(page), file))
        const where = path.join(REPO_ROOT, resolved)
        if (!existsSync(where)) broken.push(`${page}: ${target}`)
        else if (anchor !== undefined && !(statSync(where).isFile() && [...sections(read(resolved)).keys()].map(slug).includes(anchor)))
          broken.push(`${page}: ${target} (no such heading)`)
      }
    }
    expect(broken).toEqual([])
  })

  it('the README links to every page of docs/', () => {
    const linked = new Set([...read('README.md').matchAll(/\]\((docs\/[^)#\s]+\.md)/g)].map((m) => m[1]))
    expect(sorted(pages.filter((p) => p.startsWith('docs/')).filter((p) => !linked.has(p)))).toEqual([])
  })

  it('the README is a guide: no benchmark figures (bench/ keeps them)', () => {
    expect(prose(read('README.md'))).not.toMatch(/\d+(\.\d+)? ?(ms|MB|MiB)\b|\d+\.\d+ ?s\b/)
  })
})
