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
    // A VM boot that fails is booted once more, on a fresh VM and tap: in one run of this suite
    // a proxy-lab UEFI boot could no longer reach livery after switch-root (the agent's
    // connections timed out), not yet explained; the reporter prints every retry, so it shows.
    retry: 1,
    hookTimeout: 30 * 60_000,
    reporters: ['default'],
  },
});
