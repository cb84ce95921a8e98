import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openCmdbAt, type CmdbTarget } from '../../src/cmdb/index.js';
import { execRaw } from '../helpers/db-snapshot.js';
import { readAcks, startRecorder, type Ack } from '../helpers/dhcp-recorder-run.js';
import type { RecorderSummary } from '../helpers/dhcp-recorder.js';
import { startLiveryInNs, type NsLivery } from '../helpers/livery-ns.js';
import { createTestNet, NETNS_SKIP, type TestNet } from '../helpers/netns.js';
import { startPerfdhcp, type PerfdhcpRun } from '../helpers/perfdhcp.js';
import { POSTGRES_SKIP, startPostgres, type TestPostgres } from '../helpers/postgres.js';
import { tempDir } from '../helpers/tmp.js';

const SERVER = '10.97.0.1';
const PERFDHCP_RELAY = '10.101.0.1';
const RECORDER_RELAY = '10.101.0.2';
/** How long PostgreSQL stays down under load before it is started again. */
const OUTAGE_MS = 3000;
/** Generous bounds on waits, not speed claims: the machine is shared with other test runs. */
const SERVED_WITHIN_MS = 60_000;
const LOSS_LINE = 'the CMDB cannot be reached';
const RECOVERY_LINE = 'the CMDB answers again';

const SKIP = NETNS_SKIP ?? POSTGRES_SKIP;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, ms: number, probe: () => T | null | undefined | false): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(100);
  }
}

describe.skipIf(SKIP)(SKIP ? `PostgreSQL restart test skipped: ${SKIP}` : 'DHCP on PostgreSQL, the database restarted under load', () => {
  const dir = tempDir();
  const acksFile = join(dir.path, 'acks.log');
  let pg: TestPostgres;
  let net: TestNet;
  let livery: NsLivery | undefined;
  let perfdhcp: PerfdhcpRun | undefined;
  let stopRecorder: (() => Promise<RecorderSummary>) | undefined;
  let target: CmdbTarget;

  const metrics = () => {
    try {
      return net.exec(net.client, 'curl', ['-sS', '--fail', '--max-time', '20', `http://${SERVER}:8080/metrics`], 30_000);
    } catch (err) {
      throw new Error(`GET /metrics failed: ${(err as Error).message}\nlivery's output:\n${livery!.output().slice(-3000)}`);
    }
  };
  const lines = (text: string) => livery!.output().split('\n').filter((l) => l.includes(text));

  beforeAll(async () => {
    pg = await startPostgres();
    target = { engine: 'postgres', url: pg.socketUrl, password: pg.password };
    net = createTestNet({
      serverAddress: `${SERVER}/24`,
      clientAddresses: ['10.97.0.2/24', `${PERFDHCP_RELAY}/16`, `${RECORDER_RELAY}/16`],
      routes: [{ ns: 'server', to: '10.101.0.0/16', via: '10.97.0.2' }],
    });
    const cmdb = openCmdbAt(target);
    cmdb.subnets.create({ name: 'restart', cidr: '10.101.0.0/16', gateway: PERFDHCP_RELAY, pools: [{ start: '10.101.1.0', end: '10.101.255.254' }], policy: 'discover' });
    cmdb.close();
    livery = await startLiveryInNs(net, dir.path, {
      dataDir: join(dir.path, 'var'),
      database: { url: pg.socketUrl, passwordFile: pg.passwordFile },
      http: { listen: `${SERVER}:8080`, workers: 1 },
      tftp: { enabled: false },
      dhcp: { enabled: true, interface: net.serverIf, address: SERVER },
    });
  }, 120_000);

  afterAll(async () => {
    await perfdhcp?.stop().catch(() => undefined);
    await stopRecorder?.().catch(() => undefined);
    await livery?.kill9();
    net?.remove();
    await pg?.stop();
    dir.cleanup();
  }, 60_000);

  it('keeps every ACKed lease, answers again once PostgreSQL is back, and logs and counts the outage once', async () => {
    perfdhcp = startPerfdhcp(net, { server: SERVER, relay: PERFDHCP_RELAY, rate: 100, clients: 3000, seconds: 120 });
    const recorder = startRecorder(net, {
      relay: RECORDER_RELAY,
      server: SERVER,
      macPrefix: '02:dd:00:00',
      perSecond: 60,
      durationMs: 120_000,
      out: acksFile,
    });
    stopRecorder = recorder.stop;
    await until('40 ACKs before the restart', SERVED_WITHIN_MS, () => readAcks(acksFile).length >= 40);
    expect(metrics()).toMatch(/^livery_dhcp_cmdb_up 1$/m);

    await pg.halt();
    await until('the log line of the outage', SERVED_WITHIN_MS, () => lines(LOSS_LINE).length > 0);
    const during = metrics();
    expect(during, '/metrics answers while the database is down').toMatch(/^livery_dhcp_cmdb_up 0$/m);
    expect(during).toMatch(/^livery_dhcp_cmdb_unavailable_total\{cause="[a-z-]+"\} [1-9]/m);
    await sleep(OUTAGE_MS);
    await pg.restart();
    const upAt = Date.now();

    const after = (acks: Ack[]) => acks.filter((a) => a.at > upAt);
    await until('ACKs after PostgreSQL restarted', SERVED_WITHIN_MS, () => after(readAcks(acksFile)).length >= 20);
    await until('the log line of the recovery', SERVED_WITHIN_MS, () => lines(RECOVERY_LINE).length > 0);
    const summary = await recorder.stop();
    const load = await perfdhcp.stop();
    expect(livery!.proc.exitCode, 'livery kept running through the outage').toBeNull();
    expect(load.request.received, "perfdhcp's clients were served too").toBeGreaterThan(100);

    const recovered = metrics();
    expect(recovered).toMatch(/^livery_dhcp_cmdb_up 1$/m);
    // One line when the outage began and one when it ended, not one per packet or per batch.
    expect(lines(LOSS_LINE)).toHaveLength(1);
    expect(lines(RECOVERY_LINE)).toHaveLength(1);
    expect(lines('dhcp handler error')).toEqual([]);
    expect(lines('lease commit failed')).toEqual([]);

    const acks = readAcks(acksFile);
    expect(summary.acked).toBe(acks.length);
    const cmdb = openCmdbAt(target);
    try {
      const missing = acks.filter((a) => {
        const lease = cmdb.leases.get(a.ip);
        return !lease || lease.mac !== a.mac || lease.state !== 'bound';
      });
      expect(missing, 'ACKed leases missing after the restart').toEqual([]);
      expect(execRaw(cmdb, 'SELECT ip, count(*) AS n FROM leases GROUP BY ip HAVING count(*) > 1')).toEqual([]);
    } finally {
      cmdb.close();
    }
  }, 300_000);
});
