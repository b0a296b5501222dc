/** "Did you mean …?": the nearest known name to a misspelt key, variable or placeholder. */

function distance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const row = [i]
    for (let j = 1; j <= b.length; j++)
      row[j] = Math.min(previous[j]! + 1, row[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1))
    previous = row
  }
  return previous[b.length]!
}

/** The closest candidate within edit distance 2 (case-insensitive), if any. */
export function suggest(name: string, candidates: readonly string[]): string | undefined {
  let best: { candidate: string; d: number } | undefined
  for (const candidate of candidates) {
    const d = distance(name.toLowerCase(), candidate.toLowerCase())
    if (d <= 2 && (!best || d < best.d)) best = { candidate, d }
  }
  return best?.candidate
}
