/**
 * The batched UDP socket under the DHCP server (native/datagram.c), on 127.0.0.1 only: batches
 * arrive whole and in order with their senders, sends report failures instead of throwing, and
 * every way of opening it wrong says which step failed. Broadcast and interface confinement are
 * exercised inside namespaces by the DHCP server tests.
 */
import { createSocket, type Socket } from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { openDatagramSocket, type DatagramSocket } from '../../src/net/datagram.js';

const cleanups: (() => unknown)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});

async function nodeSocket(port = 0): Promise<Socket> {
  const s = createSocket('udp4');
  await new Promise<void>((resolve) => s.bind(port, '127.0.0.1', resolve));
  cleanups.push(() => s.close());
  return s;
}

function open(port: number, received: { data: Buffer; address: string; port: number }[]): DatagramSocket {
  const s = openDatagramSocket({ address: '127.0.0.1', port, ifindex: 0, receiveBufferBytes: 1 << 20 }, (data, address, from) =>
    received.push({ data: Buffer.from(data), address, port: from }),
  );
  cleanups.push(() => s.close());
  return s;
}

const freePort = async () => {
  const probe = createSocket('udp4');
  await new Promise<void>((resolve) => probe.bind(0, '127.0.0.1', resolve));
  const { port } = probe.address();
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
};

async function until(done: () => boolean, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`not done within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('datagram socket', () => {
  it('delivers a burst whole and in order, each datagram with its sender', async () => {
    const port = await freePort();
    const received: { data: Buffer; address: string; port: number }[] = [];
    open(port, received);
    const sender = await nodeSocket();
    // More than one recvmmsg batch (32), sizes from 0 to 1,000 bytes.
    const sent = Array.from({ length: 100 }, (_, i) => Buffer.alloc((i * 37) % 1001, i));
    for (const d of sent) sender.send(d, port, '127.0.0.1');
    await until(() => received.length === sent.length);
    expect(received.map((r) => r.data)).toEqual(sent);
    expect(new Set(received.map((r) => `${r.address}:${r.port}`))).toEqual(new Set([`127.0.0.1:${sender.address().port}`]));
  });

  it('sends to an address and port, and reports a datagram that cannot leave by its errno', async () => {
    const port = await freePort();
    const s = open(port, []);
    const peer = await nodeSocket();
    const got = new Promise<Buffer>((resolve) => peer.once('message', resolve));
    expect(s.send(Buffer.from('offer'), peer.address().port, '127.0.0.1')).toBeNull();
    expect((await got).toString()).toBe('offer');
    expect(s.send(Buffer.alloc(70_000), peer.address().port, '127.0.0.1')).toBe('EMSGSIZE');
  });

  it('refuses bad arguments and names the step and errno when the socket cannot be opened', async () => {
    const port = await freePort();
    const s = open(port, []);
    expect(() => s.send(Buffer.from('x'), 67, 'not-an-address')).toThrow(TypeError);
    expect(() => s.send(Buffer.from('x'), 67, '1.2.3.4.5')).toThrow(TypeError);
    expect(() => openDatagramSocket({ address: '127.0.0.1', port: 70_000, ifindex: 0, receiveBufferBytes: 0 }, () => undefined)).toThrow(TypeError);
    const taken = await nodeSocket(); // Bound without SO_REUSEADDR, so nobody may share its port.
    expect(() => openDatagramSocket({ address: '127.0.0.1', port: taken.address().port, ifindex: 0, receiveBufferBytes: 0 }, () => undefined)).toThrow(
      expect.objectContaining({ code: 'EADDRINUSE', message: expect.stringMatching(/^UDP socket 127\.0\.0\.1:\d+: bind: /) }),
    );
  });

  it('stops delivering once closed; closing twice is harmless and sending after close is an error', async () => {
    const port = await freePort();
    const received: { data: Buffer; address: string; port: number }[] = [];
    const s = open(port, received);
    s.close();
    s.close();
    const sender = await nodeSocket();
    sender.send(Buffer.from('late'), port, '127.0.0.1');
    await new Promise((r) => setTimeout(r, 100));
    expect(received).toEqual([]);
    expect(() => s.send(Buffer.from('x'), port, '127.0.0.1')).toThrow(/closed socket/);
  });
});
