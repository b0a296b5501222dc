/**
 * A real browser for the dashboard tests: Debian's chromium (/usr/bin/chromium) driven by
 * playwright-core, headless, with a fresh profile, never a downloaded browser.
 *
 *   FLEET_TEST_CHROMIUM=<path>   the binary (default /usr/bin/chromium)
 * Under CI=true a missing binary is an error (CI installs the package, see .ci/run); elsewhere tests skip.
 */
import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import { chromium, type BrowserContext } from 'playwright-core'

export const CHROMIUM_BIN = process.env.FLEET_TEST_CHROMIUM || '/usr/bin/chromium'

export function chromiumAvailable(): boolean {
  if (existsSync(CHROMIUM_BIN)) return true
  if (process.env.CI) throw new Error(`${CHROMIUM_BIN} not found: CI must install the "chromium" package (see .ci/run)`)
  return false
}

export interface TestBrowser {
  /** A persistent context on the fresh profile (playwright's way of passing --user-data-dir). */
  readonly context: BrowserContext
  close(): Promise<void>
}

export async function startBrowser(): Promise<TestBrowser> {
  const profile = await mkdtemp(path.join(os.tmpdir(), 'fleet-chromium-'))
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM_BIN,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1280, height: 900 },
  })
  return {
    context,
    close: async () => {
      await context.close().catch(() => {})
      await rm(profile, { recursive: true, force: true })
    },
  }
}
