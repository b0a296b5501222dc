/** CPU profile of a piece of this process (node:inspector), summarised by self time per package and per function. */
import { Session } from 'node:inspector/promises'
import { writeFile } from 'node:fs/promises'

interface ProfileNode {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number }
  hitCount?: number
  children?: number[]
}
interface Profile {
  nodes: ProfileNode[]
  startTime: number
  endTime: number
  samples: number[]
  timeDeltas: number[]
}

export interface ProfileSummary {
  totalMs: number
  byPackage: [string, number][]
  byFunction: [string, number][]
}

const packageOf = (url: string): string => {
  if (!url) return '(native / idle / gc)'
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)
  if (nm) return nm[1]!
  if (url.startsWith('node:')) return 'node internals'
  const src = /\/(src\/[^/]+)\//.exec(url)
  if (src) return `fleet ${src[1]}`
  if (url.includes('/test/') || url.includes('/bench/')) return 'bench / test support'
  return url.split('/').slice(-2).join('/')
}

export async function profiled<T>(fn: () => Promise<T>, saveTo?: string): Promise<{ result: T; summary: ProfileSummary }> {
  const session = new Session()
  session.connect()
  await session.post('Profiler.enable')
  await session.post('Profiler.setSamplingInterval', { interval: 500 })
  await session.post('Profiler.start')
  let result: T
  try {
    result = await fn()
  } finally {
    var { profile } = (await session.post('Profiler.stop')) as unknown as { profile: Profile }
    session.disconnect()
  }
  if (saveTo) await writeFile(saveTo, JSON.stringify(profile))
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const self = new Map<number, number>()
  profile.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0) / 1000))
  const pkg = new Map<string, number>()
  const fnTime = new Map<string, number>()
  for (const [id, t] of self) {
    const node = byId.get(id)!
    const { functionName, url, lineNumber } = node.callFrame
    if (functionName === '(idle)' || functionName === '(program)' || functionName === '(garbage collector)') {
      pkg.set(functionName, (pkg.get(functionName) ?? 0) + t)
      continue
    }
    const p = packageOf(url)
    pkg.set(p, (pkg.get(p) ?? 0) + t)
    const key = `${functionName || '(anonymous)'} ${p}:${lineNumber + 1}`
    fnTime.set(key, (fnTime.get(key) ?? 0) + t)
  }
  const sorted = (m: Map<string, number>) => [...m].sort((a, b) => b[1] - a[1]).map(([k, v]) => [k, Math.round(v)] as [string, number])
  return { result: result!, summary: { totalMs: (profile.endTime - profile.startTime) / 1000, byPackage: sorted(pkg), byFunction: sorted(fnTime).slice(0, 25) } }
}
