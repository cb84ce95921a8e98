/**
 * What a DHCP server did, read from a packet capture of its interface (tcpdump -w) rather than
 * from the load generator: perfdhcp reports only min/avg/max delays, and a reply it was too busy
 * to read counts against the server. At the server's interface every server is seen alike: when
 * each request arrived, when (and whether) its reply left.
 */
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { decodeDhcp } from '../../src/dhcp/wire/codec.js';
import { DhcpMessageType } from '../../src/dhcp/wire/options.js';

/** Bytes kept per packet: Ethernet, IPv4 and UDP headers and a whole BOOTP message with its options. */
const SNAPLEN = 600;
/** Kernel buffer for the capture, KiB: a burst of replies must not outrun tcpdump. */
const CAPTURE_BUFFER_KIB = 32_768;

export interface Capture {
  /** Stops tcpdump; resolves to the packets the kernel dropped before tcpdump read them. */
  stop(): Promise<number>;
}

/** Starts tcpdump on `iface` in `host`, writing DHCP server-port traffic to `file`. */
export async function startCapture(host: { spawn(cmd: string, args: string[]): ChildProcess }, iface: string, file: string): Promise<Capture> {
  const proc = host.spawn('tcpdump', ['-i', iface, '-n', '-s', String(SNAPLEN), '-B', String(CAPTURE_BUFFER_KIB), '-w', file, 'udp port 67']);
  let stderr = '';
  proc.stderr!.on('data', (d) => (stderr += d));
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  // tcpdump says "listening on" once its socket is open; before that, packets are not seen.
  const deadline = Date.now() + 10_000;
  while (!stderr.includes('listening on')) {
    if (proc.exitCode !== null || Date.now() > deadline) throw new Error(`tcpdump did not start capturing on ${iface}: ${stderr.trim()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return {
    async stop() {
      proc.kill('SIGINT');
      await exited;
      const dropped = /(\d+) packets? dropped by kernel/.exec(stderr);
      if (!dropped) throw new Error(`tcpdump printed no packet counts: ${stderr.trim()}`);
      return Number(dropped[1]);
    },
  };
}

/** One DHCP message seen at the server's interface. */
export interface SeenMessage {
  /** Seconds since the epoch, microsecond resolution. */
  at: number;
  fromServer: boolean;
  type: number;
  xid: number;
  mac: string;
}

const PCAP_MAGIC_US = 0xa1b2c3d4;
const LINKTYPE_ETHERNET = 1;
const ETHERTYPE_IPV4 = 0x0800;
const IPPROTO_UDP = 17;

/** The DHCP messages in a classic pcap file (Ethernet, microsecond stamps, as tcpdump -w writes), in capture order. */
export function readDhcpCapture(file: string, serverAddress: string): SeenMessage[] {
  const b = readFileSync(file);
  if (b.length < 24 || b.readUInt32LE(0) !== PCAP_MAGIC_US) throw new Error(`${file}: not a little-endian microsecond pcap file`);
  if (b.readUInt32LE(20) !== LINKTYPE_ETHERNET) throw new Error(`${file}: link type ${b.readUInt32LE(20)}, expected Ethernet`);
  const server = serverAddress.split('.').map(Number);
  const seen: SeenMessage[] = [];
  for (let at = 24; at + 16 <= b.length; ) {
    const stamp = b.readUInt32LE(at) + b.readUInt32LE(at + 4) / 1e6;
    const captured = b.readUInt32LE(at + 8);
    const frame = b.subarray(at + 16, at + 16 + captured);
    at += 16 + captured;
    if (frame.length < 14 + 20 + 8 || frame.readUInt16BE(12) !== ETHERTYPE_IPV4) continue;
    const ip = frame.subarray(14);
    const headerLength = (ip[0]! & 0x0f) * 4;
    if (ip[9] !== IPPROTO_UDP) continue;
    const decoded = decodeDhcp(ip.subarray(headerLength + 8));
    if (!decoded.ok || decoded.packet.mac === null || decoded.packet.options.messageType === undefined) continue;
    const fromServer = server.every((octet, i) => ip[12 + i] === octet);
    seen.push({ at: stamp, fromServer, type: decoded.packet.options.messageType, xid: decoded.packet.xid, mac: decoded.packet.mac });
  }
  return seen;
}

/** How a server answered one kind of request, as its interface saw it. */
export interface Answering {
  requests: number;
  /** Requests whose reply left within the window. */
  answered: number;
  /** Seconds from each answered request's arrival to its reply's departure, ascending. */
  latencies: number[];
}

/**
 * Pairs each `request` message arriving with the first `reply` leaving for the same client and
 * transaction within `windowSeconds`. A retransmitted request (same client, same xid) is a request
 * of its own, timed from its own arrival.
 */
export function answering(seen: SeenMessage[], request: DhcpMessageType, reply: DhcpMessageType, windowSeconds: number): Answering {
  const waiting = new Map<string, number[]>();
  const latencies: number[] = [];
  let requests = 0;
  for (const m of seen) {
    const key = `${m.mac}/${m.xid}`;
    if (!m.fromServer && m.type === request) {
      requests++;
      const list = waiting.get(key);
      if (list) list.push(m.at);
      else waiting.set(key, [m.at]);
    } else if (m.fromServer && m.type === reply) {
      const list = waiting.get(key);
      if (!list) continue;
      for (const arrived of list) if (m.at - arrived <= windowSeconds) latencies.push(m.at - arrived);
      waiting.delete(key);
    }
  }
  latencies.sort((a, b) => a - b);
  return { requests, answered: latencies.length, latencies };
}
