import { defineConfig } from 'vitest/config';

// Tests use real sockets, SQLite files and child processes. One file at a time (vitest's default
// on two cores): several tests measure a server under their own load (TFTP through packet loss,
// DHCP and boot scripts during an import, kill -9 mid-exchange), and a second file beside them
// on the same two cores made them miss their bounds.
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
