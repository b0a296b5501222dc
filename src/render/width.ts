import stringWidth from 'string-width'

const SGR = /(\x1b\[[0-9;]*m)/

/** Columns a (possibly coloured) line takes: wide CJK characters and emoji count 2. */
export const visibleLength = (s: string): number => stringWidth(s)

const graphemes = new Intl.Segmenter(undefined, { granularity: 'grapheme' })

/** Cut a (possibly coloured) line to `width` terminal columns, ending in … when cut. */
export function fit(line: string, width: number): string {
  if (visibleLength(line) <= width) return line
  if (width <= 0) return ''
  const parts = line.split(SGR) // odd indexes are escape codes
  let out = ''
  let left = width - 1
  for (let i = 0; i < parts.length && left > 0; i++) {
    if (i % 2 === 1) {
      out += parts[i]
      continue
    }
    for (const { segment } of graphemes.segment(parts[i]!)) {
      const w = stringWidth(segment)
      if (w > left) {
        left = 0
        break
      }
      out += segment
      left -= w
    }
  }
  return `${out}…${parts.length > 1 ? '\x1b[0m' : ''}`
}

