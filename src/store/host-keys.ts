import type { Kysely } from 'kysely'

import { toRecord } from './rows.js'
import type { Schema } from './schema.js'

const HOST_KEY = { keyType: 'key_type', key: 'key' } as const

/** Host keys pinned on first use (fleet_host_keys). */
export class HostKeys {
  constructor(private readonly db: Kysely<Schema>) {}

  async getHostKey(hostId: string): Promise<{ keyType: string; key: string } | null> {
    const row = await this.db.selectFrom('fleet_host_keys').selectAll().where('host_id', '=', hostId).executeTakeFirst()
    return row ? toRecord(HOST_KEY, row) : null
  }

  /** Pins a key on first use; never overwrites an existing pin (returns false then). */
  async pinHostKey(hostId: string, keyType: string, key: string): Promise<boolean> {
    const result = await this.db
      .insertInto('fleet_host_keys')
      .values({ host_id: hostId, key_type: keyType, key, pinned_at: new Date() })
      .onConflict((oc) => oc.column('host_id').doNothing())
      .executeTakeFirst()
    return (result.numInsertedOrUpdatedRows ?? 0n) > 0n
  }

  async forgetHostKey(hostId: string): Promise<boolean> {
    const result = await this.db.deleteFrom('fleet_host_keys').where('host_id', '=', hostId).executeTakeFirst()
    return result.numDeletedRows > 0n
  }
}
