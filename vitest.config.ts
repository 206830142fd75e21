import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Integration tests start real OS processes; two cores means little is gained by more forks.
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 20_000,
    hookTimeout: 20_000,
    retry: 0,
    // The workers' test hooks (['crash'], ['burn']): off unless the environment enables them.
    env: { ZEROCOS_TEST_HOOKS: '1' },
    // Under CI, also write machine-readable results: .ci/run prints the plain summary line from them.
    reporters: process.env.CI ? ['default', ['json', { outputFile: 'test-results.json' }]] : ['default'],
  },
});
