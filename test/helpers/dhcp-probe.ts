/**
 * A scriptable DHCP client for tests, run inside a test network namespace:
 *   ip netns exec NS node --import tsx test/helpers/dhcp-probe.ts '<json>'
 * It sends the given packets (built with livery's codec; the codec itself is checked against
 * real dhclient, udhcpc, PXE ROM and iPXE captures) and prints every reply it hears as one
 * JSON line. Bounded: it exits after `listenMs`.
 */
import { createSocket } from 'node:dgram';
import { decodeDhcp, encodeDhcp, macToChaddr, type DhcpPacketInit } from '../../src/dhcp/wire/codec.js';
import { DhcpMessageType, type DhcpOptions } from '../../src/dhcp/wire/options.js';

export interface ProbeSend {
  mac: string;
  type: keyof typeof DhcpMessageType;
  xid?: number;
  ciaddr?: string;
  giaddr?: string;
  options?: Record<string, unknown>;
  /** Where to send (default 255.255.255.255:67). */
  to?: string;
  port?: number;
  /** Wait this long before sending (ms), to sequence packets. */
  afterMs?: number;
}

export interface ProbeSpec {
  /** Local address and port to bind (default 0.0.0.0:68; a relay binds its address:67). */
  bind?: string;
  bindPort?: number;
  send: ProbeSend[];
  listenMs: number;
  /** Answer each OFFER heard as a client would next: REQUEST it, or DECLINE it (a DECLINE storm). */
  answerOffers?: 'REQUEST' | 'DECLINE';
}

const toBytes = (v: unknown) => (typeof v === 'string' && v.startsWith('hex:') ? Buffer.from(v.slice(4), 'hex') : v);

async function main(spec: ProbeSpec): Promise<void> {
  const socket = createSocket({ type: 'udp4', reuseAddr: true });
  await new Promise<void>((r) => socket.bind(spec.bindPort ?? 68, spec.bind ?? '0.0.0.0', () => r()));
  socket.setBroadcast(true);
  socket.on('message', (buf, rinfo) => {
    const d = decodeDhcp(buf);
    if (!d.ok) return;
    const p = d.packet;
    if (p.op !== 2) return;
    if (spec.answerOffers && p.options.messageType === DhcpMessageType.OFFER && p.options.serverId) {
      const answer = { requestedIp: p.yiaddr, serverId: p.options.serverId };
      socket.send(encodeDhcp({ op: 1, xid: p.xid, chaddr: macToChaddr(p.mac!), options: { ...answer, messageType: DhcpMessageType[spec.answerOffers] } }), 67, '255.255.255.255');
    }
    const opts: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(p.options)) opts[k] = v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v;
    process.stdout.write(
      JSON.stringify({ from: `${rinfo.address}:${rinfo.port}`, xid: p.xid, mac: p.mac, yiaddr: p.yiaddr, siaddr: p.siaddr, giaddr: p.giaddr, file: p.file, options: opts }) + '\n',
    );
  });
  for (const s of spec.send) {
    if (s.afterMs) await new Promise((r) => setTimeout(r, s.afterMs));
    const options = Object.fromEntries(Object.entries(s.options ?? {}).map(([k, v]) => [k, toBytes(v)])) as DhcpOptions;
    const packet: DhcpPacketInit = {
      op: 1,
      xid: s.xid ?? Math.floor(Math.random() * 0xffffffff),
      chaddr: macToChaddr(s.mac),
      ciaddr: s.ciaddr ?? '0.0.0.0',
      giaddr: s.giaddr ?? '0.0.0.0',
      hops: s.giaddr ? 1 : 0,
      options: { ...options, messageType: DhcpMessageType[s.type] },
    };
    socket.send(encodeDhcp(packet), s.port ?? 67, s.to ?? '255.255.255.255');
  }
  await new Promise((r) => setTimeout(r, spec.listenMs));
  socket.close();
}

if (process.argv[2]) await main(JSON.parse(process.argv[2]) as ProbeSpec);
