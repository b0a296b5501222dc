/**
 * PromQL placeholders: escaping as string content and as RE2 literals. What Prometheus itself makes
 * of the result is tested against a real server in gates-prometheus.test.ts.
 */
import { describe, expect, test } from 'vitest'
import { escapePromqlString, escapeRegex, hostsRegex, queryPlaceholderProblem, substitute } from '../src/gates/promql.js'

const CTX = { sha: 'a'.repeat(40), stage: 1, hosts: ['h01', 'h02'] }

describe('PromQL string content', () => {
  test.each([
    ['plain', 'plain'],
    ['a"b', 'a\\"b'],
    ['back\\slash', 'back\\\\slash'],
    ['line\nbreak\r\ttab', 'line\\nbreak\\r\\ttab'],
    ['bell\u0007esc\u001bdel\u007f', 'bell\\x07esc\\x1bdel\\x7f'],
    ["it's", "it's"],
    ['Kunde Müller ✓', 'Kunde Müller ✓'],
  ])('%j → %j', (text, escaped) => {
    expect(escapePromqlString(text)).toBe(escaped)
  })

  test("in a single-quoted string the single quote is escaped, not the double one (Prometheus accepts only the opening quote's escape)", () => {
    expect(escapePromqlString(`it's "x"`, "'")).toBe(`it\\'s "x"`)
  })

  test('a lone surrogate is refused', () => {
    expect(() => escapePromqlString('a\ud800b')).toThrow(/not valid Unicode/)
  })
})

describe('{hosts} regex', () => {
  test('RE2 metacharacters are escaped, names are alternatives in a group', () => {
    expect(escapeRegex('a.b*c+d?e(f)g|h[i]j{k}l^m$n\\o')).toBe('a\\.b\\*c\\+d\\?e\\(f\\)g\\|h\\[i\\]j\\{k\\}l\\^m\\$n\\\\o')
    expect(hostsRegex(['h01', 'web.1'])).toBe('(?:h01|web\\.1)')
  })

  test('no hosts: a regex that matches nothing (not the empty string, which would match a missing label)', () => {
    expect(hostsRegex([])).toBe('[^\\x00-\\x{10FFFF}]')
  })

  test('each name matches only itself (checked with JS regexes, same semantics for these escapes)', () => {
    const names = ['h.1', 'a|b', 'x*', '(g)', 'q"uote', 'back\\slash', '.*']
    const re = new RegExp(`^${hostsRegex(names)}$`)
    for (const n of names) expect(re.test(n)).toBe(true)
    for (const other of ['hx1', 'a', 'b', 'xxx', 'g', 'anything', '']) expect(re.test(other)).toBe(false)
  })
})

describe('substitute', () => {
  test('placeholders in double- and single-quoted strings, escaped for their quote', () => {
    const q = `sum(rate(x{commit="{sha}",stage='{stage}',host=~"{hosts}"}[1m]))`
    expect(substitute(q, CTX)).toBe(`sum(rate(x{commit="${CTX.sha}",stage='1',host=~"(?:h01|h02)"}[1m]))`)
  })

  test('a hostile host name stays inside its string and matches only itself', () => {
    const hostile = `h"} or vector(1) or up{x="`
    const q = substitute('count(up{host=~"{hosts}"})', { ...CTX, hosts: [hostile] })
    expect(q).toBe(String.raw`count(up{host=~"(?:h\"\\} or vector\\(1\\) or up\\{x=\")"})`)
    // Exactly one string literal: the quote in the name is escaped.
    expect(q.match(/(?<!\\)"/g)).toHaveLength(2)
  })

  test('a newline or a backslash at the end of a value cannot end the string', () => {
    const q = substitute('up{host=~"{hosts}"}', { ...CTX, hosts: ['a\\', 'b\nc'] })
    expect(q).toBe('up{host=~"(?:a\\\\\\\\|b\\nc)"}')
  })

  test('a query the config would refuse is never sent', () => {
    expect(() => substitute('up{host=~{hosts}}', CTX)).toThrow(/outside/)
  })

  test('comments and raw strings are left alone; regex repetitions are not placeholders', () => {
    const q = 'up{a=~`x{2}`, b=~"y{2,3}"} # {sha} in a comment'
    expect(substitute(q, CTX)).toBe(q)
  })

  test.each([
    ['up{commit="{sha}"}', null],
    ['up{commit="{commit}"}', /unknown placeholder \{commit\}/],
    ['up{host=~{hosts}}', /\{hosts\} outside/],
    ['up{host=~`{hosts}`}', /\{hosts\} outside/],
    ['up{x=~"a{2}"} # {whatever} in a comment', null],
    ['up > {stage}', /\{stage\} outside/],
    ['up{commit="\\{sha}"}', /right after a backslash/],
    ['up{commit="\\\\{sha}"}', null],
  ])('config check of %s', (query, problem) => {
    const got = queryPlaceholderProblem(query)
    if (problem === null) expect(got).toBeNull()
    else expect(got).toMatch(problem)
  })
})
