import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Two cores: each integration file starts its own simulator (and SSH server).
    maxWorkers: 2,
    pool: 'forks',
    projects: [
      { extends: true, test: { name: 'unit', include: ['test/unit/**/*.test.ts'] } },
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          // Builds the Go test bed (vcsim launcher, oracle, ESXi shell emulator) once per run.
          globalSetup: ['test/support/global-setup.ts'],
        },
      },
    ],
  },
});
