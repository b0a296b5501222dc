/**
 * Validators for every value that reaches a remote command or a connection.
 * Values are quoted anyway; validation gives the operator a clear error early
 * and keeps option injection (a value starting with "-") out of argv.
 */
import { isIPv6 } from 'node:net'

export type Check = (value: string) => string | null

const CONTROL = /[\u0000-\u001f\u007f]/

export const checkSha: Check = (v) =>
  /^[0-9a-f]{40}$/.test(v) || /^[0-9a-f]{64}$/.test(v) ? null : 'must be a full hexadecimal commit SHA'

/** The rules of `git check-ref-format`, plus: not starting with "-". */
export const checkRef: Check = (v) => {
  if (v.length === 0 || v.length > 255) return 'must be 1 to 255 characters'
  if (v.startsWith('-')) return 'must not start with "-"'
  // Stricter than git: shell metacharacters in a ref are almost always an attack or a typo.
  if (!/^[A-Za-z0-9._/+@-]+$/.test(v)) return 'may only contain letters, digits and . _ / + @ -'
  if (CONTROL.test(v) || /[ ~^:?*[\\]/.test(v)) return 'must not contain spaces, control characters or any of ~ ^ : ? * [ \\'
  if (v.includes('..') || v.includes('@{') || v === '@') return 'must not contain ".." or "@{" or be "@"'
  if (v.startsWith('/') || v.endsWith('/') || v.includes('//')) return 'must not start or end with "/" or contain "//"'
  if (v.endsWith('.') || v.endsWith('.lock')) return 'must not end with "." or ".lock"'
  if (v.split('/').some((part) => part.startsWith('.'))) return 'no path component may start with "."'
  return null
}

export const checkRemoteName: Check = (v) =>
  /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/.test(v) ? null : 'must be a git remote name (letters, digits, ".", "_", "-")'

export const checkServiceName: Check = (v) =>
  /^[A-Za-z0-9][A-Za-z0-9:_.@\\-]{0,254}$/.test(v) ? null : 'must be a systemd unit name (letters, digits, ":", "_", ".", "@", "-")'

/** A path inside the app dir (`app.shared`): relative, plain segments, nothing that climbs out or touches `.git`. */
export const checkSharedPath: Check = (v) => {
  if (v.length === 0 || v.length > 255) return 'must be 1 to 255 characters'
  if (v.startsWith('/')) return 'must be relative to the app dir'
  if (!/^[A-Za-z0-9._@+/-]+$/.test(v)) return 'may only contain letters, digits and . _ @ + - /'
  const parts = v.split('/')
  if (parts.some((p) => p === '' || p === '.' || p === '..')) return 'must not contain empty, "." or ".." segments'
  if (parts.some((p) => p.startsWith('-'))) return 'no segment may start with "-"'
  if (parts[0] === '.git') return 'must not be inside .git'
  return null
}

export const checkAbsolutePath: Check = (v) => {
  if (!v.startsWith('/')) return 'must be an absolute path'
  if (v.length > 4096) return 'is too long'
  if (CONTROL.test(v)) return 'must not contain control characters or newlines'
  return null
}

/**
 * C0 and C1 controls, line and paragraph separators and bidi overrides: each could forge a line
 * or reorder text on a terminal or in a log. Everything else is fine in a label.
 */
const LABEL_UNSAFE = /[\p{Cc}\u2028\u2029\u202a-\u202e\u2066-\u2069]/u

/**
 * A host's name is a label (an email, a UUID, "Kunde Müller"): it keys the host in fleet's
 * tables and output and never reaches a shell, a command line or a file path.
 */
export const checkHostName: Check = (v) => {
  const length = [...v].length
  if (length === 0 || length > 253) return 'must be 1 to 253 characters'
  if (v.trim() === '') return 'must not be blank'
  if (LABEL_UNSAFE.test(v)) return 'must not contain control characters (newlines, tabs, escape sequences)'
  // Two names that print alike must not be two hosts: `x` and `x` + a zero-width space, a leading U+200F.
  const hidden = [...v].findIndex((ch) => INVISIBLE.test(ch))
  if (hidden >= 0) return `must not contain invisible characters (${codePoint([...v][hidden]!)} at character ${hidden + 1})`
  return null
}

/**
 * Characters that show as nothing (or as a plain space) and so make two names look alike: format
 * characters (zero-width space and joiners, bidi marks, soft hyphen, BOM), private use, line and
 * paragraph separators, spaces other than U+0020, and the fillers fonts draw blank.
 */
export const INVISIBLE = /[\p{Cf}\p{Co}\p{Zl}\p{Zp}\u00a0\u034f\u115f\u1160\u1680\u180e\u2000-\u200a\u202f\u205f\u2800\u3000\u3164\uffa0]/u

/** `U+200B` for a character, to name what was refused without printing it. */
export const codePoint = (ch: string): string => `U+${ch.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`

const OCTET = '(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)'
/** Dotted decimal only: no leading zeros (octal to some resolvers), no hex, no short forms like 127.1. */
const IPV4 = new RegExp(`^${OCTET}(\\.${OCTET}){3}$`)
const DNS_LABEL = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/

/** An RFC 1123 host name, an IPv4 address or an IPv6 address (without brackets). */
export const checkAddress: Check = (v) => {
  if (IPV4.test(v)) return null
  if (v.includes(':')) return isIPv6(v) ? null : 'must be a host name or an IP address (not a valid IPv6 address)'
  const labels = v.split('.')
  // An all-numeric last label is a malformed IPv4 address (203.0.113.999, 0x7f.1), never a name.
  if (v.length <= 253 && labels.every((l) => DNS_LABEL.test(l)) && !/^(\d+|0x[0-9a-f]*)$/i.test(labels.at(-1)!)) return null
  return 'must be a host name or an IP address'
}

export const checkUser: Check = (v) =>
  /^[a-z_][a-z0-9_.-]{0,31}$/i.test(v) ? null : 'must be a POSIX user name'

export const checkPort = (v: number): string | null =>
  Number.isInteger(v) && v >= 1 && v <= 65535 ? null : 'must be an integer from 1 to 65535'
