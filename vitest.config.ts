import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 90_000,
    // Each integration file starts its own simulator; two cores go further with two workers.
    maxWorkers: 2,
    pool: 'forks',
    reporters: ['default'],
  },
});
