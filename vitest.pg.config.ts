import { defineConfig } from 'vitest/config';
import base from './vitest.config.js';

/**
 * The server tests again with the CMDB on PostgreSQL (issue #28): DHCP (the crash test among
 * them), HTTP boot, the catalog and imports, each livery on a new database of one throwaway
 * cluster.
 */
export default defineConfig({
  test: {
    ...base.test,
    include: [
      'test/dhcp/server.test.ts',
      'test/boot/http.test.ts',
      'test/catalog/publish.test.ts',
      'test/http/api.test.ts',
      'test/dhcp/crash.test.ts',
    ],
    globalSetup: ['test/helpers/postgres-run.ts'],
  },
});
