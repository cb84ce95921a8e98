import pg from 'pg';
import { SyncPg } from '../src/cmdb/postgres/sync-pg.js';
import { startPostgres, urlWithPassword } from '../test/helpers/postgres.js';
import type { BenchHarness, BenchRow } from './lib/harness.js';

const CALLS = 10_000;
const WARMUP = 1_000;

/**
 * One `SELECT 1` through SyncPg (a blocking call answered by its thread), against the same
 * statement awaited on one pg connection: what the synchronous interface costs per round trip
 * over pg's own, by loopback TCP and by the Unix socket of a throwaway PostgreSQL 15.
 */
export default async function syncPg(h: BenchHarness): Promise<BenchRow[]> {
  const server = await startPostgres();
  try {
    const rows: BenchRow[] = [];
    for (const [transport, url] of [
      ['loopback TCP', server.url],
      ['Unix socket', server.socketUrl],
    ] as const) {
      const sync: number[] = [];
      const plain: number[] = [];
      for (let run = 0; run < h.runs; run++) {
        sync.push(syncMicros(url, server.password));
        plain.push(await asyncMicros(url, server.password));
      }
      h.log(`${transport}: SyncPg ${sync.map((v) => v.toFixed(1)).join(', ')} µs; pg ${plain.map((v) => v.toFixed(1)).join(', ')} µs`);
      rows.push(
        h.row({
          name: `cmdb: SELECT 1 round trip to PostgreSQL, ${transport}`,
          unit: 'µs/call',
          higherIsBetter: false,
          livery: sync,
          reference: plain,
          referenceName: 'pg, awaited on one connection',
          notes: `${CALLS} calls in a row per run after ${WARMUP} to warm up; livery calls synchronously through SyncPg's thread (src/cmdb/postgres/sync-pg.ts)`,
        }),
      );
    }
    return rows;
  } finally {
    await server.stop();
  }
}

function syncMicros(url: string, password: string): number {
  const db = new SyncPg({ url, password, poolSize: 1 });
  try {
    for (let i = 0; i < WARMUP; i++) db.query('SELECT 1');
    const started = performance.now();
    for (let i = 0; i < CALLS; i++) db.query('SELECT 1');
    return ((performance.now() - started) * 1000) / CALLS;
  } finally {
    db.close();
  }
}

async function asyncMicros(url: string, password: string): Promise<number> {
  const client = new pg.Client({ connectionString: urlWithPassword(url, password) });
  await client.connect();
  try {
    for (let i = 0; i < WARMUP; i++) await client.query('SELECT 1');
    const started = performance.now();
    for (let i = 0; i < CALLS; i++) await client.query('SELECT 1');
    return ((performance.now() - started) * 1000) / CALLS;
  } finally {
    await client.end();
  }
}
