import { createHmac, createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'

import type { HostKeyPolicy } from '../config/types.js'

export interface KnownHostEntry {
  /** Plain patterns (`host`, `[host]:port`), or a hashed `|1|salt|hash` pattern. */
  readonly patterns: readonly string[]
  readonly keyType: string
  readonly key: Buffer
  readonly revoked: boolean
}

/** `host` for port 22, `[host]:port` otherwise, as OpenSSH writes it. */
export const knownHostName = (address: string, port: number): string =>
  port === 22 ? address : `[${address}]:${port}`

export function parseKnownHosts(text: string): KnownHostEntry[] {
  const entries: KnownHostEntry[] = []
  for (const raw of text.split('\n')) {
    const line = raw.trim()
    if (!line || line.startsWith('#')) continue
    const fields = line.split(/\s+/)
    let revoked = false
    if (fields[0]?.startsWith('@')) {
      // @cert-authority lines are not supported; @revoked keys are always refused.
      if (fields[0] !== '@revoked') continue
      revoked = true
      fields.shift()
    }
    const [hosts, keyType, key] = fields
    if (!hosts || !keyType || !key) continue
    entries.push({ patterns: hosts.split(','), keyType, key: Buffer.from(key, 'base64'), revoked })
  }
  return entries
}

const matchesPattern = (pattern: string, name: string): boolean => {
  if (pattern.startsWith('|1|')) {
    const [, , salt, hash] = pattern.split('|')
    if (!salt || !hash) return false
    return createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest('base64') === hash
  }
  if (pattern.startsWith('!')) return false
  if (!pattern.includes('*') && !pattern.includes('?')) return pattern === name
  const regex = new RegExp(`^${pattern.replace(/[.+^${}()|\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`)
  return regex.test(name)
}

export function readKnownHosts(path: string): KnownHostEntry[] {
  try {
    return parseKnownHosts(readFileSync(path, 'utf8'))
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw error
  }
}

export const fingerprint = (key: Buffer): string =>
  `SHA256:${createHash('sha256').update(key).digest('base64').replace(/=+$/, '')}`

/** The key type name inside an SSH wire-format public key blob. */
export const keyTypeOf = (key: Buffer): string => {
  const length = key.readUInt32BE(0)
  return key.subarray(4, 4 + length).toString('ascii')
}

export type HostKeyVerdict =
  | { readonly ok: true; readonly pinned: boolean }
  | { readonly ok: false; readonly reason: string }

export interface PinnedKeys {
  getHostKey(hostId: string): Promise<{ keyType: string; key: string } | null>
  pinHostKey(hostId: string, keyType: string, key: string): Promise<boolean>
}

/**
 * known_hosts entries win; otherwise the key pinned in the store. Unknown keys
 * are pinned under `accept-new` and refused under `strict`; a changed key is
 * always refused before any command runs.
 */
export async function verifyHostKey(input: {
  readonly address: string
  readonly port: number
  readonly key: Buffer
  readonly knownHosts: readonly KnownHostEntry[]
  readonly pins: PinnedKeys
  readonly policy: HostKeyPolicy
}): Promise<HostKeyVerdict> {
  const name = knownHostName(input.address, input.port)
  const keyType = keyTypeOf(input.key)
  const entries = input.knownHosts.filter((e) => e.patterns.some((p) => matchesPattern(p, name)))
  if (entries.some((e) => e.revoked && e.key.equals(input.key)))
    return { ok: false, reason: `host key ${fingerprint(input.key)} for ${name} is marked @revoked in known_hosts` }
  const live = entries.filter((e) => !e.revoked)
  if (live.some((e) => e.key.equals(input.key))) return { ok: true, pinned: false }
  if (live.some((e) => e.keyType === keyType))
    return {
      ok: false,
      reason: `HOST KEY MISMATCH for ${name}: got ${keyType} ${fingerprint(input.key)}, known_hosts has a different key (possible man-in-the-middle; fix known_hosts if the host was reinstalled)`,
    }
  const pinned = await input.pins.getHostKey(name)
  if (pinned) {
    if (Buffer.from(pinned.key, 'base64').equals(input.key)) return { ok: true, pinned: false }
    return {
      ok: false,
      reason: `HOST KEY MISMATCH for ${name}: got ${keyType} ${fingerprint(input.key)}, fleet pinned ${pinned.keyType} ${fingerprint(Buffer.from(pinned.key, 'base64'))} (possible man-in-the-middle; run \`fleet hosts forget-key <host>\` only if the host was really reinstalled)`,
    }
  }
  if (input.policy === 'strict')
    return { ok: false, reason: `unknown host key for ${name} (${keyType} ${fingerprint(input.key)}) and hostKeyPolicy is strict` }
  await input.pins.pinHostKey(name, keyType, input.key.toString('base64'))
  return { ok: true, pinned: true }
}
