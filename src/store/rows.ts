/**
 * The one mapping between fleet's snake_case columns and the camelCase records the rest of fleet
 * sees. Each table file names its fields once (record field → column, in the order records list
 * them); reads and writes both go through that map, so a column is spelled in one place.
 */

/** Record field → column. */
export type FieldMap = Readonly<Record<string, string>>

/** What a row reads as under the map: each field takes its column's type. */
export type RecordOf<M extends FieldMap, Row> = { -readonly [F in keyof M]: M[F] extends keyof Row ? Row[M[F]] : never }

/** What a record (or patch) writes under the map: its mapped fields, renamed; undefined ones left out. */
export type ColumnsOf<M extends FieldMap, R> = { -readonly [F in keyof R as F extends keyof M ? M[F] : never]: Exclude<R[F], undefined> }

/** A row as a record: the map's fields, in the map's order. */
export function toRecord<M extends FieldMap, Row extends { readonly [C in M[keyof M]]: unknown }>(map: M, row: Row): RecordOf<M, Row> {
  const record: Record<string, unknown> = {}
  for (const [field, column] of Object.entries(map)) record[field] = row[column as M[keyof M]]
  return record as RecordOf<M, Row>
}

/**
 * A record as columns: only the map's fields (a caller's object may carry more), and of those only
 * the ones it defines. A patch's absent fields are left alone; null is a value and is written.
 */
export function toColumns<M extends FieldMap, R extends { readonly [F in keyof M]?: unknown }>(map: M, record: R): ColumnsOf<M, R> {
  const columns: Record<string, unknown> = {}
  for (const [field, column] of Object.entries(map)) {
    const value = (record as Record<string, unknown>)[field]
    if (value !== undefined) columns[column] = value
  }
  return columns as ColumnsOf<M, R>
}

/** The columns a map reads, for a narrow select. */
export const columnsOf = <M extends FieldMap>(map: M): M[keyof M][] => Object.values(map) as M[keyof M][]

/** Part of a map: e.g. the fields a patch may change. */
export function subset<M extends FieldMap, F extends keyof M & string>(map: M, ...fields: readonly F[]): Pick<M, F> {
  return Object.fromEntries(fields.map((f) => [f, map[f]])) as Pick<M, F>
}

export const toDate = (value: Date | string | null): Date | null => (value === null ? null : new Date(value))
