/**
 * The TFTP server over real UDP on 127.0.0.1, driven packet by packet with a raw client: the
 * protocol corners no stock client will exercise on purpose.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import type { TftpOption } from '../../src/tftp/codec.js';
import { RawClient, startTestServer, type Received, type TestServer } from '../fixtures/tftp/harness.js';
import { tempDir } from '../helpers/tmp.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function server(options: Parameters<typeof startTestServer>[0] = {}): Promise<TestServer> {
  const s = await startTestServer(options);
  cleanups.push(() => s.stop());
  return s;
}

async function client(address?: string): Promise<RawClient> {
  const c = await RawClient.open(address);
  cleanups.push(() => c.close());
  return c;
}

const rrq = (filename: string, options: TftpOption[] = [], mode = 'octet') => ({ op: 'rrq' as const, filename, mode, options });

/** Reads a whole file with windowsize 1, the way a PXE ROM does; returns the bytes and what it saw. */
async function download(c: RawClient, port: number, filename: string, options: TftpOption[] = []): Promise<{ data: Buffer; first: Received; packets: Received[] }> {
  c.send(rrq(filename, options), port);
  const first = await c.receive();
  const packets: Received[] = [first];
  const chunks: Buffer[] = [];
  let blksize = 512;
  let current = first;
  if (current.packet.op === 'oack') {
    blksize = Number(current.packet.options.find((o) => o.name.toLowerCase() === 'blksize')?.value ?? 512);
    c.send({ op: 'ack', block: 0 }, current.from.port);
    current = await c.receive();
    packets.push(current);
  }
  for (let i = 0; i < 100_000; i++) {
    if (current.packet.op !== 'data') throw new Error(`expected DATA, got ${JSON.stringify(current.packet)}`);
    chunks.push(Buffer.from(current.packet.data));
    c.send({ op: 'ack', block: current.packet.block }, current.from.port);
    if (current.packet.data.length < blksize) return { data: Buffer.concat(chunks), first, packets };
    current = await c.receive();
    packets.push(current);
  }
  throw new Error('file did not end');
}

const pattern = (size: number) => Buffer.from(Array.from({ length: size }, (_, i) => (i * 31 + (i >> 9)) & 0xff));

describe('tftp server: reading', () => {
  it('serves a file with plain RFC 1350 (no options, so no OACK) and reports the transfer', async () => {
    const s = await server();
    writeFileSync(join(s.root, 'hello.bin'), pattern(1300));
    const c = await client();
    const { data, first } = await download(c, s.port, 'hello.bin');
    expect(first.packet).toMatchObject({ op: 'data', block: 1 });
    expect(first.from.port).not.toBe(s.port); // Each transfer has its own socket (TID).
    expect(data).toEqual(pattern(1300));
    const [record] = await s.transfersFinished(1);
    expect(record).toMatchObject({ client: { address: '127.0.0.1', port: c.port }, file: 'hello.bin', bytes: 1300, result: 'ok', blksize: 512, windowsize: 1, options: {} });
    expect(await s.metric('livery_tftp_transfers_total', { result: 'ok' })).toBe(1);
    expect(await s.metric('livery_tftp_data_bytes_sent_total')).toBe(1300);
    expect(await s.metric('livery_tftp_active_transfers')).toBe(0);
  });

  it('answers options with an OACK holding only what it accepts, tsize filled in and blksize clamped', async () => {
    const s = await server({ maxBlksize: 1024 });
    writeFileSync(join(s.root, 'kernel'), pattern(5000));
    const c = await client();
    const { data, first } = await download(c, s.port, '/kernel', [
      { name: 'tsize', value: '0' },
      { name: 'blksize', value: '1468' },
      { name: 'multicast', value: '' },
      { name: 'timeout', value: '300' },
    ]);
    expect(first.packet).toEqual({
      op: 'oack',
      options: [
        { name: 'tsize', value: '5000' },
        { name: 'blksize', value: '1024' },
      ],
    });
    expect(data).toEqual(pattern(5000));
    const [record] = await s.transfersFinished(1);
    expect(record).toMatchObject({ file: 'kernel', blksize: 1024, options: { tsize: '0', blksize: '1468', multicast: '', timeout: '300' } });
  });

  it('sends netascii with CR LF line ends and no tsize', async () => {
    const s = await server();
    writeFileSync(join(s.root, 'motd'), 'one\ntwo\rthree\n');
    const c = await client();
    c.send(rrq('motd', [{ name: 'tsize', value: '0' }], 'NetASCII'), s.port);
    const first = await c.receive();
    expect(first.packet).toMatchObject({ op: 'data', block: 1 }); // tsize refused, so nothing to acknowledge.
    expect(Buffer.from((first.packet as { data: Uint8Array }).data).toString('latin1')).toBe('one\r\ntwo\r\0three\r\n');
  });

  it('consults virtual files first, then the files map, then the root', async () => {
    const seen: { path: string; client: { address: string; port: number } }[] = [];
    const loaders = tempDir('livery-tftp-loaders-');
    cleanups.push(loaders.cleanup);
    writeFileSync(join(loaders.path, 'ipxe.efi'), 'the loader');
    const s = await server({
      files: { '/ipxe.efi': join(loaders.path, 'ipxe.efi'), 'shadowed.cfg': join(loaders.path, 'ipxe.efi') },
      resolveVirtual: async (path, from) => {
        seen.push({ path, client: from });
        return path === 'pxelinux.cfg/01-aa-bb-cc-dd-ee-ff' || path === 'shadowed.cfg' ? Buffer.from(`generated for ${from.address}`) : null;
      },
    });
    writeFileSync(join(s.root, 'plain.txt'), 'from the root');
    const c = await client();
    const virtual = await download(c, s.port, '/pxelinux.cfg/01-aa-bb-cc-dd-ee-ff', [{ name: 'tsize', value: '0' }]);
    expect(virtual.first.packet).toEqual({ op: 'oack', options: [{ name: 'tsize', value: String('generated for 127.0.0.1'.length) }] });
    expect(virtual.data.toString()).toBe('generated for 127.0.0.1');
    expect((await download(c, s.port, 'shadowed.cfg')).data.toString()).toBe('generated for 127.0.0.1');
    expect((await download(c, s.port, 'ipxe.efi')).data.toString()).toBe('the loader');
    expect((await download(c, s.port, 'plain.txt')).data.toString()).toBe('from the root');
    expect(seen[0]).toEqual({ path: 'pxelinux.cfg/01-aa-bb-cc-dd-ee-ff', client: { address: '127.0.0.1', port: c.port } });
  });

  it('serves the Debian iPXE loader through the files map without copying it', async () => {
    const s = await server({ files: { 'undionly.kpxe': '/usr/lib/ipxe/undionly.kpxe' }, maxBlksize: 1468 });
    const c = await client();
    const { data } = await download(c, s.port, '/undionly.kpxe', [{ name: 'blksize', value: '1468' }]);
    expect(data).toEqual(readFileSync('/usr/lib/ipxe/undionly.kpxe'));
  });
});

describe('tftp server: transfer IDs, duplicates and timeouts', () => {
  it('answers a stranger on a transfer port with ERROR 5 and carries on with the real client', async () => {
    const s = await server({ timeoutMs: 10_000 }); // No retransmission may blur what the intruder caused.
    writeFileSync(join(s.root, 'f'), pattern(2000));
    const c = await client();
    const intruder = await client();
    c.send(rrq('f'), s.port);
    const first = await c.receive();
    intruder.send({ op: 'ack', block: 1 }, first.from.port);
    expect((await intruder.receive()).packet).toEqual({ op: 'error', code: 5, message: 'unknown transfer ID' });
    expect(await c.collect(100)).toEqual([]); // The intruder's ACK did not advance the transfer.
    c.send({ op: 'ack', block: 1 }, first.from.port);
    const rest = [first];
    for (let block = 2; block <= 4; block++) {
      const next = await c.receive();
      expect(next.packet).toMatchObject({ op: 'data', block });
      rest.push(next);
      c.send({ op: 'ack', block }, first.from.port);
    }
    expect(Buffer.concat(rest.map((r) => Buffer.from((r.packet as { data: Uint8Array }).data)))).toEqual(pattern(2000));
    expect((await s.transfersFinished(1))[0]!.result).toBe('ok');
    expect(await s.metric('livery_tftp_malformed_packets_total', { reason: 'unknown-tid' })).toBe(1);
  });

  it('sends each block exactly once however often an ACK is repeated', async () => {
    const s = await server({ timeoutMs: 5000 });
    writeFileSync(join(s.root, 'f'), pattern(512 * 6 + 10));
    const c = await client();
    c.send(rrq('f'), s.port);
    let packet = await c.receive();
    const dataPackets: number[] = [];
    for (let i = 0; i < 20 && packet.packet.op === 'data'; i++) {
      dataPackets.push(packet.packet.block);
      const ack = { op: 'ack' as const, block: packet.packet.block };
      c.send(ack, packet.from.port);
      c.send(ack, packet.from.port);
      c.send(ack, packet.from.port);
      if (packet.packet.data.length < 512) break;
      packet = await c.receive();
    }
    expect(await c.collect(200)).toEqual([]);
    expect(dataPackets).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(await s.metric('livery_tftp_retransmitted_packets_total')).toBe(0);
  });

  it('retransmits when an ACK is lost, and the client still gets the file', async () => {
    const s = await server({ timeoutMs: 200 });
    writeFileSync(join(s.root, 'f'), pattern(700));
    const c = await client();
    c.send(rrq('f'), s.port);
    const first = await c.receive();
    // Drop our ACK for block 1 on purpose: the same block must come again.
    const again = await c.receive(3000);
    expect(again.packet).toEqual(first.packet);
    expect(again.from).toEqual(first.from);
    c.send({ op: 'ack', block: 1 }, first.from.port);
    // On a slow machine a later retransmission of block 1 may already be on its way; skip those.
    let second = await c.receive();
    for (let i = 0; i < 5 && second.packet.op === 'data' && second.packet.block === 1; i++) second = await c.receive();
    expect(second.packet).toMatchObject({ op: 'data', block: 2 });
    c.send({ op: 'ack', block: 2 }, first.from.port);
    expect((await s.transfersFinished(1))[0]).toMatchObject({ result: 'ok', bytes: 700 });
    expect(await s.metric('livery_tftp_retransmitted_packets_total')).toBeGreaterThanOrEqual(1);
  });

  it('gives up after the configured retries and closes the transfer socket', async () => {
    const s = await server({ timeoutMs: 50, retries: 2 });
    writeFileSync(join(s.root, 'f'), pattern(700));
    const c = await client();
    c.send(rrq('f'), s.port);
    const [record] = await s.transfersFinished(1, 5000);
    expect(record).toMatchObject({ result: 'timeout', bytes: 0 });
    const got = await c.collect(50);
    expect(got.map((r) => r.packet)).toEqual(Array(3).fill(expect.objectContaining({ op: 'data', block: 1 }))); // The first send and two retransmissions.
    expect(await s.metric('livery_tftp_transfers_total', { result: 'timeout' })).toBe(1);
    expect(await s.metric('livery_tftp_active_transfers')).toBe(0);
  });

  it("frees the slot of a client that negotiated timeout 255 and went silent within the server's own limit", async () => {
    // timeoutMs 100 and 2 retries: the server's own schedule holds a silent client 100+200+400 ms.
    const s = await server({ timeoutMs: 100, retries: 2, maxTransfersPerClient: 1 });
    writeFileSync(join(s.root, 'f'), pattern(700));
    const c = await client();
    const asked = Date.now();
    c.send(rrq('f', [{ name: 'timeout', value: '255' }]), s.port);
    const oack = await c.receive();
    expect(oack.packet).toEqual({ op: 'oack', options: [{ name: 'timeout', value: '255' }] });
    // Silent from here on; the held slot refuses this client's next request...
    c.send(rrq('f'), s.port);
    expect((await c.receive()).packet).toEqual({ op: 'error', code: 0, message: 'server busy' });
    // ...until the server's limit, not 255 s times the backoff, ends the transfer.
    const [record] = await s.transfersFinished(1, 5000);
    const held = Date.now() - asked;
    expect(record).toMatchObject({ result: 'timeout', bytes: 0 });
    expect(held).toBeGreaterThanOrEqual(650);
    expect(held).toBeLessThan(2500);
    const { data } = await download(c, s.port, 'f');
    expect(data).toEqual(pattern(700));
  });

  it('holds a silent client no longer than an explicit maxSilenceMs', async () => {
    const s = await server({ timeoutMs: 1000, retries: 5, maxSilenceMs: 300 });
    writeFileSync(join(s.root, 'f'), pattern(700));
    const c = await client();
    const asked = Date.now();
    c.send(rrq('f', [{ name: 'timeout', value: '255' }]), s.port);
    await c.receive();
    const [record] = await s.transfersFinished(1, 5000);
    expect(record).toMatchObject({ result: 'timeout' });
    expect(Date.now() - asked).toBeLessThan(1500);
  });

  it('resends from the gap when the client acknowledges part of a window', async () => {
    const s = await server({ timeoutMs: 5000 });
    writeFileSync(join(s.root, 'f'), pattern(512 * 10));
    const c = await client();
    c.send(rrq('f', [{ name: 'windowsize', value: '4' }]), s.port);
    const oack = await c.receive();
    expect(oack.packet).toEqual({ op: 'oack', options: [{ name: 'windowsize', value: '4' }] });
    c.send({ op: 'ack', block: 0 }, oack.from.port);
    const window = [await c.receive(), await c.receive(), await c.receive(), await c.receive()];
    expect(window.map((r) => (r.packet as { block: number }).block)).toEqual([1, 2, 3, 4]);
    c.send({ op: 'ack', block: 2 }, oack.from.port);
    const next = [await c.receive(), await c.receive(), await c.receive(), await c.receive()];
    expect(next.map((r) => (r.packet as { block: number }).block)).toEqual([3, 4, 5, 6]);
    expect(await s.metric('livery_tftp_retransmitted_packets_total')).toBe(2);
  });

  it('treats ERROR after the OACK as the client ending a tsize probe, not a failure', async () => {
    const s = await server();
    writeFileSync(join(s.root, 'f'), pattern(100_000));
    const c = await client();
    c.send(rrq('f', [{ name: 'tsize', value: '0' }]), s.port);
    const oack = await c.receive();
    expect(oack.packet).toEqual({ op: 'oack', options: [{ name: 'tsize', value: '100000' }] });
    c.send({ op: 'error', code: 8, message: 'tsize query' }, oack.from.port);
    const [record] = await s.transfersFinished(1);
    expect(record).toMatchObject({ result: 'aborted-by-client', bytes: 0, options: { tsize: '0' } });
    expect(await c.collect(300)).toEqual([]);
    expect(await s.metric('livery_tftp_transfers_total', { result: 'aborted-by-client' })).toBe(1);
    expect(await s.metric('livery_tftp_transfers_total', { result: 'error' })).toBe(0);
    // The ROM then asks again for real, and gets the file.
    expect((await download(c, s.port, 'f')).data).toEqual(pattern(100_000));
  });
});

describe('tftp server: refusals', () => {
  it('refuses write requests with ERROR 2', async () => {
    const s = await server();
    const c = await client();
    c.send({ op: 'wrq', filename: 'upload.bin', mode: 'octet', options: [] }, s.port);
    expect((await c.receive()).packet).toMatchObject({ op: 'error', code: 2 });
    expect(await s.metric('livery_tftp_refused_requests_total', { reason: 'write-request' })).toBe(1);
  });

  it('refuses every way out of the root, counts each by reason, and keeps serving', async () => {
    const outside = tempDir('livery-tftp-outside-');
    cleanups.push(outside.cleanup);
    writeFileSync(join(outside.path, 'secret'), 'secret');
    const s = await server();
    writeFileSync(join(s.root, 'good.bin'), pattern(600));
    symlinkSync(join(outside.path, 'secret'), join(s.root, 'leak'));
    symlinkSync(outside.path, join(s.root, 'leakdir'));
    mkdirSync(join(s.root, 'subdir'));
    execFileSync('mkfifo', [join(s.root, 'fifo')]);
    const c = await client();
    const attempts: [string, number, string][] = [
      ['../etc/passwd', 2, 'traversal'],
      ['a/../../x', 2, 'traversal'],
      ['//etc/passwd', 2, 'absolute'],
      ['/etc/passwd', 1, 'not-found'], // Means <root>/etc/passwd, which does not exist.
      ['..\\..\\etc\\passwd', 2, 'backslash'],
      ['leak', 2, 'symlink-escape'],
      ['leakdir/secret', 2, 'symlink-escape'],
      ['subdir', 2, 'not-a-file'],
      ['fifo', 2, 'not-a-file'],
      ['missing.bin', 1, 'not-found'],
    ];
    for (const [name, code] of attempts) {
      c.send(rrq(name), s.port);
      const reply = await c.receive();
      expect({ name, packet: reply.packet }).toMatchObject({ name, packet: { op: 'error', code } });
    }
    for (const [, , reason] of attempts) {
      expect(await s.metric('livery_tftp_refused_requests_total', { reason }), reason).toBeGreaterThanOrEqual(1);
    }
    expect(await s.metric('livery_tftp_refused_requests_total', { reason: 'traversal' })).toBe(2);
    expect(s.records).toEqual([]); // Refusals are not transfers.
    expect((await download(c, s.port, 'good.bin')).data).toEqual(pattern(600));
  });

  it('drops malformed packets, counts them, answers a broken request with ERROR 4, and stays up', async () => {
    const s = await server();
    writeFileSync(join(s.root, 'good.bin'), pattern(10));
    const c = await client();
    c.send(Buffer.from([0]), s.port);
    c.send(Buffer.from([0, 9, 1, 2, 3]), s.port);
    c.send(Buffer.from([0, 4, 0, 1]), s.port); // An ACK to the request port.
    expect(await c.collect(200)).toEqual([]);
    c.send(Buffer.from('\x00\x01file\x00oct', 'latin1'), s.port);
    expect((await c.receive()).packet).toMatchObject({ op: 'error', code: 4 });
    c.send(Buffer.from('\x00\x01good.bin\x00netascii\x00blksize\x00', 'latin1'), s.port); // Option without value.
    expect((await c.receive()).packet).toMatchObject({ op: 'error', code: 4 });
    // A NUL cannot hide inside a name: this reads as name "a", mode "passwd" and a dangling option.
    c.send(Buffer.from('\x00\x01a\x00passwd\x00octet\x00', 'latin1'), s.port);
    expect((await c.receive()).packet).toMatchObject({ op: 'error', code: 4 });
    c.send(rrq('good.bin', [], 'mail'), s.port);
    expect((await c.receive()).packet).toMatchObject({ op: 'error', code: 4 });
    expect(await s.metric('livery_tftp_malformed_packets_total', { reason: 'too-short' })).toBe(1);
    expect(await s.metric('livery_tftp_malformed_packets_total', { reason: 'unknown-opcode' })).toBe(1);
    expect(await s.metric('livery_tftp_malformed_packets_total', { reason: 'unexpected-opcode' })).toBe(1);
    expect(await s.metric('livery_tftp_malformed_packets_total', { reason: 'unterminated-string' })).toBe(1);
    expect(await s.metric('livery_tftp_malformed_packets_total', { reason: 'option-without-value' })).toBe(2);
    expect(await s.metric('livery_tftp_refused_requests_total', { reason: 'unsupported-mode' })).toBe(1);
    expect((await download(c, s.port, 'good.bin')).data).toEqual(pattern(10));
  });

  // The kernel caps a socket's buffer at net.core.rmem_max: below 1 MiB the burst cannot fit whatever the server asks.
  const rmemMax = Number(readFileSync('/proc/sys/net/core/rmem_max', 'utf8'));
  it.skipIf(rmemMax < 1024 * 1024)('holds a burst of 2,000 requests that arrive while it is busy (a rack powering on at once)', async () => {
    const s = await server();
    const c = await client();
    // Sent while this loop, which the server shares, cannot read: the socket's buffer holds them all or drops some.
    for (let i = 0; i < 2000; i++) c.send(Buffer.from([0, 9, i & 0xff, i >> 8]), s.port);
    let counted = 0;
    for (let wait = 0; wait < 50 && counted < 2000; wait++) {
      await sleep(100);
      counted = await s.metric('livery_tftp_malformed_packets_total', { reason: 'unknown-opcode' });
    }
    expect(counted).toBe(2000);
  });

  it('says "server busy" past the per-client and overall caps, and frees slots when transfers end', async () => {
    const s = await server({ maxTransfers: 3, maxTransfersPerClient: 2, timeoutMs: 10_000 });
    writeFileSync(join(s.root, 'f'), pattern(5000));
    const a1 = await client('127.0.0.1');
    const a2 = await client('127.0.0.1');
    const a3 = await client('127.0.0.1');
    const b1 = await client('127.0.0.2');
    const c1 = await client('127.0.0.3');
    for (const c of [a1, a2]) {
      c.send(rrq('f'), s.port);
      expect((await c.receive()).packet).toMatchObject({ op: 'data', block: 1 });
    }
    a3.send(rrq('f'), s.port);
    expect((await a3.receive()).packet).toEqual({ op: 'error', code: 0, message: 'server busy' });
    b1.send(rrq('f'), s.port);
    const b1First = await b1.receive();
    expect(b1First.packet).toMatchObject({ op: 'data', block: 1 });
    c1.send(rrq('f'), s.port);
    expect((await c1.receive()).packet).toEqual({ op: 'error', code: 0, message: 'server busy' });
    expect(await s.metric('livery_tftp_refused_requests_total', { reason: 'busy-client' })).toBe(1);
    expect(await s.metric('livery_tftp_refused_requests_total', { reason: 'busy' })).toBe(1);
    expect(await s.metric('livery_tftp_active_transfers')).toBe(3);
    b1.send({ op: 'error', code: 0, message: 'changed my mind' }, b1First.from.port);
    await s.transfersFinished(1);
    c1.send(rrq('f'), s.port);
    expect((await c1.receive()).packet).toMatchObject({ op: 'data', block: 1 });
  });
});

describe('tftp server: shutdown', () => {
  it('close() ends running transfers, tells their clients, and reports them', async () => {
    const dir = tempDir('livery-tftp-close-');
    cleanups.push(dir.cleanup);
    writeFileSync(join(dir.path, 'f'), pattern(5000));
    const s = await startTestServer({ root: dir.path, timeoutMs: 10_000 });
    const c = await client();
    c.send(rrq('f'), s.port);
    const first = await c.receive();
    await s.server.close();
    expect((await c.receive()).packet).toEqual({ op: 'error', code: 0, message: 'server shutting down' });
    expect(s.records).toEqual([expect.objectContaining({ result: 'error', file: 'f' })]);
    c.send({ op: 'ack', block: 1 }, first.from.port);
    expect(await c.collect(200)).toEqual([]);
    await s.stop(); // A second close is harmless.
  });
});
