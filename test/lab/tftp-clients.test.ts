import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TftpClients } from '../../src/lab/storm/tftp-clients.js';
import { decodePacket, encodePacket } from '../../src/tftp/codec.js';

/**
 * A loopback TFTP server that knows three files: `hello` (5 bytes, one block after the OACK),
 * `missing` (an ERROR) and `silent` (never answered).
 */
async function fakeServer(): Promise<{ socket: Socket; port: number }> {
  const socket = createSocket('udp4');
  socket.on('message', (msg, from) => {
    const d = decodePacket(msg);
    if (!d.ok || d.packet.op !== 'rrq') return;
    const { filename } = d.packet;
    if (filename === 'silent') return;
    if (filename === 'missing') return void socket.send(encodePacket({ op: 'error', code: 1, message: 'file not found' }), from.port, from.address);
    // A transfer of its own, from a port of its own, as RFC 1350 has it.
    const transfer = createSocket('udp4');
    transfer.on('message', (ack) => {
      const a = decodePacket(ack);
      if (a.ok && a.packet.op === 'ack' && a.packet.block === 0) transfer.send(encodePacket({ op: 'data', block: 1, data: Buffer.from('hello') }), from.port, from.address);
      if (a.ok && a.packet.op === 'ack' && a.packet.block === 1) transfer.close();
    });
    transfer.bind(0, '127.0.0.1', () =>
      transfer.send(encodePacket({ op: 'oack', options: [{ name: 'blksize', value: '512' }, { name: 'tsize', value: '5' }] }), from.port, from.address),
    );
  });
  socket.bind(0, '127.0.0.1');
  await once(socket, 'listening');
  return { socket, port: socket.address().port };
}

describe('TFTP clients on their own thread', () => {
  let server: Awaited<ReturnType<typeof fakeServer>>;
  let clients: TftpClients;
  beforeAll(async () => {
    server = await fakeServer();
    clients = TftpClients.open();
  });
  afterAll(async () => {
    await clients.close();
    server.socket.close();
  });
  const get = (file: string, signal = AbortSignal.timeout(10_000)) =>
    clients.get({ server: '127.0.0.1', port: server.port, localAddress: '127.0.0.1', file, blksize: 1468, waitsMs: [2000, 2000], signal });

  it('fetch a file and say what the OACK stated', async () => {
    expect(await get('hello')).toEqual({ bytes: 5, tsize: 5, blksize: 512, retransmissions: 0 });
  });

  it("fail with the server's words when it answers ERROR", async () => {
    await expect(get('missing')).rejects.toThrow('server error 1: file not found');
  });

  it('stop at an abort, with its reason, and go on serving the next transfers', async () => {
    const stop = new AbortController();
    const silent = get('silent', stop.signal);
    setTimeout(() => stop.abort(new Error('reset by its BMC')), 50);
    await expect(silent).rejects.toThrow('reset by its BMC');
    const [a, b] = await Promise.all([get('hello'), get('hello')]);
    expect([a.bytes, b.bytes]).toEqual([5, 5]);
  });
});
