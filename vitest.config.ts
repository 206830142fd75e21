import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Integration tests start real OS processes; two cores means little is gained by more forks.
    pool: 'forks',
    maxWorkers: 2,
    // Only a bound for a hung test, never a pace to keep: tests wait for events. Integration tests
    // start real daemons and workers (a Node process loading zeromq each); with both cores busy
    // (load 10-20 on 2 cores) a start that takes 1 s idle takes 5-10 s, and a test starting a few
    // clusters legitimately needs tens of seconds. Examples set their own, longer bounds.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    retry: 0,
    // The workers' test hooks (['crash'], ['burn']): off unless the environment enables them.
    env: { ZEROCOS_TEST_HOOKS: '1' },
    // Under CI, also write machine-readable results: .ci/run prints the plain summary line from them.
    reporters: process.env.CI ? ['default', ['json', { outputFile: 'test-results.json' }]] : ['default'],
  },
});
