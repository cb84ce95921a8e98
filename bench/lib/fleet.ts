import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { resolveConfig } from '../../src/config/index.js';
import { startLivery, type Livery } from '../../src/daemon/index.js';
import { createLogger } from '../../src/log.js';
import { serveUntilListening, type ServeProcess } from '../../test/helpers/cli.js';
import { freePort } from './harness.js';

/** MAC of the i-th synthetic machine (locally administered prefix 02:). */
export const macOf = (i: number) =>
  `02:00:${[(i >> 24) & 255, (i >> 16) & 255, (i >> 8) & 255, i & 255].map((b) => b.toString(16).padStart(2, '0')).join(':')}`;

/**
 * A real livery on loopback (HTTP only, one process unless `workers` says otherwise) whose
 * CMDB holds `machines` machines, all following `image` when given; `machineDoor` overrides
 * http.machineDoor's limits.
 */
export async function startFleet(dir: string, machines: number, opts: { image?: string; machineDoor?: Record<string, number> } = {}): Promise<Livery> {
  const config = resolveConfig({
    dataDir: join(dir, 'var'),
    log: { level: 'silent' },
    http: { listen: `127.0.0.1:${await freePort()}`, workers: 1, ...(opts.machineDoor ? { machineDoor: opts.machineDoor } : {}) },
    tftp: { enabled: false },
  });
  const livery = await startLivery(config, createLogger('silent'));
  livery.cmdb.tx(() => {
    for (let i = 0; i < machines; i++) {
      livery.cmdb.machines.create({
        macs: [macOf(i)],
        hostname: `n${i}`,
        labels: { rack: `r${i % 40}` },
        site: 'bench',
        ...(opts.image ? { image: { name: opts.image, channel: 'stable' } } : {}),
      });
    }
  });
  return livery;
}

/**
 * The fleet's data served as livery is deployed: the built `livery serve` (dist/, `make build`
 * first) on startFleet's data dir, with http.workers 0 (one HTTP process per core). Closes
 * `livery` first: one server per data dir.
 */
export async function serveFleet(dir: string, livery: Livery, machineDoor: Record<string, number> = {}): Promise<ServeProcess> {
  await livery.close();
  const config = join(dir, 'serve.toml');
  const door = Object.entries(machineDoor).map(([k, v]) => `${k} = ${v}\n`).join('');
  writeFileSync(
    config,
    `dataDir = "${join(dir, 'var')}"\nlog.level = "warn"\n[http]\nlisten = "127.0.0.1:${await freePort()}"\nworkers = 0\n[http.machineDoor]\n${door}[tftp]\nenabled = false\n`,
  );
  return serveUntilListening(['--config', config]);
}
