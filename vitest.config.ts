import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Each file starts its own sshd fleet; the files mostly wait (sshd, git, bakes, held steps), so four at once
    // fit two cores: measured 297 s against 315 s with three (the same tree, one run each).
    maxWorkers: 4,
    fileParallelism: true,
    // One module graph per worker, not per file: 11 s of imports instead of 35 (the suites share no state
    // but what they clean up after each test).
    isolate: false,
  },
})
