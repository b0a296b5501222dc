import { readFile } from 'node:fs/promises'
import { extname } from 'node:path'

import { refuseIfInActiveRollout } from '../../rollout/lease.js'
import { UsageError, errorMessage } from '../../errors.js'
import { bounded, hostPatches, OPTIONAL_COLUMNS, plural, type ImportFormat } from '../../rollout/host-file.js'
import type { HostPatch } from '../../store/store.js'
import { makeContext, withStore, type GlobalFlags } from '../context.js'
import { printJson, say } from '../output.js'

export interface HostsImportFlags extends GlobalFlags {
  readonly format?: ImportFormat
  readonly deactivateMissing?: boolean
}

export async function hostsImport(file: string, flags: HostsImportFlags): Promise<number> {
  const ctx = makeContext(flags)
  const ext = extname(file).toLowerCase().slice(1)
  const format = flags.format ?? (ext === 'json' || ext === 'csv' ? ext : null)
  if (!format) throw new UsageError(`cannot tell the format of ${file} from its extension: pass --format json or --format csv`)
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    throw new UsageError(`cannot read ${file}: ${code === 'ENOENT' ? 'no such file' : errorMessage(error)}`)
  }

  // Validate every row before touching the store: one bad row and nothing is imported.
  const { patches, carried } = hostPatches(text, file, format, { ...ctx.config.ssh, appDir: ctx.config.app.dir })

  const changes = await withStore(ctx.config, async (store) => {
    // Hosts of a rollout in progress are that rollout's: changing or deactivating them waits for it (a row the file leaves as it is changes nothing).
    const before = new Map((await store.listHosts()).map((h) => [h.name, h]))
    const named = new Set(patches.map((p) => p.name))
    const changes = (p: HostPatch): boolean => {
      const row = before.get(p.name)
      return row !== undefined && (Object.keys(p) as (keyof HostPatch)[]).some((k) => k !== 'name' && p[k] !== undefined && p[k] !== row[k])
    }
    const deactivates = flags.deactivateMissing ? [...before.values()].filter((h) => h.active && !named.has(h.name)).map((h) => h.name) : []
    const touched = [...patches.filter(changes).map((p) => p.name), ...deactivates]
    await refuseIfInActiveRollout(store, touched, `\`fleet hosts import\``, { interrupted: true })
    return store.importHosts(patches, { deactivateMissing: flags.deactivateMissing === true })
  })
  const kept = OPTIONAL_COLUMNS.filter((c) => !carried.has(c))
  const result = { imported: patches.length, added: changes.added.length, updated: changes.updated.length, deactivated: changes.deactivated, keptColumns: kept }

  if (ctx.out.json) printJson(ctx.out, result)
  else {
    say(ctx.out, `imported ${plural(result.imported, 'host')} (${result.added} added, ${result.updated} updated)`)
    if (result.updated && kept.length)
      say(ctx.out, `${plural(result.updated, 'existing host')} kept ${kept.join(', ')} (not in ${file})`)
    if (result.deactivated.length)
      say(ctx.out, `deactivated ${plural(result.deactivated.length, 'host')} not in ${file}: ${bounded(result.deactivated).join(', ')}`)
  }
  if (ctx.config.inventory.query) ctx.out.stderr.write('fleet: note: inventory.query is configured, so rollouts read that query, not the hosts table\n')
  return 0
}
