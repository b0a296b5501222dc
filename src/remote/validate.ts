/**
 * Validators for every value that reaches a remote command or a connection.
 * Values are quoted anyway; validation gives the operator a clear error early
 * and keeps option injection (a value starting with "-") out of argv.
 */
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

export const checkAbsolutePath: Check = (v) => {
  if (!v.startsWith('/')) return 'must be an absolute path'
  if (v.length > 4096) return 'is too long'
  if (CONTROL.test(v)) return 'must not contain control characters or newlines'
  return null
}

export const checkHostName: Check = (v) =>
  /^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$/.test(v) ? null : 'must be 1-253 letters, digits, ".", "_" or "-", starting with a letter or digit'

/** A DNS name, an IPv4 address or an IPv6 address (without brackets). */
export const checkAddress: Check = (v) => {
  if (/^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/.test(v) && v.length <= 253)
    return null
  if (/^[0-9A-Fa-f:.]+$/.test(v) && v.includes(':')) return null
  return 'must be a host name or an IP address'
}

export const checkUser: Check = (v) =>
  /^[a-z_][a-z0-9_.-]{0,31}$/i.test(v) ? null : 'must be a POSIX user name'

export const checkPort = (v: number): string | null =>
  Number.isInteger(v) && v >= 1 && v <= 65535 ? null : 'must be an integer from 1 to 65535'
