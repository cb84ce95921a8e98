import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeBundle, publishBundle } from '../helpers/bundle.js';
import { grubCommands } from '../helpers/loader-scripts.js';
import { bootEventsWritten, startTestServer, type TestServer } from '../helpers/server.js';

/**
 * boot.secureBoot over a real server: which loader chain decide() picks (machine, then subnet,
 * then config), what each door serves for the signed chain (loaders, GRUB's entry config, the
 * machine's grub.cfg), what `explain` says, and that an image with an unsigned kernel cannot
 * reach machines that enforce Secure Boot.
 */
const SIGNED = '52:54:00:5b:10:01';
const INHERITS = '52:54:00:5b:10:02';
const OFF = '52:54:00:5b:10:03';
const IDLE = '52:54:00:5b:10:04';
let s: TestServer;
let imageId = '';

interface Explained {
  next: { kind: string; file?: string; url?: string };
  chain: { chain: string; secureBoot: string; source: string };
  template: string;
  reasons: string[];
  script: string;
}
const explain = async (mac: string, firmware: string, subnet = 'lab') => (await (await s.api(`/v1/machines/${mac}/explain?firmware=${firmware}&subnet=${subnet}`)).json()) as Explained;
const json = async (path: string, method: string, body: unknown) => {
  const res = await s.api(path, { method, json: body });
  return { status: res.status, body: (await res.json()) as { error?: string; secureBoot?: string | null } };
};

beforeAll(async () => {
  s = await startTestServer();
  const { tar } = await makeBundle('minimal', '1', undefined, { kernelSigned: true });
  imageId = (await (await publishBundle(s, tar, '?channel=stable')).json()).id;
  await json('/v1/subnets', 'POST', { cidr: '10.77.0.0/24', name: 'lab', secureBoot: 'auto' });
  await json('/v1/machines', 'POST', { macs: [SIGNED], hostname: 'signed', image: { name: 'minimal' }, secureBoot: 'on' });
  await json('/v1/machines', 'POST', { macs: [INHERITS], hostname: 'inherits', image: { name: 'minimal' } });
  await json('/v1/machines', 'POST', { macs: [OFF], hostname: 'off', image: { name: 'minimal' }, secureBoot: 'off' });
  await json('/v1/machines', 'POST', { macs: [IDLE], hostname: 'idle', secureBoot: 'on' });
});
afterAll(() => s.stop());

describe('which chain: the machine, then its subnet, then boot.secureBoot', () => {
  it('UEFI PXE: shimx64.efi over TFTP on the signed chain, snponly.efi otherwise, and explain says which setting decided', async () => {
    const on = await explain(SIGNED, 'uefi-pxe');
    expect(on.next).toEqual({ kind: 'tftp', file: 'shimx64.efi' });
    expect(on.chain).toEqual(expect.objectContaining({ chain: 'shim', secureBoot: 'on', source: 'machine signed' }));
    expect(on.reasons).toContain('secureBoot on (machine signed): the signed chain shim -> GRUB -> kernel');
    const inherited = await explain(INHERITS, 'uefi-pxe');
    expect(inherited.chain).toEqual(expect.objectContaining({ chain: 'shim', secureBoot: 'auto', source: 'subnet lab' }));
    const off = await explain(OFF, 'uefi-pxe');
    expect(off.next).toEqual({ kind: 'tftp', file: 'snponly.efi' });
    expect(off.chain).toEqual(expect.objectContaining({ chain: 'ipxe', secureBoot: 'off', source: 'machine off' }));
    // Outside the subnet nothing says otherwise: the config's default, off.
    const outside = (await (await s.api(`/v1/machines/${INHERITS}/explain?firmware=uefi-pxe`)).json()) as Explained;
    expect(outside.chain).toEqual(expect.objectContaining({ chain: 'ipxe', secureBoot: 'off', source: 'config boot.secureBoot' }));
  });

  it('UEFI HTTP Boot: shim by URL; BIOS and running iPXE keep iPXE whatever the setting', async () => {
    expect((await explain(SIGNED, 'uefi-http')).next).toEqual({ kind: 'http', url: `${s.url}/loaders/shimx64.efi` });
    expect((await explain(OFF, 'uefi-http')).next).toEqual({ kind: 'http', url: `${s.url}/loaders/ipxe.efi` });
    const bios = await explain(SIGNED, 'bios-pxe');
    expect(bios.next).toEqual({ kind: 'tftp', file: 'undionly.kpxe' });
    expect(bios.reasons).toContain('secureBoot on (machine signed): iPXE, a BIOS client has no Secure Boot');
    expect((await explain(SIGNED, 'ipxe')).next).toEqual({ kind: 'script', url: `${s.url}/boot/${SIGNED}.ipxe` });
  });

  it('explain shows the GRUB config a machine on the signed chain gets', async () => {
    const e = await explain(SIGNED, 'grub');
    expect(e.template).toBe('grub/grub.cfg');
    expect(e.next).toEqual({ kind: 'script', url: `${s.url}/grub/grub.cfg-01-52-54-00-5b-10-01` });
    expect(e.script).toContain(`/images/${imageId}/vmlinuz`);
  });

  it('refuses a setting outside off, on, auto with a message naming the field and the values; empty inherits', async () => {
    for (const [path, method, body] of [
      ['/v1/machines', 'POST', { macs: ['52:54:00:5b:10:09'], secureBoot: 'yes' }],
      [`/v1/machines/${OFF}`, 'PATCH', { secureBoot: 'ON' }],
      ['/v1/subnets/lab', 'PATCH', { secureBoot: 'maybe' }],
    ] as const) {
      const r = await json(path, method, body);
      expect(r.status).toBe(400);
      expect(r.body.error).toMatch(/^secureBoot: must be one of off, on, auto \(or null to inherit\)/);
    }
    expect((await json(`/v1/machines/${OFF}`, 'GET', undefined)).body.secureBoot).toBe('off');
    expect((await json(`/v1/machines/${INHERITS}`, 'PATCH', { secureBoot: null })).body.secureBoot).toBeNull();
  });
});

describe('what the signed chain fetches over HTTP', () => {
  it("the loaders: Debian's shim and network GRUB, byte for byte", async () => {
    const shim = Buffer.from(await (await fetch(`${s.url}/loaders/shimx64.efi`)).arrayBuffer());
    expect(shim.equals(readFileSync('/usr/lib/shim/shimx64.efi.signed'))).toBe(true);
    // Shim booted by URL asks for GRUB beside itself as <folder>/ + /grubx64.efi.
    const grub = Buffer.from(await (await fetch(`${s.url}/loaders//grubx64.efi`)).arrayBuffer());
    expect(grub.equals(readFileSync('/usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed'))).toBe(true);
  });

  it("GRUB's entry config hands over to the NIC's own config", async () => {
    const res = await fetch(`${s.url}/grub/grub.cfg`);
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('configfile $prefix/grub.cfg-01-$net_default_mac');
  });

  it('a machine with an image: linux and initrd from GRUB\'s server with the iPXE path command line (without initrd=), a boot event', async () => {
    const cfg = await (await fetch(`${s.url}/grub/grub.cfg-01-${SIGNED}`)).text();
    const commands = grubCommands(cfg);
    const linux = commands.find((c) => c.argv[0] === 'if' && c.argv[1] === 'linux')!.argv;
    expect(linux.slice(1, 3)).toEqual(['linux', `/images/${imageId}/vmlinuz?mac=${SIGNED}`]);
    expect(linux).toContain('BOOTIF=01-52-54-00-5b-10-01');
    expect(linux).toContain(`livery.server=${s.url}`);
    expect(linux).toContain(`livery.image=${imageId}`);
    expect(linux.some((w) => w.startsWith('initrd='))).toBe(false);
    expect(commands.find((c) => c.argv[1] === 'initrd')!.argv[2]).toBe(`/images/${imageId}/initrd.img?mac=${SIGNED}`);
    await bootEventsWritten(s.url);
    const event = s.livery.cmdb.events.tail(0, 1000).filter((e) => e.type === 'boot-config' && e.mac === SIGNED).at(-1);
    expect(event?.detail).toMatchObject({ firmware: 'grub', template: 'grub/grub.cfg', action: 'boot' });
  });

  it('a machine with nothing to boot waits and loads its config again (the GRUB wait-and-retry)', async () => {
    const commands = grubCommands(await (await fetch(`${s.url}/grub/grub.cfg-01-${IDLE}`)).text());
    expect(commands.map((c) => c.argv[0])).toEqual(['echo', 'echo', 'sleep', 'configfile']);
    expect(commands[2]!.argv[1]).toBe('30');
    expect(commands[3]!.argv[1]).toBe('/grub/grub.cfg-01-52-54-00-5b-10-04');
  });
});

describe('an unsigned kernel and machines that enforce Secure Boot', () => {
  it('publishing it to a channel such a machine follows is refused, naming the machine; the catalog is unchanged', async () => {
    const { tar } = await makeBundle('minimal', '2', undefined, { kernelSigned: false });
    const res = await publishBundle(s, tar, '?channel=stable');
    expect(res.status).toBe(409);
    const { error } = (await res.json()) as { error: string };
    expect(error).toMatch(/^kernelSigned: image minimal 2 has an unsigned kernel, and machine signed \(secureBoot on\) would boot it from minimal@stable/);
    expect(error).not.toContain('machine inherits');
    const images = (await (await s.api('/v1/images')).json()) as { items: { version: string }[] };
    expect(images.items.map((i) => i.version)).toEqual(['1']);
  });

  it('published without a channel it is kept; promoting it is refused; explain warns for a machine pinned to it', async () => {
    const { tar } = await makeBundle('minimal', '3', undefined, { kernelSigned: false });
    const unsigned = (await (await publishBundle(s, tar)).json()) as { id: string };
    const promote = await s.api(`/v1/images/${unsigned.id}/promote`, { method: 'POST', json: { channel: 'stable' } });
    expect(promote.status).toBe(409);
    await json(`/v1/machines/${OFF}`, 'PATCH', { image: { id: unsigned.id } });
    expect((await explain(OFF, 'uefi-pxe')).reasons.join('\n')).not.toContain('unsigned kernel');
    await json(`/v1/machines/${OFF}`, 'PATCH', { secureBoot: 'on' });
    expect((await explain(OFF, 'uefi-pxe')).reasons).toContain(
      `warning: image ${unsigned.id} has an unsigned kernel, which firmware enforcing Secure Boot refuses (machine off says secureBoot on)`,
    );
  });
});
