import { execFileSync } from 'node:child_process'
import { copyFileSync, mkdirSync, rmSync } from 'node:fs'
import path from 'node:path'
import type { TestProject } from 'vitest/node'

import { BUILD_DIR, machineInfo, REPO_ROOT } from './measure.js'
import { writeResultsMarkdown } from './results.js'

declare module 'vitest' {
  export interface ProvidedContext {
    benchRunId: string
    /** The code measured: HEAD and whether src/ had uncommitted changes, when the run started. */
    benchCode: string
  }
}

/**
 * Builds a private copy of the CLI (bench/.build/{bin,dist}, the same layout as the package) so
 * the CLI figures come from one snapshot of src/, whatever else rebuilds dist/ meanwhile; gives the
 * run one id; rewrites bench/RESULTS.md at the end.
 */
export default function setup(project: TestProject): () => void {
  project.provide('benchRunId', new Date().toISOString().replace(/[-:]/g, '').slice(0, 15))
  project.provide('benchCode', machineInfo().commit ?? 'unknown')
  rmSync(BUILD_DIR, { recursive: true, force: true })
  mkdirSync(path.join(BUILD_DIR, 'bin'), { recursive: true })
  const tsc = path.join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc')
  try {
    execFileSync(process.execPath, [tsc, '-p', path.join(REPO_ROOT, 'tsconfig.build.json'), '--outDir', path.join(BUILD_DIR, 'dist')], { cwd: REPO_ROOT, stdio: 'pipe' })
  } catch (error) {
    // Type errors still emit JavaScript; the figures are for whatever src/ is now.
    const out = String((error as { stdout?: Buffer }).stdout ?? '')
    console.warn(`bench: tsc reported errors (JavaScript emitted anyway):\n${out.slice(0, 2000)}`)
  }
  // bin/fleet runs the bundle (scripts/bundle.mjs), as the package does.
  execFileSync(process.execPath, [path.join(REPO_ROOT, 'scripts', 'bundle.mjs'), path.join(BUILD_DIR, 'dist')], { cwd: REPO_ROOT, stdio: 'pipe' })
  copyFileSync(path.join(REPO_ROOT, 'bin', 'fleet'), path.join(BUILD_DIR, 'bin', 'fleet'))
  // The CLI reads its version from the package root's package.json.
  copyFileSync(path.join(REPO_ROOT, 'package.json'), path.join(BUILD_DIR, 'package.json'))
  return () => writeResultsMarkdown()
}
