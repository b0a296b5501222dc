/**
 * The layering, checked: no import cycle between files of src/, no layer importing a layer above
 * it, no command importing another command, no file far past ~350 lines, and shipped code that
 * reads no test-only environment variable.
 */
import { readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'

import { REPO_ROOT } from './support/origin.js'

const SRC = path.join(REPO_ROOT, 'src')

/** Lower layers never import higher ones. Files at the root of src/ are the domain: layer 0. */
const LAYERS: Record<string, number> = {
  text: 0,
  remote: 1,
  gates: 1,
  notify: 1,
  metrics: 1,
  audit: 1,
  config: 2,
  ssh: 3,
  store: 3,
  rollout: 4,
  report: 5,
  dashboard: 6,
  render: 6,
  sim: 6,
  cli: 7,
}

const MAX_LINES = 380

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(path.join(dir, e.name)) : e.name.endsWith('.ts') ? [path.join(dir, e.name)] : []))
}

const all = files(SRC)
const rel = (file: string) => path.relative(SRC, file)
const layerOf = (file: string): number => {
  const top = rel(file).split(path.sep)
  return top.length === 1 ? 0 : (LAYERS[top[0]!] ?? Number.NaN)
}

/** Relative imports of a file, resolved to .ts paths (type-only imports count: they are dependencies too). */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8')
  const found: string[] = []
  for (const m of text.matchAll(/(?:import|export)\s[^'"]*?from\s+'(\.{1,2}\/[^']+)'|import\('(\.{1,2}\/[^']+)'\)/g)) {
    const spec = (m[1] ?? m[2])!
    found.push(path.resolve(path.dirname(file), spec.replace(/\.js$/, '.ts')))
  }
  return found
}

const graph = new Map(all.map((f) => [f, importsOf(f)]))

describe('architecture', () => {
  it('every directory of src/ has a layer', () => {
    const unknown = all.filter((f) => Number.isNaN(layerOf(f))).map(rel)
    expect(unknown).toEqual([])
  })

  it('no layer imports a layer above it', () => {
    const upward: string[] = []
    for (const [file, deps] of graph) for (const dep of deps) if (layerOf(dep) > layerOf(file)) upward.push(`${rel(file)} → ${rel(dep)}`)
    expect(upward).toEqual([])
  })

  it('no import cycles', () => {
    const cycles: string[] = []
    const state = new Map<string, 'visiting' | 'done'>()
    const stack: string[] = []
    const visit = (file: string) => {
      state.set(file, 'visiting')
      stack.push(file)
      for (const dep of graph.get(file) ?? []) {
        if (state.get(dep) === 'visiting') cycles.push([...stack.slice(stack.indexOf(dep)), dep].map(rel).join(' → '))
        else if (!state.has(dep) && graph.has(dep)) visit(dep)
      }
      stack.pop()
      state.set(file, 'done')
    }
    for (const file of all) if (!state.has(file)) visit(file)
    expect(cycles).toEqual([])
  })

  it('commands do not import each other', () => {
    const commands = all.filter((f) => rel(f).startsWith(path.join('cli', 'commands')))
    const crossing = commands.flatMap((f) => graph.get(f)!.filter((d) => commands.includes(d)).map((d) => `${rel(f)} → ${rel(d)}`))
    expect(crossing).toEqual([])
  })

  it(`no file is much over 350 lines (limit ${MAX_LINES})`, () => {
    const long = all.map((f) => [rel(f), readFileSync(f, 'utf8').split('\n').length] as const).filter(([, n]) => n > MAX_LINES)
    expect(long).toEqual([])
  })

  it('the CLI stays thin (flags → options → one engine call → a renderer): src/cli at most 1,600 lines', () => {
    const cli = all.filter((f) => rel(f).startsWith(`cli${path.sep}`)).reduce((n, f) => n + readFileSync(f, 'utf8').split('\n').length - 1, 0)
    expect(cli).toBeLessThanOrEqual(1600)
  })

  it('shipped code reads no test-only environment variable', () => {
    // Reading one (process.env.FLEET_TEST_X, env['VITEST']) is what counts; load.ts names the prefix only to let such variables pass.
    const readers = all.filter((f) => /env(?:\.|\[['"])(?:FLEET_TEST_|VITEST)/.test(readFileSync(f, 'utf8'))).map(rel)
    expect(readers).toEqual([])
  })
})
