import { execFile } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeBundle, publishBundle } from '../helpers/bundle.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { tempDir } from '../helpers/tmp.js';

const MAC = '52:54:00:bb:00:01';
const dir = tempDir();
let s: TestServer;
let tftp = '';
let imageId = '';

/** Fetches a file with Debian's curl over TFTP (asynchronously: the server runs in this process). */
const fetchTftp = async (name: string) => {
  const out = join(dir.path, name.replaceAll('/', '_'));
  await promisify(execFile)('curl', ['-sS', '--max-time', '20', '-o', out, `${tftp}/${name}`]);
  return readFileSync(out);
};

beforeAll(async () => {
  s = await startTestServer({ tftp: { enabled: true, listen: '127.0.0.1:0' } });
  tftp = `tftp://127.0.0.1:${s.livery.tftpPort}`;
  const { tar } = await makeBundle('minimal', '1');
  imageId = (await (await publishBundle(s, tar, '?channel=stable')).json()).id;
  await s.api('/v1/machines', { method: 'POST', json: { macs: [MAC], hostname: 'tftp1', image: { name: 'minimal' } } });
});
afterAll(async () => {
  await s.stop();
  dir.cleanup();
});

describe('TFTP door', () => {
  it('serves the iPXE loaders from the Debian package', async () => {
    expect((await fetchTftp('undionly.kpxe')).equals(readFileSync('/usr/lib/ipxe/undionly.kpxe'))).toBe(true);
    expect((await fetchTftp('snponly.efi')).equals(readFileSync('/usr/lib/ipxe/snponly.efi'))).toBe(true);
  });

  it('renders per-machine pxelinux and GRUB configs from the same boot plan', async () => {
    const pxelinux = (await fetchTftp('pxelinux.cfg/01-52-54-00-bb-00-01')).toString();
    expect(pxelinux).toContain(`KERNEL ${s.url}/images/${imageId}/vmlinuz?mac=${MAC}`);
    expect(pxelinux).toContain(`APPEND initrd=initrd.img BOOTIF=01-52-54-00-bb-00-01 livery.server=${s.url} livery.image=${imageId}`);
    const grub = (await fetchTftp('grub/grub.cfg-01-52-54-00-bb-00-01')).toString();
    // GRUB would expand `?` as a wildcard: livery escapes it (see quoting.test.ts).
    // GRUB hands the kernel its initrd itself: no initrd= (that names a file in iPXE's EFI file system).
    // GRUB reads from the server it came from (TFTP here), so paths are on its $root.
    expect(grub).toContain(`if linux /images/${imageId}/vmlinuz\\?mac=${MAC} BOOTIF=01-52-54-00-bb-00-01 livery.server=${s.url}`);
    // An unknown MAC with no subnet policy boots locally.
    expect((await fetchTftp('pxelinux.cfg/01-02-00-00-00-00-09')).toString()).toContain('LOCALBOOT 0');
    expect((await fetchTftp('autoexec.ipxe')).toString()).toContain(`chain ${s.url}/boot/\${net0/mac}.ipxe`);
  });

  it("serves Debian's signed chain: shim as shimx64.efi, the network GRUB as grubx64.efi (the name shim loads), and GRUB's entry config", async () => {
    expect((await fetchTftp('shimx64.efi')).equals(readFileSync('/usr/lib/shim/shimx64.efi.signed'))).toBe(true);
    expect((await fetchTftp('grubx64.efi')).equals(readFileSync('/usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed'))).toBe(true);
    // grubnetx64 is built with prefix /grub and reads $prefix/grub.cfg.
    const entry = (await fetchTftp('grub/grub.cfg')).toString();
    expect(entry).toContain('configfile $prefix/grub.cfg-01-$net_default_mac');
    // ... which GRUB spells with colons: the same config as with dashes.
    const byColons = (await fetchTftp(`grub/grub.cfg-01-${MAC}`)).toString();
    expect(byColons).toBe((await fetchTftp('grub/grub.cfg-01-52-54-00-bb-00-01')).toString());
  });

  it("serves an image's artifacts at their HTTP path, query and all, as GRUB asks for them over TFTP", async () => {
    const http = Buffer.from(await (await fetch(`${s.url}/images/${imageId}/vmlinuz`)).arrayBuffer());
    expect((await fetchTftp(`images/${imageId}/vmlinuz?mac=${MAC}`)).equals(http)).toBe(true);
    await expect(fetchTftp(`images/${imageId}/nothing`)).rejects.toThrow();
  });

  it('records every transfer as an event', () => {
    // The TFTP client here holds no lease, so the event carries no MAC, but every transfer is logged.
    const transfers = s.livery.cmdb.events.tail(0, 1000).filter((e) => e.type === 'tftp');
    expect(transfers.length).toBeGreaterThanOrEqual(2);
    expect(transfers[0]!.detail).toMatchObject({ file: 'undionly.kpxe', result: 'ok' });
  });

  it('stamps a transfer with the time it began, not of its end (a trace reads events in time order)', async () => {
    const client = createSocket('udp4');
    try {
      client.bind(0, '127.0.0.1');
      await once(client, 'listening');
      const sentAt = Date.now();
      client.send(Buffer.concat([Buffer.from([0, 1]), Buffer.from('grubx64.efi\0octet\0')]), s.livery.tftpPort!, '127.0.0.1');
      const [, from] = (await once(client, 'message')) as [Buffer, { port: number }];
      // The transfer stays open without an ACK, then the client ends it: its end is 1.5 s after its request.
      await sleep(1500);
      client.send(Buffer.concat([Buffer.from([0, 5, 0, 0]), Buffer.from('enough\0')]), from.port, '127.0.0.1');
      let event;
      for (let i = 0; i < 50 && !event; i++, await sleep(100)) {
        event = s.livery.cmdb.events.tail(0, 1000).find((e) => e.type === 'tftp' && e.detail.file === 'grubx64.efi' && e.detail.result === 'aborted-by-client');
      }
      expect(event, 'the aborted transfer was recorded').toBeDefined();
      expect(Date.parse(event!.at) - sentAt).toBeLessThan(500);
      expect(event!.detail.durationMs).toBeGreaterThanOrEqual(1400);
    } finally {
      client.close();
    }
  });
});
