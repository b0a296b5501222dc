import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Each file starts its own sshd fleet; the files mostly wait (verify delays, bakes, timeouts), so three at once fit two cores.
    maxWorkers: 3,
    fileParallelism: true,
  },
})
