import { parse as parseJsonc, printParseErrorCode, visit, type ParseError } from 'jsonc-parser'

/** What the parser wanted at the error, in words. */
const EXPECTED: Record<string, string> = {
  PropertyNameExpected: 'expected a key in double quotes',
  ValueExpected: 'expected a value',
  CommaExpected: 'expected ","',
  ColonExpected: 'expected ":"',
  CloseBraceExpected: 'expected "}"',
  CloseBracketExpected: 'expected "]"',
  EndOfFileExpected: 'expected the end of the file',
  UnexpectedEndOfString: 'unterminated string (a line break inside quotes is written \\n)',
  InvalidEscapeCharacter: 'invalid escape in a string (a backslash is written \\\\)',
  InvalidUnicode: 'invalid \\u escape in a string',
  InvalidCharacter: 'a control character inside a string',
}

/**
 * Where the file stops being JSON, as line and column, from jsonc-parser's error offset (Node's
 * own messages differ between versions and quote the source, secrets included). Only the one
 * offending character is shown.
 */
export function jsonProblem(text: string): string {
  const errors: ParseError[] = []
  parseJsonc(text, errors, { disallowComments: true, allowTrailingComma: false, allowEmptyContent: false })
  const first = errors[0]
  if (!first) return 'invalid JSON'
  const char = text[first.offset]
  if (char === undefined) return 'invalid JSON: unexpected end of file'
  const before = text.slice(0, first.offset)
  const line = before.split('\n').length
  const column = first.offset - before.lastIndexOf('\n')
  const code = printParseErrorCode(first.error)
  const found = JSON.stringify(char)
  const trailingComma = (char === '}' || char === ']') && before.trimEnd().endsWith(',')
  const what =
    code === 'InvalidCommentToken'
      ? `unexpected ${found} (JSON has no comments)`
      : EXPECTED[code] && !code.startsWith('Unexpected') && !code.startsWith('Invalid')
        ? `${EXPECTED[code]}, found ${found}${trailingComma ? ' (trailing comma?)' : ''}`
        : (EXPECTED[code] ?? `unexpected ${found}`)
  return `invalid JSON at line ${line}, column ${column}: ${what}`
}

/** The first key that appears twice in one object (its dotted path and line), or null. */
export function duplicateKey(text: string): { readonly path: string; readonly line: number } | null {
  const objects: Set<string>[] = []
  let found: { path: string; line: number } | null = null
  visit(text, {
    onObjectBegin: () => void objects.push(new Set()),
    onObjectEnd: () => void objects.pop(),
    onObjectProperty: (name, _offset, _length, startLine, _startCharacter, pathSupplier) => {
      const keys = objects.at(-1)
      if (found || !keys) return
      if (keys.has(name)) found = { path: [...pathSupplier().map(String), name].join('.'), line: startLine + 1 }
      keys.add(name)
    },
  })
  return found
}
