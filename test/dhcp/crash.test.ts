import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RecorderSummary } from '../helpers/dhcp-recorder.js';
import { readAcks, startRecorder, type Ack, type Recorder } from '../helpers/dhcp-recorder-run.js';
import { startLiveryInNs, type NsLivery } from '../helpers/livery-ns.js';
import { createTestNet, NETNS_SKIP, type TestNet } from '../helpers/netns.js';
import { startPerfdhcp, type PerfdhcpRun } from '../helpers/perfdhcp.js';
import { execRaw } from '../helpers/db-snapshot.js';
import { testDatabase } from '../helpers/test-database.js';
import { tempDir } from '../helpers/tmp.js';

const SERVER = '10.99.0.1';
// Two relays on the client veth (perfdhcp and the recorder each bind <relay>:67), both inside
// the relayed /16, which the server namespace routes back through the client end.
const PERFDHCP_RELAY = '10.100.0.1';
const RECORDER_RELAY = '10.100.0.2';
/**
 * Where each crash lands: at any moment under load (often mid-commit, so SQLite must recover
 * its write-ahead log), or while livery cannot commit because the test holds SQLite's write
 * lock (as a stalled disk would) and a burst of the recorder's REQUESTs is all it has been
 * sent: a server that answered before committing would have sent ACKs for leases that die
 * with it.
 */
const CRASHES = ['under load', 'commit stalled', 'under load'] as const;
/** How long livery is left unable to commit: well under its 5 s SQLite busy timeout. */
const STALL_MS = 1000;
// Each crash comes once the recorder has seen this many new ACKs (and at least the minimum
// time under load has passed), so every kill lands mid-run whatever the machine's speed.
const ACKS_PER_PHASE = 40;
const PHASE_MIN_MS = 2000;
const PHASE_MAX_MS = 30_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.skipIf(NETNS_SKIP)(NETNS_SKIP ? `DHCP crash test skipped: ${NETNS_SKIP}` : 'DHCP under perfdhcp load survives kill -9', () => {
  const dir = tempDir();
  const dataDir = join(dir.path, 'var');
  const acksFile = join(dir.path, 'acks.log');
  const database = testDatabase(dataDir);
  let net: TestNet;
  let livery: NsLivery | undefined;
  let perfdhcp: PerfdhcpRun | undefined;
  let stopRecorder: (() => Promise<RecorderSummary>) | undefined;

  const config = () => ({
    dataDir,
    database: database.config,
    http: { listen: `${SERVER}:8080`, workers: 1 },
    tftp: { enabled: false },
    dhcp: { enabled: true, interface: net.serverIf, address: SERVER },
  });

  const recordedAcks = () => readAcks(acksFile);

  /** Waits (under load) until the recorder has more than `after` ACKs on file; returns them. */
  const loadUntilAcked = async (after: number): Promise<Ack[]> => {
    const started = Date.now();
    for (;;) {
      await sleep(100);
      const acks = recordedAcks();
      const elapsed = Date.now() - started;
      if ((elapsed >= PHASE_MIN_MS && acks.length >= after + ACKS_PER_PHASE) || elapsed > PHASE_MAX_MS) return acks;
    }
  };

  /**
   * With perfdhcp paused and the recorder holding its REQUESTs back, takes the database's write
   * lock, lets the recorder fire the held REQUESTs, and kills livery while it waits for the lock.
   * Returns how many REQUESTs were fired into the stall.
   */
  const crashWhileCommitStalled = async (server: NsLivery, recorder: Recorder, load: PerfdhcpRun): Promise<number> => {
    load.pause();
    await recorder.command('hold');
    const blocker = database.holdWriteLock();
    try {
      const released = await recorder.command('release');
      await sleep(STALL_MS);
      await server.kill9();
      return released;
    } finally {
      blocker.release();
      load.resume();
    }
  };

  /** Checks the database as livery left it: every ACK the client saw is a bound lease of that MAC. */
  const checkDatabase = (acks: Ack[]) => {
    const cmdb = database.open();
    try {
      expect(cmdb.integrityCheck()).toBe('ok');
      const missing = acks.filter((a) => {
        const lease = cmdb.leases.get(a.ip);
        return !lease || lease.mac !== a.mac || lease.state !== 'bound';
      });
      expect(missing, 'ACKed leases missing from the CMDB after kill -9').toEqual([]);
      expect(execRaw(cmdb, 'SELECT ip, count(*) AS n FROM leases GROUP BY ip HAVING count(*) > 1')).toEqual([]);
      expect(execRaw(cmdb, 'SELECT mac, subnet_id, count(*) AS n FROM leases GROUP BY mac, subnet_id HAVING count(*) > 1')).toEqual([]);
      return { bound: cmdb.leases.count('bound') };
    } finally {
      cmdb.close();
    }
  };

  beforeAll(async () => {
    net = createTestNet({
      serverAddress: `${SERVER}/24`,
      clientAddresses: ['10.99.0.2/24', `${PERFDHCP_RELAY}/16`, `${RECORDER_RELAY}/16`],
      routes: [{ ns: 'server', to: '10.100.0.0/16', via: '10.99.0.2' }],
    });
    const cmdb = database.open();
    cmdb.subnets.create({ name: 'crash', cidr: '10.100.0.0/16', gateway: PERFDHCP_RELAY, pools: [{ start: '10.100.1.0', end: '10.100.255.254' }], policy: 'discover' });
    cmdb.close();
    livery = await startLiveryInNs(net, dir.path, config());
  });

  afterAll(async () => {
    await perfdhcp?.stop().catch(() => undefined);
    await stopRecorder?.().catch(() => undefined);
    await livery?.kill9();
    net?.remove();
    dir.cleanup();
  });

  it('keeps every ACKed lease, with no address or MAC doubled, across three crashes', async () => {
    perfdhcp = startPerfdhcp(net, { server: SERVER, relay: PERFDHCP_RELAY, rate: 300, clients: 5000, seconds: 60 });
    const recorder = startRecorder(net, {
      relay: RECORDER_RELAY,
      server: SERVER,
      macPrefix: '02:cc:00:00',
      perSecond: 150,
      durationMs: 60_000,
      out: acksFile,
    });
    stopRecorder = recorder.stop;

    let restartedAt = 0;
    let acked = 0;
    for (const [k, when] of CRASHES.entries()) {
      const served = (await loadUntilAcked(acked)).length;
      expect(served, `livery served the recorder before crash ${k + 1}`).toBeGreaterThan(acked);
      if (when === 'commit stalled') expect(await crashWhileCommitStalled(livery!, recorder, perfdhcp), 'REQUESTs sent into the stall').toBeGreaterThan(0);
      else await livery!.kill9();
      // Straight after the crash, before a restart could paper over anything.
      const acks = recordedAcks();
      checkDatabase(acks);
      acked = acks.length;
      livery = await startLiveryInNs(net, dir.path, config());
      restartedAt = Date.now();
    }
    // The recorder keeps going against the restarted server for a while, then everything stops.
    await loadUntilAcked(acked);
    const summary = await recorder.stop();
    const load = await perfdhcp.stop();
    await livery!.kill9();

    const acks = recordedAcks();
    expect(summary.acked).toBe(acks.length);
    expect(acks.filter((a) => a.at > restartedAt).length, 'ACKs after the last restart').toBeGreaterThan(0);
    const { bound } = checkDatabase(acks);
    // perfdhcp's clients were served too: the recorder's leases are not all there is.
    expect(load.request.received).toBeGreaterThan(500);
    expect(bound).toBeGreaterThan(acks.length);
  }, 180_000);
});
