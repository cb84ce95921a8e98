import { defineConfig } from 'vitest/config';

// End-to-end VM boots (make e2e): real QEMU guests network-booting from livery. One file at a
// time in one fork, since each boots VMs that want both cores; the timeouts are the tests' own.
export default defineConfig({
  test: {
    include: ['test/e2e/**/*.test.ts'],
    pool: 'forks',
    poolOptions: { forks: { singleFork: true } },
    fileParallelism: false,
    testTimeout: 15 * 60_000,
    hookTimeout: 30 * 60_000,
    reporters: ['default'],
  },
});
