// Bundles the compiled CLI (dist/cli/main.js, from tsc) into dist/bundle/: one ESM file per entry
// and per lazily imported command, so a command loads a handful of files instead of ~500 modules
// (kysely alone is 279). Start-up of a read-only command on Postgres drops from ~6× to ~3× `node -e 0`
// (bench/startup.bench.ts). Every chunk sits directly in dist/bundle/, two levels below the package
// root like dist/<dir>/*.js, so paths relative to import.meta.url (package.json, fixtures/) hold.
// `node scripts/bundle.mjs [dist]`: dist/ by default; the benches bundle their private build.
import path from 'node:path'

import { build } from 'esbuild'

const dist = process.argv[2] ?? 'dist'

await build({
  entryPoints: [path.join(dist, 'cli', 'main.js')],
  outdir: path.join(dist, 'bundle'),
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  // ESM builds first (jsonc-parser's `main` is a UMD build that requires files by relative path).
  mainFields: ['module', 'main'],
  entryNames: '[name]',
  chunkNames: '[name]-[hash]',
  // Loaded from node_modules as they are: wasm and data files beside PGlite, ssh2's optional native
  // crypto, pg's optional native driver, OpenTelemetry (only with otel.endpoint).
  external: ['@electric-sql/pglite', '@electric-sql/pglite/*', 'kysely-pglite-dialect', 'ssh2', 'cpu-features', 'pg-native', '@opentelemetry/*'],
  // Bundled CommonJS packages call require(): give the ESM chunks a real one.
  banner: { js: "import { createRequire as __fleetRequire } from 'node:module'; const require = __fleetRequire(import.meta.url);" },
  logLevel: 'warning',
})
