import { maskSecrets, redactUrl } from '../redact.js'
import { ExitCode, FleetError, UsageError, errorMessage } from '../errors.js'

/** A database URL fleet can use, or bad configuration (exit 2) saying what is wrong with it. */
export function parseDatabaseUrl(url: string): URL {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    const port = /:\/\/(?:[^@/]*@)?[^:/]*:(\d+)/.exec(url)?.[1]
    const why = port !== undefined && Number(port) > 65_535 ? `port ${port} is out of range (1-65535)` : 'it is not a valid URL'
    throw new UsageError(`database URL ${maskSecrets(url)}: ${why} (expected postgres://user:password@host:5432/database)`)
  }
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:')
    throw new UsageError(`database URL ${redactUrl(url)}: scheme ${parsed.protocol.replace(/:$/, '')} is not supported (use postgres:// or postgresql://)`)
  if (parsed.port === '0') throw new UsageError(`database URL ${redactUrl(url)}: port 0 is out of range (1-65535)`)
  return parsed
}

const where = (url: string): { target: string; user: string; database: string } => {
  const parsed = new URL(url)
  return {
    target: redactUrl(url),
    user: decodeURIComponent(parsed.username) || process.env.PGUSER || 'the current user',
    database: decodeURIComponent(parsed.pathname.replace(/^\//, '')) || 'the default database',
  }
}

/**
 * What went wrong reaching Postgres, in words: connect (refused, unknown host, timeout),
 * authenticate (password, role) or a missing database. A server that refuses our credentials or
 * does not have the database is bad configuration (exit 2); one we cannot reach may be an outage (1).
 */
export function describeConnectError(error: unknown, url: string): FleetError {
  const { target, user, database } = where(url)
  const code = (error as { code?: unknown }).code
  const detail = maskSecrets(errorMessage(error))
  switch (code) {
    case '28P01':
      return new FleetError(`cannot authenticate to the database at ${target}: password authentication failed for user "${user}"`, ExitCode.usage)
    case '28000':
      return new FleetError(`cannot authenticate to the database at ${target}: ${detail}`, ExitCode.usage)
    case '3D000':
      return new FleetError(`cannot open the database at ${target}: database "${database}" does not exist on that server`, ExitCode.usage)
    case 'ECONNREFUSED':
      return new FleetError(`cannot connect to the database at ${target}: connection refused (is Postgres running and listening there?)`, ExitCode.internal)
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return new FleetError(`cannot connect to the database at ${target}: unknown host (${detail})`, ExitCode.internal)
  }
  if (/password must be a string|SASL|no password/i.test(detail))
    return new FleetError(`cannot authenticate to the database at ${target}: the server asks for a password and the URL has none`, ExitCode.usage)
  if (/timeout/i.test(detail)) return new FleetError(`cannot connect to the database at ${target}: no answer within 10s`, ExitCode.internal)
  return new FleetError(`cannot connect to the database at ${target}: ${detail}`, ExitCode.internal)
}

/** How a store is named in messages: the masked URL, or the embedded store's directory. */
export const storeLabel = (config: { readonly url: string | null; readonly dir: string }): string =>
  config.url ? `the database at ${redactUrl(config.url)}` : `the embedded store ${config.dir}`
