import { defineConfig } from 'vitest/config';

// Tests use real sockets, SQLite files and child processes. Two files run at once: vitest's
// default on two cores is one (cores - 1), and many files spend their time waiting on timers,
// retransmissions and child processes rather than on a core.
export default defineConfig({
  test: {
    maxWorkers: 2,
    // End-to-end VM boots live in test/e2e and run through `make e2e` (vitest.e2e.config.ts).
    include: ['test/**/*.test.ts'],
    exclude: ['test/e2e/**', '**/node_modules/**'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    reporters: ['default'],
  },
});
