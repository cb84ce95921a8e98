/**
 * Issue #28 §3 (a): two livery nodes answer DHCP on one segment from one PostgreSQL CMDB; a
 * boot storm runs through the pair and one node is killed with SIGKILL in the middle of it.
 * Every machine must still boot (those caught mid-exchange with the dead node start over as
 * PXE ROMs do, and the live node takes over the dead one's clients once its heartbeat is
 * older than node.deadAfterSeconds), and no address may be leased twice.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPairStormRig, type PairStormRig, type StormNode } from '../../bench/storm-pair-rig.js';
import type { StormReport } from '../../src/lab/storm/report.js';
import { stormMac } from '../../src/lab/storm/identity.js';
import { NETNS_SKIP } from '../helpers/netns.js';
import { POSTGRES_SKIP } from '../helpers/postgres.js';
import { tempDir } from '../helpers/tmp.js';

const MACHINES = 200;
// Small artifacts: what is under test is who answers and what gets leased, not bytes moved.
const SIZES = { kernel: 48 * 1024, initrd: 160 * 1024, rootfs: 512 * 1024 };
/**
 * The worst case after the kill, a machine fetching its loader from the dead node: 4 TFTP
 * tries (1+2+4+8 s) three times over, then the ROM gives up and the machine boots again from
 * DHCP, which the live node answers by then. Three boots leave room for one more such loss.
 */
const STORM = { bootAttempts: 3, tftpTries: 4, deadlineS: 360 };
const SKIP = NETNS_SKIP ?? POSTGRES_SKIP;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.skipIf(SKIP)(SKIP ? `two-node storm test skipped: ${SKIP}` : 'two livery nodes on one segment, one killed with SIGKILL in the middle of a boot storm', () => {
  const dir = tempDir('livery-pair-storm-');
  let rig: PairStormRig;
  let a: StormNode;
  let b: StormNode;
  let report: StormReport;
  let killedAt: number;

  beforeAll(async () => {
    rig = await startPairStormRig(dir.path, { nodes: 2, machines: MACHINES, sizes: SIZES });
    [a, b] = rig.nodes as [StormNode, StormNode];
    let stormEnded = false;
    // Which machines each node has ACKed so far, as the machines see it.
    const served = new Map<string, Set<string>>(rig.nodes.map((n) => [n.address, new Set()]));
    const storm = rig.storm({ clients: MACHINES, ...STORM, onAck: (ack) => served.get(ack.server)?.add(ack.mac) }).finally(() => (stormEnded = true));
    // "In the middle": once a third of the machines have an ACK, and both nodes have given some.
    const acked = () => new Set([...served.values()].flatMap((macs) => [...macs])).size;
    const middle = () => acked() >= MACHINES / 3 && [...served.values()].every((macs) => macs.size > 0);
    for (const deadline = Date.now() + 120_000; !middle(); await sleep(20)) {
      if (stormEnded || Date.now() > deadline) {
        const counts = [...served].map(([server, macs]) => `${server}: ${macs.size}`).join(', ');
        throw new Error(`the storm ${stormEnded ? 'ended' : 'went on for 120 s'} before a third of the machines had an ACK from the two nodes (machines ACKed by each: ${counts})`);
      }
    }
    killedAt = Date.now();
    await a.kill9();
    report = await storm;
  }, 300_000 + (STORM.deadlineS + 60) * 1000);

  afterAll(async () => {
    await rig?.close();
    dir.cleanup();
  }, 120_000);

  /** Every ACK any machine took, with the machine's MAC and the wall-clock time it arrived. */
  const acks = () => report.machines.flatMap((m) => m.acks.map((ack) => ({ mac: m.mac, ...ack, at: report.startedAt + ack.atMs })));

  it(`boots all ${MACHINES} machines into the published image, those caught with the dead node starting over`, () => {
    // Why machines failed: what each went through, and what the nodes said about leases other nodes took.
    const failed = report.machines.filter((m) => !m.ok).map((m) => `${m.mac}: ${JSON.stringify({ acks: m.acks, retries: m.retries, failure: m.failure })}`);
    const taken = rig.nodes.flatMap((node) => node.output().split('\n').filter((line) => line.includes('another node leased')).map((line) => `node ${node.name}: ${line}`));
    expect(report.errors, [...failed, ...taken.slice(0, 40)].join('\n')).toEqual([]);
    expect(report).toMatchObject({ clients: MACHINES, ok: MACHINES, failures: 0 });
    expect(report.machines.map((m) => m.mac)).toEqual(Array.from({ length: MACHINES }, (_, i) => stormMac(i)));
    for (const m of report.machines) expect(m).toMatchObject({ ok: true, imageId: rig.imageId });
  });

  it('had both nodes serving before the kill, and the survivor finishing machines that had begun with the dead one', () => {
    const before = new Set(acks().filter((ack) => ack.at < killedAt).map((ack) => ack.server));
    expect([...before].sort()).toEqual([a.address, b.address]);
    // A dead node answers no one (1 s of slack for an ACK already on the wire).
    expect(acks().filter((ack) => ack.server === a.address && ack.at > killedAt + 1000)).toEqual([]);
    const takenOver = report.machines.filter((m) => m.acks.some((ack) => ack.server === a.address) && m.acks.at(-1)?.server === b.address);
    expect(takenOver.length).toBeGreaterThan(0);
  });

  it('leased no address twice: every ACK a machine took is a bound lease row with its MAC and address, no address was ACKed to two machines', () => {
    const leases = rig.cmdb.leases.list({ state: 'bound' });
    const byIp = new Map(leases.map((l) => [l.ip, l.mac]));
    const leasesOf = new Map<string, string[]>();
    for (const l of leases) leasesOf.set(l.mac, [...(leasesOf.get(l.mac) ?? []), l.ip]);
    const macsOfIp = new Map<string, Set<string>>();
    for (const ack of acks()) macsOfIp.set(ack.ip, (macsOfIp.get(ack.ip) ?? new Set()).add(ack.mac));
    // What each node logged about an address, and every ACK each machine involved took, to tell how it went wrong.
    const story = (ip: string, macs: Iterable<string>) =>
      [
        ...[...new Set(macs)].map((mac) => `${mac} took ${acks().filter((ack) => ack.mac === mac).map((ack) => `${ack.ip} from ${ack.server} at ${Math.round(ack.atMs)} ms`).join(', ')}; leases ${leasesOf.get(mac)?.join(', ') ?? 'none'}`),
        ...rig.nodes.flatMap((node) => node.output().split('\n').filter((line) => line.includes(`"${ip}"`)).map((line) => `node ${node.name}: ${line}`)),
      ].join('\n');
    const unleased = acks()
      .filter((ack) => byIp.get(ack.ip) !== ack.mac)
      .map((ack) => `ACK of ${ack.ip} to ${ack.mac} by ${ack.server}, but the lease row of ${ack.ip} is ${byIp.get(ack.ip) ?? 'missing'}:\n${story(ack.ip, [ack.mac, ...(byIp.has(ack.ip) ? [byIp.get(ack.ip)!] : [])])}`);
    const shared = [...macsOfIp].filter(([, macs]) => macs.size > 1).map(([ip, macs]) => `${ip} ACKed to ${[...macs].join(' and ')}:\n${story(ip, macs)}`);
    expect([...unleased, ...shared]).toEqual([]);
    for (const m of report.machines) expect(leasesOf.get(m.mac), m.mac).toEqual([m.ip]);
  });
});
