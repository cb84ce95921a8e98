/**
 * DHCP with its leases in PostgreSQL: full DISCOVER-OFFER-REQUEST-ACK exchanges per second,
 * one livery node with its CMDB on PostgreSQL, then two nodes sharing a segment and a database
 * (lib/dhcp-segment.ts), against ISC Kea with its own PostgreSQL lease backend, all on the same
 * throwaway PostgreSQL 15 cluster (each run a fresh database of its own), by the method of
 * lib/dhcp-measure.ts.
 *
 * Every server runs in a network namespace, which has a loopback of its own: they reach
 * PostgreSQL through its Unix socket (libpq takes the socket's directory as the host).
 */
import { execFileSync } from 'node:child_process';
import { SyncPg } from '../src/cmdb/postgres/sync-pg.js';
import { startPostgres, type TestPostgres } from '../test/helpers/postgres.js';
import { createDatabase } from '../test/helpers/test-database.js';
import { createDhcpBenchNet, curveNote, measureDhcp, methodNote, startLivery } from './lib/dhcp-measure.js';
import { startKea, type RunningServer } from './lib/dhcp-refs.js';
import { createDhcpSegment } from './lib/dhcp-segment.js';
import { versionOf, type BenchHarness, type BenchRow } from './lib/harness.js';

const LIVERY = 'livery (PostgreSQL)';
const PAIR = 'two livery nodes (PostgreSQL)';
const KEA = 'Kea (PostgreSQL lease backend)';
/** The cluster's role (test/helpers/postgres.ts), owner of every database made here. */
const USER = 'livery';
/** SQLSTATE 55006: the database still has sessions. */
const OBJECT_IN_USE = '55006';
const DROP_WAIT_MS = 15_000;

export default async function dhcpPg(h: BenchHarness): Promise<BenchRow[]> {
  const pg = await startPostgres();
  const { net, n, perfdhcp } = createDhcpBenchNet();
  const segment = createDhcpSegment(2);
  try {
    const results = await measureDhcp(h, [
      { name: LIVERY, start: (dir) => withDatabase(pg, (db) => startLivery(net, dir, n, { url: db.url, passwordFile: pg.passwordFile })), perfdhcp },
      { name: PAIR, start: (dir) => withDatabase(pg, (db) => segment.startLiveryNodes(dir, { url: db.url, passwordFile: pg.passwordFile })), perfdhcp: segment.perfdhcp },
      {
        name: KEA,
        perfdhcp,
        start: (dir) =>
          withDatabase(pg, (db) => {
            keaDbInit(pg, db.name);
            return startKea(net, dir, n, { leaseDatabase: { type: 'postgresql', name: db.name, host: pg.socketDir, port: pg.port, user: USER, password: pg.password } });
          }),
      },
    ]);
    const rates = (name: string) => results.get(name)!.runs.map((r) => r.exchangesPerSecond);
    const curve = (name: string) => curveNote(h, name, results.get(name)!);
    const versions = `${versionOf('perfdhcp', ['-v'])}; kea-dhcp4 ${versionOf('kea-dhcp4', ['-v'])}; ${versionOf('/usr/lib/postgresql/15/bin/postgres', ['--version'])}`;
    const guarantees =
      'one PostgreSQL 15 cluster (fsync on, synchronous_commit on: its defaults), Unix socket; ' +
      'livery serve, one node: the lease (and on DISCOVER the new MAC, policy discover, and boot events) committed by its writer thread (the writes of exchanges that arrive together share a transaction) under the CMDB write lock, WAL flushed, before the OFFER/ACK leaves; ' +
      'Kea 2.2 single-threaded (its default), one connection: DISCOVER only reads (no lease written for an OFFER), REQUEST inserts the lease in an autocommit statement, WAL flushed before the ACK; ' +
      'kea-admin db-init pgsql schema';
    const pairNote =
      'two livery serve nodes, each in a network namespace of its own, plugged into one bridge with perfdhcp, one PostgreSQL database, dhcp.peers naming each other ' +
      '(each answers the clients that hash to it, RFC 3074; every lease write a claim checked in its transaction); ' +
      'perfdhcp -l <bridge> broadcasts, so both nodes hear every DISCOVER and REQUEST, with the same giaddr, subnet, pool, clients, rates and warm-up as the single-server rows, ' +
      'and an exchange completed by either node counts; the single servers are reached by perfdhcp relaying unicast to them';
    const shares = [...segment.replies].map(([node, r]) => `${node} ${r.acks} ACKs, ${r.naks} NAKs`).join('; ');
    h.log(`two nodes, replies over every run: ${shares}`);
    return [
      h.row({
        name: `dhcp, leases in PostgreSQL: 4-way exchanges/s, vs Kea's PostgreSQL backend`,
        unit: 'exchanges/s',
        higherIsBetter: true,
        livery: rates(LIVERY),
        reference: rates(KEA),
        referenceName: KEA,
        notes: `${methodNote(h, n)} (${curve(LIVERY)}; ${curve(KEA)}); ${guarantees}; ${versions}`,
      }),
      h.row({
        name: 'dhcp, leases in PostgreSQL: DISCOVERs unanswered at peak rate',
        unit: '%',
        higherIsBetter: false,
        livery: results.get(LIVERY)!.runs.map((r) => r.discoverDropPercent),
        reference: results.get(KEA)!.runs.map((r) => r.discoverDropPercent),
        referenceName: KEA,
        notes: 'percent of DISCOVERs without an OFFER within 1 s, at each server’s own peak offered rate',
      }),
      ...[
        { ref: KEA, vs: `Kea's PostgreSQL backend` },
        { ref: LIVERY, vs: 'one livery node' },
      ].map(({ ref, vs }) =>
        h.row({
          name: `dhcp, leases in PostgreSQL, two livery nodes on one segment: 4-way exchanges/s, vs ${vs}`,
          unit: 'exchanges/s',
          higherIsBetter: true,
          livery: rates(PAIR),
          reference: rates(ref),
          referenceName: ref,
          notes: `${pairNote} (${curve(PAIR)}; ${curve(ref)}); replies sent by each node over every run, warm-ups included: ${shares}; the same rounds as the rows above`,
        }),
      ),
    ];
  } finally {
    segment.remove();
    net.remove();
    await pg.stop();
  }
}

/** Runs `start` on a new, empty database of the cluster; the database is dropped once the server stops. */
async function withDatabase(pg: TestPostgres, start: (db: { name: string; url: string }) => Promise<RunningServer>): Promise<RunningServer> {
  const { url } = createDatabase({ url: pg.socketUrl, password: pg.password });
  const name = new URL(url).pathname.slice(1);
  // Plain DROP DATABASE (not FORCE, which this role may not use on an autovacuum worker): the
  // server stops the database's autovacuum itself; a server's connection still closing is waited out.
  const drop = async () => {
    const admin = new SyncPg({ url: pg.socketUrl, password: pg.password });
    try {
      for (const deadline = Date.now() + DROP_WAIT_MS; ; ) {
        try {
          return admin.query(`DROP DATABASE ${name}`);
        } catch (err) {
          if ((err as { code?: string }).code !== OBJECT_IN_USE || Date.now() > deadline) throw err;
          await new Promise((r) => setTimeout(r, 200));
        }
      }
    } finally {
      admin.close();
    }
  };
  let server: RunningServer;
  try {
    server = await start({ name, url });
  } catch (err) {
    await drop();
    throw err;
  }
  return {
    stop: async () => {
      await server.stop();
      await drop();
    },
  };
}

/** Kea's own schema in database `name`, made by its own tool; the password goes in the environment, not on a command line. */
function keaDbInit(pg: TestPostgres, name: string): void {
  execFileSync('kea-admin', ['db-init', 'pgsql', '-u', USER, '-n', name, '-h', pg.socketDir, '-P', String(pg.port)], {
    env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/bin', PGPASSWORD: pg.password },
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: 60_000,
  });
}
