/**
 * Sends a bounded, paced stream of random, mutated and truncated DHCP and TFTP packets at a
 * server, from inside a test namespace:
 *   ip netns exec NS node --import tsx test/helpers/garbage.ts '{"server":"10.x.0.1","count":2000,"perSecond":1000}'
 * Prints one JSON line: how many it sent and how many of them livery's own decoders reject,
 * so the test can check that the server counted every bad packet.
 */
import { createSocket } from 'node:dgram';
import { randomBytes, randomInt } from 'node:crypto';
import { decodeDhcp, encodeDhcp, macToChaddr } from '../../src/dhcp/wire/codec.js';
import { decodePacket as decodeTftp } from '../../src/tftp/codec.js';

const spec = JSON.parse(process.argv[2]!) as { server: string; count: number; perSecond: number; from?: string };

const validDhcp = encodeDhcp({ op: 1, xid: 1, chaddr: macToChaddr('52:54:00:ee:00:01'), options: { messageType: 1, clientArch: [0], vendorClassId: 'PXEClient' } });
const validRrq = Buffer.from('\x00\x01undionly.kpxe\x00octet\x00blksize\x001468\x00tsize\x000\x00', 'binary');

function mutate(seed: Buffer): Buffer {
  switch (randomInt(4)) {
    case 0:
      return randomBytes(randomInt(1, 600));
    case 1: {
      const b = Buffer.from(seed);
      for (let i = randomInt(1, 8); i > 0; i--) b[randomInt(b.length)] = randomInt(256);
      return b;
    }
    case 2:
      return seed.subarray(0, randomInt(seed.length));
    default:
      return Buffer.concat([seed, randomBytes(randomInt(1, 64))]);
  }
}

const socket = createSocket('udp4');
await new Promise<void>((r) => socket.bind(0, spec.from, () => r()));
const sent = { dhcp: 0, dhcpBad: 0, tftp: 0, tftpBad: 0 };
const started = Date.now();
for (let i = 0; i < spec.count; i++) {
  const dhcp = i % 2 === 0;
  const packet = mutate(dhcp ? validDhcp : validRrq);
  if (dhcp) {
    sent.dhcp++;
    if (!decodeDhcp(packet).ok) sent.dhcpBad++;
  } else {
    sent.tftp++;
    if (!decodeTftp(packet).ok) sent.tftpBad++;
  }
  socket.send(packet, dhcp ? 67 : 69, spec.server);
  // Pace the stream so the kernel does not drop packets before livery sees them.
  const due = started + ((i + 1) * 1000) / spec.perSecond;
  const wait = due - Date.now();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
}
await new Promise((r) => setTimeout(r, 200));
socket.close();
console.log(JSON.stringify(sent));
