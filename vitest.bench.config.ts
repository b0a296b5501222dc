import { defineConfig } from 'vitest/config'

/**
 * The performance benchmark (`npm run bench`), kept out of `npm test`: the main config only
 * includes test/**. Files run one at a time in one worker so figures are not disturbed by each other.
 *   npm run bench                       # everything, then bench/RESULTS.md is rewritten
 *   npm run bench -- overhead           # one file (name filter)
 *   npm run bench -- -t "N=100"         # one case (test name filter)
 */
export default defineConfig({
  test: {
    include: ['bench/**/*.bench.ts'],
    testTimeout: 1_800_000,
    hookTimeout: 900_000,
    maxWorkers: 1,
    fileParallelism: false,
    sequence: { concurrent: false },
    globalSetup: ['bench/support/global-setup.ts'],
    // So the memory figures can start from a collected heap.
    execArgv: ['--expose-gc'],
    reporters: ['default'],
  },
})
