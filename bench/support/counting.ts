/**
 * Counts the SQL statements fleet's store sends, without touching src/: the store's Kysely instance
 * gets a plugin (db.withPlugin) that sees every executed query, statements inside transactions
 * included. BEGIN/COMMIT are issued by the driver, not as queries, so they are counted apart
 * (one pair per `db.transaction().execute`), from the Kysely transaction builder.
 */
import type { KyselyPlugin, OperationNode, PluginTransformQueryArgs, PluginTransformResultArgs, QueryResult, RootOperationNode, UnknownRow } from 'kysely'

import type { Database } from '../../src/store/database.js'
import { Store } from '../../src/store/store.js'

export class StatementCounter implements KyselyPlugin {
  total = 0
  transactions = 0
  readonly byKind = new Map<string, number>()
  private readonly pending = new WeakMap<object, string>()

  transformQuery(args: PluginTransformQueryArgs): RootOperationNode {
    this.pending.set(args.queryId, label(args.node))
    return args.node
  }

  async transformResult(args: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
    const kind = this.pending.get(args.queryId) ?? 'unknown'
    this.total++
    this.byKind.set(kind, (this.byKind.get(kind) ?? 0) + 1)
    return args.result
  }

  /** Store method → how long each call took to settle, in ms. */
  readonly calls = new Map<string, number[]>()

  latency(method: string, ms: number): void {
    const list = this.calls.get(method) ?? []
    list.push(ms)
    this.calls.set(method, list)
  }

  reset(): void {
    this.total = 0
    this.transactions = 0
    this.byKind.clear()
    this.calls.clear()
  }

  snapshot(): { total: number; transactions: number; byKind: Record<string, number>; calls: Record<string, { n: number; totalMs: number; medianMs: number; p95Ms: number }> } {
    const stats = (xs: number[]) => {
      const s = [...xs].sort((a, b) => a - b)
      return { n: s.length, totalMs: Math.round(s.reduce((a, b) => a + b, 0)), medianMs: Math.round(s[Math.floor(s.length / 2)]! * 100) / 100, p95Ms: Math.round(s[Math.min(s.length - 1, Math.ceil(s.length * 0.95) - 1)]! * 100) / 100 }
    }
    return {
      total: this.total,
      transactions: this.transactions,
      byKind: Object.fromEntries([...this.byKind].sort((a, b) => b[1] - a[1])),
      calls: Object.fromEntries([...this.calls].map(([k, v]) => [k, stats(v)] as const).sort((a, b) => b[1].totalMs - a[1].totalMs)),
    }
  }
}

const tableOf = (node: unknown): string => {
  const n = node as { kind?: string; table?: unknown; identifier?: { name?: string }; node?: unknown } | undefined
  if (!n) return '?'
  if (n.kind === 'TableNode') return (n.table as { identifier?: { name?: string } })?.identifier?.name ?? '?'
  if (n.kind === 'AliasNode') return tableOf(n.node)
  if (n.kind === 'SchemableIdentifierNode') return n.identifier?.name ?? '?'
  return '?'
}

function label(node: RootOperationNode | OperationNode): string {
  const n = node as { kind: string; into?: unknown; table?: unknown; from?: { froms?: unknown[] } }
  switch (n.kind) {
    case 'InsertQueryNode':
      return `insert ${tableOf(n.into)}`
    case 'UpdateQueryNode':
      return `update ${tableOf(n.table)}`
    case 'DeleteQueryNode':
      return `delete ${tableOf(n.from?.froms?.[0])}`
    case 'SelectQueryNode':
      return `select ${tableOf(n.from?.froms?.[0])}`
    case 'RawNode':
      return 'raw sql'
    default:
      return n.kind
  }
}

/** A Store over the same database whose statements are counted. */
export function countingStore(database: Database): { store: Store; counter: StatementCounter } {
  const counter = new StatementCounter()
  const db = database.db.withPlugin(counter)
  // Count transactions: wrap the builder's execute (BEGIN + COMMIT per call).
  const transaction = db.transaction.bind(db)
  ;(db as { transaction: typeof db.transaction }).transaction = () => {
    const builder = transaction()
    const execute = builder.execute.bind(builder)
    ;(builder as { execute: typeof builder.execute }).execute = (fn) => {
      counter.transactions++
      return execute(fn)
    }
    return builder
  }
  const store = new Store({ ...database, db })
  // Time every Store method call (call → settled): what a caller awaiting it waits.
  for (const name of Object.getOwnPropertyNames(Store.prototype)) {
    const original = (Store.prototype as unknown as Record<string, unknown>)[name]
    if (name === 'constructor' || typeof original !== 'function') continue
    ;(store as unknown as Record<string, unknown>)[name] = function (this: Store, ...args: unknown[]) {
      const t0 = performance.now()
      const result = (original as (...a: unknown[]) => unknown).apply(this, args)
      if (result instanceof Promise) {
        return result.finally(() => counter.latency(name, performance.now() - t0))
      }
      return result
    }
  }
  return { store, counter }
}
