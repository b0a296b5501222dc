import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Each file starts its own sshd fleet; two cores run two files at once comfortably.
    maxWorkers: 2,
    fileParallelism: true,
  },
})
