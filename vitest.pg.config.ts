import { defineConfig } from 'vitest/config';
import base from './vitest.config.js';

/**
 * The server tests again with the CMDB on PostgreSQL (issue #28): DHCP, HTTP boot, the catalog and
 * imports, each livery on a new database of one throwaway cluster. test/dhcp/crash.test.ts takes
 * the run's engine too but is not in this list yet: on PostgreSQL its durability checks hold, its
 * checks that a restarted livery serves again within its bounds under load do not (issue #28's notes).
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
