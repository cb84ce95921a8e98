/**
 * A bounded DHCP DISCOVER flood from inside a test namespace:
 *   ip netns exec NS node --import tsx test/helpers/flood.ts '{"server":"10.x.0.1","count":3000,"perSecond":1500,"macs":"random"|"one"}'
 * Prints one JSON line: packets sent and the distinct addresses offered to the flood.
 */
import { createSocket } from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { decodeDhcp, encodeDhcp } from '../../src/dhcp/wire/codec.js';

const spec = JSON.parse(process.argv[2]!) as { server: string; count: number; perSecond: number; macs: 'random' | 'one' };
const socket = createSocket({ type: 'udp4', reuseAddr: true });
await new Promise<void>((r) => socket.bind(68, '0.0.0.0', () => r()));
socket.setBroadcast(true);
const offered = new Set<string>();
let replies = 0;
socket.on('message', (buf) => {
  const d = decodeDhcp(buf);
  if (d.ok && d.packet.op === 2 && d.packet.options.messageType === 2 && d.packet.mac?.startsWith('02:')) {
    replies++;
    offered.add(d.packet.yiaddr);
  }
});
const one = Uint8Array.from([2, 0xee, 0, 0, 0, 1]);
const started = Date.now();
for (let i = 0; i < spec.count; i++) {
  const mac = spec.macs === 'one' ? one : Uint8Array.from([2, ...randomBytes(5)]);
  const chaddr = new Uint8Array(16);
  chaddr.set(mac);
  socket.send(encodeDhcp({ op: 1, xid: i + 1, chaddr, options: { messageType: 1 } }), 67, '255.255.255.255');
  const wait = started + ((i + 1) * 1000) / spec.perSecond - Date.now();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
}
await new Promise((r) => setTimeout(r, 500));
socket.close();
console.log(JSON.stringify({ sent: spec.count, replies, offered: offered.size }));
