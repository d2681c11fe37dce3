import { defineConfig } from 'vitest/config';

// Two projects: `unit` needs no server and starts none (`npm run test:unit`, the fast lane);
// `integration` (test/integration and test/e2e) shares one Temporal dev server and one S3 server,
// started once by the global setup, and runs its files in parallel workers.
export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    reporters: ['default', './test/summary-reporter.ts'],
    projects: [
      // The unit files share their workers' module cache (none mutates globals or mocks modules):
      // most of the lane's time went into importing the same modules again for every file.
      { extends: true, test: { name: 'unit', include: ['test/unit/**/*.test.ts'], isolate: false } },
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts', 'test/e2e/**/*.test.ts'],
          globalSetup: ['test/setup/s3.ts', 'test/setup/temporal.ts'],
        },
      },
    ],
  },
});
