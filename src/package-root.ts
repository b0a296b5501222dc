import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

/**
 * The installed package's root (where package.json, fixtures/ and the config example are): the
 * nearest directory above this module with a package.json. Found by walking up rather than by a
 * fixed `../..`, so it holds from src/, from dist/ and from the bundled chunks alike.
 */
export function packageRoot(from: string = import.meta.url): string {
  let dir = dirname(fileURLToPath(from))
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir)
    if (up === dir) throw new Error(`no package.json above ${fileURLToPath(from)}`)
    dir = up
  }
  return dir
}
