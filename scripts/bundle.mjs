// Bundles the compiled CLI (dist/cli/main.js, from tsc) into dist/bundle/: one ESM file per entry
// and per lazily imported command, so a command loads a handful of files instead of ~500 modules
// (kysely alone is 279). Start-up of a read-only command on Postgres drops from ~6× to ~3× `node -e 0`
// (bench/startup.bench.ts). Every chunk sits directly in dist/bundle/, two levels below the package
// root like dist/<dir>/*.js, so paths relative to import.meta.url (package.json, fixtures/) hold.
// `node scripts/bundle.mjs [dist]`: dist/ by default; the benches bundle their private build.
import { rmSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import path from 'node:path'

import { build } from 'esbuild'

/**
 * pg asks "am I on Cloudflare Workers?" when it loads, by constructing a `Response`: on Node 20 that
 * loads the whole fetch implementation (undici, ~11 ms of every command's start). fleet runs on Node.
 */
const nodeOnlyPg = {
  name: 'node-only-pg',
  setup(build) {
    build.onLoad({ filter: /[\\/]pg[\\/]lib[\\/]stream\.js$/ }, async (args) => {
      const source = await readFile(args.path, 'utf8')
      return { contents: source.replace('function isCloudflareRuntime() {', 'function isCloudflareRuntime() {\n  return false'), loader: 'js' }
    })
  },
}

const dist = process.argv[2] ?? 'dist'
// Chunk names carry hashes: last build's chunks would otherwise pile up here (and in the tarball).
rmSync(path.join(dist, 'bundle'), { recursive: true, force: true })

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
  // Loaded from node_modules as they are: PGlite (its wasm and data files sit beside it), ssh2 (its
  // optional native crypto), pg's optional native driver. Everything else is in the bundle, so the
  // package's runtime dependencies are these two (OpenTelemetry is a chunk loaded only with otel.endpoint).
  external: ['@electric-sql/pglite', '@electric-sql/pglite/*', 'ssh2', 'cpu-features', 'pg-native'],
  // Bundled CommonJS packages call require(): give the ESM chunks a real one.
  banner: { js: "import { createRequire as __fleetRequire } from 'node:module'; const require = __fleetRequire(import.meta.url);" },
  logLevel: 'warning',
  plugins: [nodeOnlyPg],
})
