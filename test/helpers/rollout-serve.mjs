/**
 * `livery serve` (the built one, from dist/: make build) with BMCs that only record: what
 * test/rollout/crash.test.ts runs and kills with -9. Each power cycle is appended (and
 * fsynced) to the ledger file before the "BMC" answers, 300 ms later, so a kill can land
 * between livery's intent and its record of the answer. The test plays the machines: it boots
 * each one it finds in the ledger.
 *
 * usage: node test/helpers/rollout-serve.mjs CONFIG LEDGER
 */
import { closeSync, fsyncSync, openSync, writeSync } from 'node:fs';
import { loadConfig } from '../../dist/config/index.js';
import { startLivery } from '../../dist/daemon/index.js';
import { createLogger } from '../../dist/log.js';

const [configPath, ledger] = process.argv.slice(2);
const livery = await startLivery(loadConfig(configPath, {}), createLogger('silent'), {
  rolloutTickMs: 50,
  power: {
    hasBmc: () => true,
    async cycle(machine) {
      const fd = openSync(ledger, 'a');
      writeSync(fd, `${machine.macs[0]}\n`);
      fsyncSync(fd);
      closeSync(fd);
      await new Promise((r) => setTimeout(r, 300));
    },
  },
});
console.error(`livery is serving ${livery.url}`);
