import { defineConfig } from 'vitest/config';

// Tests use real sockets, SQLite files and child processes; run files in parallel
// across the two cores but give network tests room to finish.
export default defineConfig({
  test: {
    // End-to-end VM boots live in test/e2e and run through `make e2e` (vitest.e2e.config.ts).
    include: ['test/**/*.test.ts'],
    exclude: ['test/e2e/**', '**/node_modules/**'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    reporters: ['default'],
  },
});
