import type { FleetConfig } from '../config/types.js'
import { UsageError } from '../errors.js'
import { DEFAULT_DASHBOARD_PORT, startDashboard } from './server.js'

export interface DashboardFlags {
  readonly port?: string
  readonly host?: string
}

/** `fleet dashboard`: serves until SIGINT or SIGTERM, then closes (exit 0). Prints the URL on stdout. */
export async function runDashboard(config: FleetConfig, flags: DashboardFlags, print: (line: string) => void): Promise<number> {
  const port = flags.port === undefined ? DEFAULT_DASHBOARD_PORT : /^\d{1,5}$/.test(flags.port) && Number(flags.port) <= 65_535 ? Number(flags.port) : NaN
  if (Number.isNaN(port)) throw new UsageError(`--port must be a port number from 0 to 65535, got ${JSON.stringify(flags.port)}`)
  const host = flags.host ?? '127.0.0.1'
  const dashboard = await startDashboard(config, { host, port })
  print(`fleet dashboard: ${dashboard.url} (read-only; Ctrl-C stops it)`)
  await new Promise<void>((resolve) => {
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.once(signal, () => resolve())
  })
  await dashboard.close()
  return 0
}
