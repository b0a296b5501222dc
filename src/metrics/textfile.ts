import { randomBytes } from 'node:crypto'
import { chmod, open, rename, rm } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'

/**
 * Writes `content` to `path` so that a reader (node_exporter's textfile collector) sees either the
 * previous file or the new one, never part of one: a temp file in the same directory (same file
 * system, so rename is atomic), flushed to disk, mode 0644, then renamed over the target. The temp
 * name starts with a dot and does not end in `.prom`, so the collector never reads it.
 */
export async function writeFileAtomic(path: string, content: string): Promise<void> {
  const temp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`)
  try {
    const handle = await open(temp, 'wx', 0o644)
    try {
      await handle.writeFile(content, 'utf8')
      await handle.sync()
    } finally {
      await handle.close()
    }
    // The umask may have narrowed the mode; the collector often runs as another user.
    await chmod(temp, 0o644)
    await rename(temp, path)
  } catch (error) {
    await rm(temp, { force: true }).catch(() => {})
    throw error
  }
}
