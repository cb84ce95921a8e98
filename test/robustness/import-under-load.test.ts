import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openCmdb } from '../../src/cmdb/index.js';
import { databasePath } from '../../src/daemon/paths.js';
import { startLiveryInNs, type NsLivery } from '../helpers/livery-ns.js';
import { createTestNet, NETNS_SKIP, type TestNet } from '../helpers/netns.js';
import type { ProbeSpec } from '../helpers/dhcp-probe.js';
import { tempDir } from '../helpers/tmp.js';

const PROBE = join(import.meta.dirname, '../helpers/dhcp-probe.ts');
const SERVER = '10.79.0.1';
const BASE = `http://${SERVER}:8080`;
const ROWS = 100_000;
// Generous on a loaded machine; an import holding the write lock for its whole run (seconds
// per 10k rows) stalls both far longer, or fails boot scripts with "database is locked".
const ACK_WITHIN_MS = 8_000;
const SCRIPT_WITHIN_S = 6;

/** One child process run to its end, asynchronously: the test keeps several going at once. */
function run(net: TestNet, cmd: string, args: string[], onLine?: (line: string) => void): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('ip', ['netns', 'exec', net.client, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let pending = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d;
      pending += d;
      const lines = pending.split('\n');
      pending = lines.pop()!;
      lines.forEach((l) => onLine?.(l));
    });
    child.stderr.on('data', (d: Buffer) => (out += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`${cmd} exited ${code}: ${out}`));
    });
  });
}

const macOf = (prefix: string, i: number) => `${prefix}:${[(i >> 16) & 255, (i >> 8) & 255, i & 255].map((b) => b.toString(16).padStart(2, '0')).join(':')}`;

describe.skipIf(NETNS_SKIP)('a large import while machines boot', () => {
  const dir = tempDir();
  const dataDir = join(dir.path, 'var');
  let net: TestNet;
  let livery: NsLivery;
  let clientMac: string;
  let token: string;

  const curl = (args: string[]) => run(net, 'curl', ['-sS', '--max-time', '60', '-H', `authorization: Bearer ${token}`, ...args]);
  const importCsv = async (name: string, csv: string) => {
    const file = join(dir.path, name);
    writeFileSync(file, csv);
    const out = await curl(['-w', '\n%{http_code}', '-H', 'content-type: text/csv', '--data-binary', `@${file}`, `${BASE}/v1/machines/import`]);
    const [body, status] = [out.slice(0, out.lastIndexOf('\n')), Number(out.slice(out.lastIndexOf('\n') + 1))];
    return { status, body: JSON.parse(body) };
  };
  const machineCount = () => {
    const cmdb = openCmdb(databasePath(dataDir));
    try {
      return cmdb.machines.count();
    } finally {
      cmdb.close();
    }
  };

  /** One DHCP exchange (DISCOVER, then REQUEST of the offer): ms until the ACK, or null if none came. */
  async function dhcpExchange(xid: number): Promise<number | null> {
    const spec: ProbeSpec = { send: [{ mac: clientMac, type: 'DISCOVER', xid }], listenMs: ACK_WITHIN_MS, answerOffers: 'REQUEST' };
    const started = Date.now();
    let ackedAt: number | null = null;
    await run(net, process.execPath, ['--import', 'tsx', PROBE, JSON.stringify(spec)], (line) => {
      const reply = JSON.parse(line) as { xid: number; options: { messageType?: number } };
      if (reply.xid === xid && reply.options.messageType === 5) ackedAt ??= Date.now();
    });
    return ackedAt === null ? null : ackedAt - started;
  }

  beforeAll(async () => {
    net = createTestNet({ serverAddress: `${SERVER}/24`, clientAddresses: ['10.79.0.2/24'] });
    clientMac = net.exec(net.client, 'cat', [`/sys/class/net/${net.clientIf}/address`]).trim();
    const cmdb = openCmdb(databasePath(dataDir));
    cmdb.subnets.create({ name: 'lan', cidr: '10.79.0.0/24', gateway: SERVER, pools: [{ start: '10.79.0.100', end: '10.79.0.150' }], policy: 'discover' });
    cmdb.machines.create({ macs: [clientMac], hostname: 'booter', ip: '10.79.0.10' });
    token = cmdb.tokens.create('bulk', 'operator').token;
    cmdb.close();
    livery = await startLiveryInNs(net, dir.path, {
      dataDir,
      // The one machine asks for its script back to back, far above a real machine's rate: the
      // machine door's limits (not what this test is about) would soon answer 429.
      http: { listen: `${SERVER}:8080`, machineDoor: { perAddressPerSecond: 1000, perMacPerSecond: 1000 } },
      tftp: { listen: `${SERVER}:69` },
      dhcp: { enabled: true, mode: 'full', interface: net.serverIf, address: SERVER, rateLimit: { perMacPerSecond: 50 } },
    });
  }, 60_000);

  afterAll(async () => {
    await livery?.stop();
    net?.remove();
    dir.cleanup();
  });

  it('keeps DHCP ACKing and boot scripts answering while 100,000 rows are imported', async () => {
    const csv = 'mac,hostname,site,labels\n' + Array.from({ length: ROWS }, (_, i) => `${macOf('0a:01:00', i)},bulk-${i},ams,rack=r${i % 40}`).join('\n') + '\n';
    let importing = true;
    const imported = importCsv('bulk.csv', csv).finally(() => (importing = false));
    const acks: (number | null)[] = [];
    const scripts: { status: number; seconds: number; path: string }[] = [];
    const exchanges = (async () => {
      for (let xid = 1; importing || acks.length === 0; xid++) acks.push(await dhcpExchange(0x4d00 + xid));
    })();
    const bootRequests = (async () => {
      for (let i = 0; importing || scripts.length < 2; i++) {
        const path = i % 2 ? '/healthz' : `/boot/${clientMac}.ipxe`;
        const [status, seconds] = (await curl(['-o', '/dev/null', '-w', '%{http_code} %{time_total}', `${BASE}${path}`])).split(' ');
        scripts.push({ status: Number(status), seconds: Number(seconds), path });
      }
    })();
    const result = await imported;
    await Promise.all([exchanges, bootRequests]);

    expect(result).toEqual({ status: 200, body: { created: ROWS, updated: 0, unchanged: 0 } });
    expect(acks.length).toBeGreaterThan(0);
    expect(acks.filter((ms) => ms === null), `ACK times (ms): ${acks.join(', ')}`).toEqual([]);
    expect(scripts.filter((s) => s.status !== 200 || s.seconds > SCRIPT_WITHIN_S), JSON.stringify(scripts)).toEqual([]);
    expect(livery.output()).not.toMatch(/database is locked|commit failed/i);
    expect(machineCount()).toBe(ROWS + 1);
  }, 240_000);

  it('refuses the whole import for one bad row at its end: nothing is written', async () => {
    const before = machineCount();
    const rows = Array.from({ length: 20_000 }, (_, i) => `${macOf('0a:02:00', i)},late-${i}`);
    const { status, body } = await importCsv('bad.csv', `mac,hostname\n${rows.join('\n')}\n0a:02:ff:00:00:01,bulk-7\n`);
    expect(status).toBe(400);
    expect(body.problems).toEqual([{ line: 20_002, error: 'hostname: hostname bulk-7 is already taken' }]);
    expect(machineCount()).toBe(before);
  }, 120_000);
});
