import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tftpVirtualFile } from '../../src/boot/index.js';
import { dumpTables, execRaw } from '../helpers/db-snapshot.js';
import { makeBundle, publishBundle } from '../helpers/bundle.js';
import { bootEventsWritten, startTestServer, type TestServer } from '../helpers/server.js';

/**
 * The door machines use without a token, attacked from the boot network: requests from other
 * loopback addresses (127.0.0.x, a source address each) stand in for other hosts.
 */
let s: TestServer;
let imageId: string;
let subnetId: number;
const RESERVED = '52:54:00:dd:00:01';
const LEASED = '52:54:00:dd:00:02';

/** One HTTP request from `from` (a local source address); status and body. */
function send(url: string, from: string, method = 'GET', json?: unknown): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const body = json === undefined ? undefined : JSON.stringify(json);
    const req = request(url, { method, localAddress: from, headers: body ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } : {} }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode!, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}
const booted = (mac: string, from: string, id: string) => send(`${s.url}/v1/machines/${mac}/booted`, from, 'POST', { imageId: id, kernel: 'k' });
const refusedCount = async (reason: string) => {
  const text = await (await s.api('/metrics')).text();
  return Number(new RegExp(`^livery_machine_door_refused_total\\{reason="${reason}"\\} (\\d+)`, 'm').exec(text)?.[1] ?? 0);
};
const rows = (sql: string, ...args: unknown[]) => execRaw(s.livery.cmdb, sql, ...args)[0]!.n as number;

beforeAll(async () => {
  s = await startTestServer({
    http: { listen: '127.0.0.1:0', machineDoor: { perAddressPerSecond: 1, perAddressBurst: 40, perMacPerSecond: 0.5, perMacBurst: 10, unknownMacsPerSecond: 2 } },
  });
  const { tar } = await makeBundle('minimal', '1.0');
  imageId = ((await (await publishBundle(s, tar, '?channel=stable')).json()) as { id: string }).id;
  subnetId = ((await (await s.api('/v1/subnets', { method: 'POST', json: { name: 'lo', cidr: '127.0.0.0/8', policy: 'ignore' } })).json()) as { id: number }).id;
  await s.api('/v1/machines', { method: 'POST', json: { macs: [RESERVED], hostname: 'reserved', ip: '127.0.0.2', image: { name: 'minimal' } } });
  await s.api('/v1/machines', { method: 'POST', json: { macs: [LEASED], hostname: 'leased', image: { name: 'minimal' } } });
  // What the DHCP door records when it ACKs: the machine's leased address.
  s.livery.cmdb.tx(() => s.livery.cmdb.leases.claim({ ip: '127.0.0.3', mac: LEASED, subnetId, state: 'bound', expiresAt: Date.now() + 3_600_000, clientId: null, hostname: null }, Date.now(), true));
});
afterAll(() => s.stop());

describe('metadata and phone-home answer only the machine itself, by default', () => {
  it('metadata and cloud-init: 200 from the reserved or the leased address, 403 from any other', async () => {
    expect((await send(`${s.url}/v1/metadata/${RESERVED}`, '127.0.0.2')).status).toBe(200);
    expect((await send(`${s.url}/v1/metadata/${LEASED}`, '127.0.0.3')).status).toBe(200);
    expect((await send(`${s.url}/cloud-init/${LEASED}/user-data`, '127.0.0.3')).status).toBe(200);
    const before = await refusedCount('not-own-address');
    for (const [mac, from] of [[RESERVED, '127.0.0.3'], [LEASED, '127.0.0.2'], [LEASED, '127.0.0.9']] as const) {
      const res = await send(`${s.url}/v1/metadata/${mac}`, from);
      expect(res.status).toBe(403);
      expect(res.body).not.toContain('"vars"');
      expect((await send(`${s.url}/cloud-init/${mac}/meta-data`, from)).status).toBe(403);
    }
    expect(await refusedCount('not-own-address')).toBe(before + 6);
  });

  it('phone-home: only from the machine, and only for the image its last script served', async () => {
    const snapshot = () => dumpTables(s.livery.cmdb);
    let before = snapshot();
    // Nothing served yet: no image can have booted.
    expect(await booted(RESERVED, '127.0.0.2', imageId)).toMatchObject({ status: 409, body: expect.stringContaining('no boot plan was served to it') });
    expect(snapshot()).toEqual(before);

    expect((await send(`${s.url}/boot/${RESERVED}.ipxe`, '127.0.0.2')).body).toContain(`livery.image=${imageId}`);
    await bootEventsWritten(s.url);
    before = snapshot();
    expect((await booted(RESERVED, '127.0.0.9', imageId)).status).toBe(403);
    expect(await booted(RESERVED, '127.0.0.2', '00000000-0000-4000-8000-000000000000')).toMatchObject({ status: 409, body: expect.stringContaining(`its last boot plan was for image ${imageId}`) });
    expect(snapshot()).toEqual(before);
    expect(await refusedCount('image-not-served')).toBe(2);

    expect((await booted(RESERVED, '127.0.0.2', imageId)).status).toBe(204);
    const trace = (await (await s.api(`/v1/machines/reserved/trace`)).json()) as { boots: { imageId: string; complete: boolean }[] };
    expect(trace.boots.at(-1)).toMatchObject({ imageId, complete: true });
  });

  it('a machine booted by a GRUB or pxelinux config over TFTP phones home for the image that config named', async () => {
    const bootConfigs = () => rows("SELECT count(*) AS n FROM events WHERE type = 'boot-config' AND mac = ?", LEASED);
    expect(tftpVirtualFile(`pxelinux.cfg/01-${LEASED.replaceAll(':', '-')}`, { ...s.livery, config: s.config })!.toString()).toContain(`livery.image=${imageId}`);
    for (let i = 0; i < 50 && bootConfigs() === 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(bootConfigs()).toBe(1);
    expect((await booted(LEASED, '127.0.0.3', imageId)).status).toBe(204);
    // Made-up MACs over TFTP leave no rows.
    const before = rows('SELECT count(*) AS n FROM events');
    tftpVirtualFile('grub/grub.cfg-01-02-00-00-00-77-01', { ...s.livery, config: s.config });
    await new Promise((r) => setTimeout(r, 100));
    expect(rows('SELECT count(*) AS n FROM events')).toBe(before);
  });

  it('a boot-config event has the time of the decision, not of the commit that wrote it (its transfer, which follows, is stamped when it starts)', async () => {
    const latest = () => (execRaw(s.livery.cmdb, "SELECT id, at FROM events WHERE type = 'boot-config' AND mac = ? ORDER BY id DESC LIMIT 1", LEASED)[0] ?? { id: 0, at: 0 }) as { id: number; at: number };
    const before = latest().id;
    tftpVirtualFile(`grub/grub.cfg-01-${LEASED.replaceAll(':', '-')}`, { ...s.livery, config: s.config });
    const decided = Date.now();
    // The event loop is busy past the decision before the group commit gets to run.
    while (Date.now() < decided + 30);
    for (let i = 0; i < 50 && latest().id === before; i++) await new Promise((r) => setTimeout(r, 20));
    expect(latest().id).toBeGreaterThan(before);
    expect(latest().at).toBeLessThanOrEqual(decided);
  });

  it("another host fetching a machine's script or artifacts gets them, but is not credited to the machine's boot trace", async () => {
    const before = rows('SELECT count(*) AS n FROM events WHERE mac = ?', RESERVED);
    const refused = await refusedCount('not-own-address');
    expect((await send(`${s.url}/boot/${RESERVED}.ipxe`, '127.0.0.9')).status).toBe(200);
    expect((await send(`${s.url}/images/${imageId}/vmlinuz?mac=${RESERVED}`, '127.0.0.9')).status).toBe(200);
    await bootEventsWritten(s.url);
    expect(rows('SELECT count(*) AS n FROM events WHERE mac = ?', RESERVED)).toBe(before);
    expect(await refusedCount('not-own-address')).toBe(refused + 2);
    // From the machine itself, both are recorded.
    await send(`${s.url}/boot/${RESERVED}.ipxe`, '127.0.0.2');
    await send(`${s.url}/images/${imageId}/vmlinuz?mac=${RESERVED}`, '127.0.0.2');
    await bootEventsWritten(s.url);
    expect(rows('SELECT count(*) AS n FROM events WHERE mac = ?', RESERVED)).toBe(before + 2);
  });

  it('with the opt-out (NAT, proxy DHCP), metadata is answered from any address; the served-image check stays', async () => {
    const open = await startTestServer({ http: { listen: '127.0.0.1:0', metadataRequiresOwnAddress: false } });
    try {
      await open.api('/v1/machines', { method: 'POST', json: { macs: [RESERVED], ip: '10.9.0.1' } });
      expect((await send(`${open.url}/v1/metadata/${RESERVED}`, '127.0.0.9')).status).toBe(200);
      expect((await send(`${open.url}/v1/machines/${RESERVED}/booted`, '127.0.0.9', 'POST', { imageId: 'x' })).status).toBe(409);
    } finally {
      await open.stop();
    }
  });
});

describe('the events and registrations anyone can cause are bounded, and counted', () => {
  it('one address asking for scripts of 200 made-up MACs: a burst is served, the rest get 429, few rows', async () => {
    const before = rows('SELECT count(*) AS n FROM events');
    const refusedBefore = (await refusedCount('unknown-macs')) + (await refusedCount('per-address'));
    const started = Date.now();
    const statuses: number[] = [];
    for (let i = 0; i < 200; i++) statuses.push((await send(`${s.url}/boot/02:00:00:10:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}.ipxe`, '127.0.0.20')).status);
    const seconds = (Date.now() - started) / 1000;
    const served = statuses.filter((x) => x === 200).length;
    expect(statuses.filter((x) => x !== 200 && x !== 429)).toEqual([]);
    // Made-up MACs share 2/s (bucket of 2), whatever the address's own allowance (40 + 1/s).
    expect(served).toBeGreaterThanOrEqual(2);
    expect(served).toBeLessThanOrEqual(2 + Math.ceil(2 * seconds));
    expect(rows('SELECT count(*) AS n FROM events') - before).toBe(served);
    // Past the address's own burst its bucket refuses first; every refusal is counted once.
    expect(await refusedCount('unknown-macs')).toBeGreaterThan(0);
    expect((await refusedCount('unknown-macs')) + (await refusedCount('per-address')) - refusedBefore).toBe(200 - served);
  });

  it('one address flooding a known machine: its per-address allowance runs out, then 429', async () => {
    await new Promise((r) => setTimeout(r, 1000));
    const before = { mac: await refusedCount('per-mac'), address: await refusedCount('per-address') };
    const statuses: number[] = [];
    for (let i = 0; i < 100; i++) statuses.push((await send(`${s.url}/boot/${RESERVED}.ipxe`, '127.0.0.21')).status);
    // The machine's own bucket (10, then 0.5/s) runs out first, then the address's (40, then 1/s).
    const served = statuses.filter((x) => x === 200).length;
    expect(served).toBeLessThanOrEqual(12);
    expect(await refusedCount('per-mac')).toBeGreaterThan(before.mac + 20);
    expect((await refusedCount('per-mac')) - before.mac + (await refusedCount('per-address')) - before.address).toBe(100 - served);
    // The address's bucket is empty now: other MACs from it get in only as it refills (1/s).
    const started = Date.now();
    const flood: number[] = [];
    for (let i = 0; i < 60; i++) flood.push((await send(`${s.url}/boot/02:00:00:20:00:${i.toString(16).padStart(2, '0')}.ipxe`, '127.0.0.21')).status);
    expect(flood.filter((x) => x !== 429).length).toBeLessThanOrEqual(1 + Math.ceil((Date.now() - started) / 1000));
    expect(await refusedCount('per-address')).toBeGreaterThan(before.address + 60);
  });

  it('thousands of "boots" cannot be credited to one machine: phone-homes past its bucket get 429', async () => {
    await new Promise((r) => setTimeout(r, 2000));
    await send(`${s.url}/boot/${LEASED}.ipxe`, '127.0.0.3');
    const before = rows("SELECT count(*) AS n FROM events WHERE type = 'booted' AND mac = ?", LEASED);
    const statuses: number[] = [];
    for (let i = 0; i < 50; i++) statuses.push((await booted(LEASED, '127.0.0.3', imageId)).status);
    const accepted = statuses.filter((x) => x === 204).length;
    expect(accepted).toBeLessThanOrEqual(12);
    expect(statuses.filter((x) => x !== 204 && x !== 429)).toEqual([]);
    expect(rows("SELECT count(*) AS n FROM events WHERE type = 'booted' AND mac = ?", LEASED) - before).toBe(accepted);
  });

  it('?mac= on artifacts writes events only for machines the CMDB knows; the file is served either way', async () => {
    const before = rows('SELECT count(*) AS n FROM events');
    for (let i = 0; i < 50; i++) {
      const res = await send(`${s.url}/images/${imageId}/vmlinuz?mac=02:00:00:30:00:${i.toString(16).padStart(2, '0')}`, '127.0.0.22');
      expect(res.status).toBe(200);
    }
    expect(rows('SELECT count(*) AS n FROM events') - before).toBe(0);
  });

  it('registrations of made-up MACs through HTTP (discover policy) are bounded by the shared bucket', async () => {
    await s.api('/v1/subnets/lo', { method: 'PATCH', json: { policy: 'discover' } });
    await new Promise((r) => setTimeout(r, 1000));
    const started = Date.now();
    for (let i = 0; i < 100; i++) await send(`${s.url}/boot/02:00:00:40:00:${i.toString(16).padStart(2, '0')}.ipxe`, `127.0.1.${i + 1}`);
    const seconds = (Date.now() - started) / 1000;
    const discovered = rows("SELECT count(*) AS n FROM machines WHERE state = 'discovered'");
    expect(discovered).toBeGreaterThanOrEqual(1);
    expect(discovered).toBeLessThanOrEqual(2 + Math.ceil(2 * seconds));
  });
});
