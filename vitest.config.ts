import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['__tests__/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 300_000,
    // VM and engine tests share 2 cores: run files one at a time.
    fileParallelism: false,
    pool: 'forks',
  },
});
