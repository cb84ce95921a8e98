/**
 * A recording DHCP relay for crash tests, run inside a test network namespace:
 *   ip netns exec NS node --import tsx test/helpers/dhcp-recorder.ts '<json RecorderSpec>'
 * It binds <relay>:67 and walks each MAC through DISCOVER → OFFER → REQUEST → ACK, relayed
 * (giaddr = relay) to the server. Each ACK is appended to `out` as "<ms> <mac> <ip>" the
 * moment it arrives, so the file is the client's proof of what the server promised even if
 * the server dies a millisecond later. A lost reply (the server was killed) or a NAK starts
 * that MAC over from DISCOVER. Bounded: it stops after `durationMs`, or on SIGTERM, and
 * prints one JSON summary line.
 *
 * Commands on stdin, one per line. `hold`: fill the window with new MACs, start no more, and
 * keep back the REQUEST of every MAC offered from then on; once every MAC in flight waits so
 * (or after HOLD_LIMIT_MS) print {"held": n}. `release`: send those REQUESTs all at once and
 * print {"released": n}. A test so knows that a burst of REQUESTs, and nothing else from the
 * recorder, reaches the server at a moment of its choosing.
 */
import { appendFileSync } from 'node:fs';
import { createSocket } from 'node:dgram';
import { createInterface } from 'node:readline';
import { decodeDhcp, encodeDhcp, macToChaddr } from '../../src/dhcp/wire/codec.js';
import { DhcpMessageType } from '../../src/dhcp/wire/options.js';

/** At most this many MACs, each waiting for a reply at once. */
const COUNT = 20_000;
const WINDOW = 32;
/** How long to wait for an OFFER or ACK before starting that MAC over. */
const REPLY_TIMEOUT_MS = 800;

export interface RecorderSpec {
  relay: string;
  server: string;
  /** MACs are `${macPrefix}:xx:xx`, numbered from 0 (macPrefix has four octets). */
  macPrefix: string;
  /** New MACs started per second, at most WINDOW in flight. */
  perSecond: number;
  durationMs: number;
  out: string;
}

export interface RecorderSummary {
  started: number;
  acked: number;
  naks: number;
  timeouts: number;
}

interface Pending {
  mac: string;
  xid: number;
  /** What we wait for: an OFFER (after DISCOVER), an ACK/NAK (after REQUEST), or a release. */
  awaiting: 'offer' | 'ack' | 'release';
  deadline: number;
  offered?: string;
}

/** Off, filling the window and holding REQUESTs back, or held (reported, waiting for release). */
type Hold = { phase: 'off' } | { phase: 'filling'; since: number } | { phase: 'held' };

/** A bound, not an expectation: OFFERs come from memory at once, but a loaded machine can stall the server for seconds. */
const HOLD_LIMIT_MS = 15_000;

const macOf = (prefix: string, i: number) => `${prefix}:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;

async function main(spec: RecorderSpec): Promise<void> {
  const socket = createSocket({ type: 'udp4', reuseAddr: true });
  await new Promise<void>((r) => socket.bind(67, spec.relay, () => r()));
  const summary: RecorderSummary = { started: 0, acked: 0, naks: 0, timeouts: 0 };
  const inFlight = new Map<number, Pending>();
  let nextXid = (process.pid << 12) >>> 0;
  // Widened on purpose: the stdin handler changes it between loop turns.
  let hold = { phase: 'off' } as Hold;
  const say = (line: Record<string, number>) => process.stdout.write(JSON.stringify(line) + '\n');

  const send = (p: Pending, type: 'DISCOVER' | 'REQUEST') => {
    p.awaiting = type === 'DISCOVER' ? 'offer' : 'ack';
    p.deadline = Date.now() + REPLY_TIMEOUT_MS;
    const options =
      type === 'DISCOVER' ? { messageType: DhcpMessageType.DISCOVER } : { messageType: DhcpMessageType.REQUEST, serverId: spec.server, requestedIp: p.offered };
    socket.send(encodeDhcp({ op: 1, xid: p.xid, chaddr: macToChaddr(p.mac), giaddr: spec.relay, hops: 1, options }), 67, spec.server);
  };
  const discover = (mac: string) => {
    const p: Pending = { mac, xid: nextXid++ >>> 0, awaiting: 'offer', deadline: 0 };
    inFlight.set(p.xid, p);
    send(p, 'DISCOVER');
  };
  const begin = () => discover(macOf(spec.macPrefix, summary.started++));
  const restart = (p: Pending) => {
    inFlight.delete(p.xid);
    discover(p.mac);
  };
  const waitingForRelease = () => [...inFlight.values()].filter((p) => p.awaiting === 'release');

  socket.on('message', (buf) => {
    const d = decodeDhcp(buf);
    if (!d.ok) return;
    const p = inFlight.get(d.packet.xid);
    if (!p || d.packet.mac !== p.mac) return;
    const type = d.packet.options.messageType;
    if (p.awaiting === 'offer' && type === DhcpMessageType.OFFER) {
      p.offered = d.packet.yiaddr;
      if (hold.phase === 'off') return send(p, 'REQUEST');
      p.awaiting = 'release';
      p.deadline = Infinity;
      return;
    }
    if (p.awaiting !== 'ack') return;
    if (type === DhcpMessageType.ACK) {
      appendFileSync(spec.out, `${Date.now()} ${p.mac} ${d.packet.yiaddr}\n`);
      summary.acked++;
      inFlight.delete(p.xid);
    } else if (type === DhcpMessageType.NAK) {
      summary.naks++;
      restart(p);
    }
  });

  createInterface({ input: process.stdin }).on('line', (command) => {
    if (command === 'hold' && hold.phase === 'off') {
      hold = { phase: 'filling', since: Date.now() };
      while (inFlight.size < WINDOW && summary.started < COUNT) begin();
    } else if (command === 'release' && hold.phase !== 'off') {
      hold = { phase: 'off' };
      const held = waitingForRelease();
      for (const p of held) send(p, 'REQUEST');
      say({ released: held.length });
    }
  });

  const startedAt = Date.now();
  let credit = 0;
  let last = startedAt;
  let stopping = false;
  process.once('SIGTERM', () => (stopping = true));
  while (!stopping && Date.now() - startedAt < spec.durationMs && (summary.started < COUNT || inFlight.size > 0)) {
    const now = Date.now();
    for (const p of [...inFlight.values()]) {
      if (p.deadline > now) continue;
      summary.timeouts++;
      restart(p);
    }
    if (hold.phase === 'filling') {
      const held = waitingForRelease().length;
      if (held === inFlight.size || now - hold.since > HOLD_LIMIT_MS) {
        hold = { phase: 'held' };
        say({ held });
      }
    }
    credit = Math.min(credit + ((now - last) / 1000) * spec.perSecond, WINDOW);
    last = now;
    while (hold.phase === 'off' && credit >= 1 && inFlight.size < WINDOW && summary.started < COUNT) {
      credit -= 1;
      begin();
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  socket.close();
  say({ ...summary });
  process.exit(0);
}

if (process.argv[2]) await main(JSON.parse(process.argv[2]) as RecorderSpec);
