/**
 * The web console in Debian's chromium (puppeteer-core, never a downloaded browser) against a
 * real `livery serve` in a private network namespace (reached through a UNIX socket): login, the
 * fleet filter, a machine's boot through the real DHCP, TFTP and HTTP doors (Debian's udhcpc and
 * curl as its firmware, loader and initramfs) shown as a timeline, the power state learned from a
 * real Redfish BMC (power on and off clicked on the machine page, checked in the CMDB), the event
 * feed filtered, keyboard reachability, promote and rollback from the page (checked in the CMDB),
 * a live event without a reload, a reader without write buttons (and refused anyway), a forged
 * write without the CSRF token refused, a rollout paused, resumed and aborted by clicking, logout,
 * and the fleet page at 10,000 machines (at phone width, in the dark theme). Screenshots at
 * 1280×800 go to test/.tmp/ui/, with the page weights and first-byte times (numbers.json).
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import type { Browser, Dialog, Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NETNS_SKIP } from '../helpers/netns.js';
import { launchChromium } from '../helpers/browser.js';
import { makeBundle, publishBundle } from '../helpers/bundle.js';
import { startRedfishBmc, StateBackend, type RedfishBmc } from '../helpers/redfish-bmc.js';
import { startNsTestServer, type NsTestServer } from '../helpers/ns-server.js';
import { pxeBoot } from '../helpers/pxe-boot.js';
import { tempDir } from '../helpers/tmp.js';

const SHOTS = join(import.meta.dirname, '../.tmp/ui');
const NODE1 = '52:54:00:c0:00:01';
const NODE2 = '52:54:00:c0:00:02';
const NODE3 = '52:54:00:c0:00:03';
const SERVER = '10.91.0.1';

const dir = tempDir('livery-console-');
let s: NsTestServer;
let browser: Browser;
let closeBrowser: () => Promise<void> = async () => {};
let readerToken = '';
const machinePower = new StateBackend();
let bmc: RedfishBmc;
const ids: Record<string, string> = {};
const notes: Record<string, unknown> = {};

/**
 * Finds and clicks in one step in the page: a live region (redrawn on an SSE event) may replace
 * the element between a lookup made from here and the click, detaching the one found.
 */
const clickNow = (page: Page, selector: string) => page.$eval(selector, (e) => (e as HTMLElement).click());

const shot = (page: Page, name: string) => page.screenshot({ path: join(SHOTS, `${name}.png`) });

async function login(token: string): Promise<Page> {
  const context = await browser.createBrowserContext();
  const page = await context.newPage();
  await page.setViewport({ width: 1280, height: 800 });
  await page.goto(`${s.url}/`);
  expect(new URL(page.url()).pathname).toBe('/ui/login');
  await page.type('input[name=token]', token);
  await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
  return page;
}

/** The script's download URLs as the test process reaches them (livery names its own address on the link). */
const viaTest = (url: string) => url.replace(`http://${SERVER}:8080`, s.url);

/** The boot's HTTP part from the test process: the iPXE script, then kernel (and initrd and rootfs: `upTo`), then the phone-home. */
async function httpBoot(mac: string, upTo: 'kernel' | 'rootfs+booted'): Promise<void> {
  const script = await (await fetch(`${s.url}/boot/${mac}.ipxe`)).text();
  const imageId = /livery\.image=(\S+)/.exec(script)![1]!;
  // In a real boot's order: iPXE loads the kernel and the initrd, the initramfs then fetches the rootfs.
  const urls = [/^kernel --name \S+ (\S+)/m, /^initrd --name \S+ (\S+)/m, /livery\.rootfs=(\S+)/].map((re) => re.exec(script)![1]!);
  for (const url of upTo === 'kernel' ? urls.slice(0, 1) : urls) {
    const res = await fetch(viaTest(url));
    expect(res.status, url).toBe(200);
    await res.arrayBuffer();
  }
  if (upTo === 'rootfs+booted') expect((await s.api(`/v1/machines/${mac}/booted`, { method: 'POST', token: null, json: { imageId } })).status).toBe(204);
}

const channelImage = () => s.cmdb.images.channels().find((c) => c.name === 'minimal' && c.channel === 'stable')!.imageId;

beforeAll(async () => {
  if (NETNS_SKIP) return;
  rmSync(SHOTS, { recursive: true, force: true });
  mkdirSync(SHOTS, { recursive: true });
  s = await startNsTestServer(dir.path, {
    serverCidr: `${SERVER}/24`,
    prepare: (cmdb) => cmdb.subnets.create({ name: 'lab', cidr: '10.91.0.0/24', gateway: SERVER, pools: [{ start: '10.91.0.100', end: '10.91.0.150' }], policy: 'discover' }),
    // The test's own requests come from livery's address, not the machines'.
    config: { http: { listen: `${SERVER}:8080`, metadataRequiresOwnAddress: false } },
  });
  for (const [version, channel] of [['1.0', 'stable'], ['2.0', '']] as const) {
    const { tar } = await makeBundle('minimal', version);
    ids[version] = ((await (await publishBundle(s, tar, channel ? `?channel=${channel}` : '')).json()) as { id: string }).id;
  }
  const machines = [
    { macs: [NODE1], hostname: 'node1', site: 'par1', labels: { role: 'kvm' }, image: { name: 'minimal', channel: 'stable' } },
    { macs: [NODE2], hostname: 'node2', site: 'par1', labels: { role: 'gpu' }, image: { name: 'minimal', channel: 'stable' } },
    { macs: [NODE3], hostname: 'web3', site: 'ams2', labels: { role: 'web' }, image: { name: 'minimal', channel: 'stable' } },
  ];
  for (const m of machines) expect((await s.api('/v1/machines', { method: 'POST', json: m })).status).toBe(201);
  readerToken = ((await (await s.api('/v1/tokens', { method: 'POST', json: { name: 'viewer', role: 'reader' } })).json()) as { token: string }).token;
  const bmcSocket = join(dir.path, 'redfish.sock');
  bmc = await startRedfishBmc(dir.path, machinePower, undefined, { socketPath: bmcSocket });
  await s.expose(bmcSocket, 8443);
  ({ browser, close: closeBrowser } = await launchChromium(join(dir.path, 'chromium')));
});

afterAll(async () => {
  try {
    await closeBrowser();
    await bmc?.close();
  } finally {
    writeFileSync(join(SHOTS, 'numbers.json'), JSON.stringify(notes, null, 2));
    await s?.stop();
    dir.cleanup();
  }
});

describe.skipIf(NETNS_SKIP)('the web console in chromium', () => {
  let admin: Page;

  it('logs in with a token, into an HttpOnly SameSite=Strict session cookie', async () => {
    admin = await login(s.token);
    expect(new URL(admin.url()).pathname).toBe('/');
    expect(await admin.$eval('h1', (h) => h.textContent)).toBe('Fleet');
    const [cookie] = await admin.cookies();
    expect(cookie).toMatchObject({ name: 'livery_session', httpOnly: true, sameSite: 'Strict' });
    expect(await admin.evaluate(() => document.cookie)).toBe('');
    await shot(admin, 'fleet');
  });

  it('finds a machine by the free-text filter, live as one types, and opens it', async () => {
    await admin.type('input[name=q]', 'web');
    await admin.waitForFunction(() => document.querySelectorAll('#fleet tbody tr').length === 1, { timeout: 10_000 });
    expect(await admin.$eval('#fleet tbody tr', (tr) => tr.textContent)).toContain(NODE3);
    expect(new URL(admin.url()).searchParams.get('q')).toBe('web');
    await Promise.all([admin.waitForNavigation(), clickNow(admin, '#fleet tbody a')]);
    expect(await admin.$eval('h1', (h) => h.textContent)).toBe('web3');
  });

  it('shows a boot through the real DHCP, TFTP and HTTP doors as a timeline, and where a failed boot stopped', async () => {
    await pxeBoot(s, join(dir.path, 'pxe'), NODE1);
    await httpBoot(NODE2, 'kernel');
    await admin.goto(`${s.url}/ui/machines/${NODE1}`);
    const stages = await admin.$$eval('#boots .boot:first-of-type .timeline li strong', (els) => els.map((e) => e.textContent));
    // The PXE ROM's DISCOVER and REQUEST, its loader over TFTP, iPXE's DISCOVER and REQUEST, then iPXE's and the initramfs's downloads.
    expect(stages.filter((st, i) => st !== stages[i - 1])).toEqual(['dhcp', 'tftp', 'dhcp', 'script', 'kernel', 'initrd', 'rootfs', 'booted', 'healthy']);
    expect(stages.filter((st) => st === 'dhcp').length).toBeGreaterThanOrEqual(4);
    expect(await admin.$eval('#boots .boot:first-of-type .timeline', (e) => e.textContent)).toMatch(/tftp \d\d:\d\d:\d\dZ/);
    expect(await admin.$eval('#boots', (e) => e.textContent)).toContain('complete');
    expect(await admin.$$eval('main ol li', (els) => els.map((e) => e.textContent).join('\n'))).toContain('minimal');
    await shot(admin, 'machine');
    await admin.goto(`${s.url}/ui/machines/${NODE2}`);
    expect(await admin.$eval('#boots .boot:first-of-type', (e) => e.textContent)).toContain('stopped before initrd');
    expect(await admin.$eval('#boots .timeline li.stop', (e) => e.textContent)).toContain('initrd');
  });

  it("shows the power state livery last learned from a machine's BMC (a real Redfish BMC), in the fleet and on its page, without asking the BMC on a page load", async () => {
    const put = await s.api(`/v1/machines/${NODE1}/bmc`, {
      method: 'PUT',
      json: { driver: 'redfish', address: SERVER, port: 8443, username: bmc.username, password: bmc.password, fingerprint: bmc.fingerprint },
    });
    expect(put.status, await put.clone().text()).toBe(200);
    const powerColumn = () =>
      admin.$$eval('#fleet tbody tr', (rows) => Object.fromEntries(rows.map((r) => [r.querySelector('a')!.textContent, (r as HTMLTableRowElement).cells[6]!.textContent!.trim()])));
    await admin.goto(`${s.url}/?q=node`);
    // node1 has a BMC whose state livery has not learned yet; node2 has none.
    expect(await powerColumn()).toEqual({ node1: 'unknown', node2: '—' });

    const dialogs: string[] = [];
    const accept = (d: Dialog) => {
      dialogs.push(d.message());
      void d.accept();
    };
    admin.on('dialog', accept);
    await admin.goto(`${s.url}/ui/machines/${NODE1}`);
    const id = s.cmdb.machines.get(NODE1).id;
    for (const [action, state, reset] of [['on', 'on', 'On'], ['off', 'off', 'ForceOff']] as const) {
      await clickNow(admin, `form[action$="/power"]:has(input[value="${action}"]) button`);
      await admin.waitForFunction((a) => document.querySelector('#power-result')?.textContent?.startsWith(`${a}: done`), { timeout: 15_000 }, action);
      expect(dialogs.at(-1)).toBe(`Power ${action} node1?`);
      expect(machinePower.resets.at(-1)).toBe(reset);
      expect(s.cmdb.bmcs.get(id)!.power).toMatchObject({ state });
      // The record redraws itself on the power event, without a reload.
      await admin.waitForFunction((st) => new RegExp(`^${st}, (just now|\\d+ s ago)$`).test(document.querySelector('#record .power')?.textContent ?? ''), { timeout: 15_000 }, state);
    }
    admin.off('dialog', accept);
    await shot(admin, 'machine-power');
    const asked = bmc.requests.length;
    await admin.goto(`${s.url}/?q=node`);
    expect((await powerColumn()).node1).toMatch(/^off, (just now|\d+ s ago)$/);
    await admin.goto(`${s.url}/ui/machines/${NODE1}`);
    expect(await admin.$eval('#record .power', (e) => e.textContent)).toMatch(/^off, /);
    expect(bmc.requests.length).toBe(asked);
  });

  it('filters the event feed by type and by machine', async () => {
    await admin.goto(`${s.url}/ui/events`);
    await admin.type('input[name=type]', 'power');
    await Promise.all([admin.waitForNavigation(), admin.click('form.filters button[type=submit]')]);
    expect(new URL(admin.url()).searchParams.get('type')).toBe('power');
    const types = await admin.$$eval('tbody tr td:nth-child(2)', (tds) => tds.map((td) => td.textContent));
    // The power-on and the power-off of node1, nothing else.
    expect(types).toEqual(['power', 'power']);
    await admin.goto(`${s.url}/ui/events?mac=${NODE2}`);
    const macs = await admin.$$eval('tbody tr td:nth-child(3)', (tds) => [...new Set(tds.map((td) => td.textContent))]);
    expect(macs).toEqual([NODE2]);
  });

  it('is reachable by keyboard: Tab goes through the navigation, the filters and the machines, Enter opens one', async () => {
    await admin.goto(`${s.url}/?q=node`);
    const reached: string[] = [];
    for (let i = 0; i < 30; i++) {
      await admin.keyboard.press('Tab');
      reached.push(await admin.evaluate(() => {
        const e = document.activeElement!;
        return `${e.tagName.toLowerCase()}${e.getAttribute('name') ? `[name=${e.getAttribute('name')}]` : ''} ${e.getAttribute('href') ?? e.textContent?.trim() ?? ''}`;
      }));
      if (reached.at(-1)!.startsWith('a /ui/machines/')) break;
    }
    expect(reached).toEqual(expect.arrayContaining(['a /ui/images', 'a /ui/rollouts', 'a /ui/events', 'input[name=q] ', 'button Filter']));
    expect(reached.at(-1)).toMatch(/^a \/ui\/machines\/\d+$/);
    await Promise.all([admin.waitForNavigation(), admin.keyboard.press('Enter')]);
    expect(await admin.$eval('h1', (h) => h.textContent)).toBe('node1');
  });

  it('promotes an image and rolls it back from the page, after a confirmation naming the machines affected', async () => {
    const dialogs: string[] = [];
    admin.on('dialog', (d) => {
      dialogs.push(d.message());
      void d.accept();
    });
    await admin.goto(`${s.url}/ui/images`);
    await shot(admin, 'images');
    expect(channelImage()).toBe(ids['1.0']);
    await Promise.all([admin.waitForNavigation(), admin.click(`#image-${ids['2.0']!.slice(0, 12)} form[action$="/promote"] button`)]);
    expect(dialogs.at(-1)).toBe('Promote minimal 2.0 to minimal@stable? 3 machines would boot it instead of 1.0 next time.');
    expect(channelImage()).toBe(ids['2.0']);
    await Promise.all([admin.waitForNavigation(), admin.click('#channel-minimal-stable form[action$="/rollback"] button')]);
    expect(dialogs.at(-1)).toContain('Roll back minimal@stable from 2.0');
    expect(channelImage()).toBe(ids['1.0']);
    expect(s.cmdb.images.history('minimal', 'stable').map((h) => [h.action, h.actor])).toEqual([
      ['promote', 'token:bootstrap-admin'],
      ['promote', 'token:bootstrap-admin'],
      ['rollback', 'token:bootstrap-admin'],
    ]);
    admin.removeAllListeners('dialog');
  });

  it('adds a new event to the feed and updates the fleet row live, without a reload', async () => {
    await admin.goto(`${s.url}/ui/events`);
    await admin.evaluate(() => Object.assign(window, { sameDocument: true }));
    // Let the stream connect before the event happens.
    await new Promise((r) => setTimeout(r, 1000));
    const before = await admin.$$eval('tbody tr', (rows) => rows.length);
    await httpBoot(NODE3, 'rootfs+booted');
    await admin.waitForFunction((n) => document.querySelectorAll('tbody tr').length > n, { timeout: 15_000 }, before);
    await admin.waitForFunction(() => document.querySelector('tbody tr')?.textContent?.includes('booted'), { timeout: 15_000 });
    expect(await admin.evaluate(() => (window as unknown as { sameDocument?: boolean }).sameDocument)).toBe(true);
    await shot(admin, 'events');

    await admin.goto(`${s.url}/?q=node2`);
    await admin.evaluate(() => Object.assign(window, { sameDocument: true }));
    await new Promise((r) => setTimeout(r, 1000));
    expect(await admin.$eval('#fleet tbody tr', (tr) => tr.textContent)).not.toContain('healthy');
    await httpBoot(NODE2, 'rootfs+booted');
    await admin.waitForFunction(() => document.querySelector('#fleet tbody tr')?.textContent?.includes('healthy'), { timeout: 15_000 });
    expect(await admin.evaluate(() => (window as unknown as { sameDocument?: boolean }).sameDocument)).toBe(true);
  });

  it('shows the rollouts page', async () => {
    await admin.goto(`${s.url}/ui/rollouts`);
    expect(await admin.$eval('h1', (h) => h.textContent)).toBe('Rollouts');
    await shot(admin, 'rollouts');
  });

  it('gives a reader no write buttons, and refuses a reader’s write anyway', async () => {
    const reader = await login(readerToken);
    await reader.goto(`${s.url}/ui/images`);
    expect(await reader.$$('form[action$="/promote"], form[action$="/rollback"]')).toHaveLength(0);
    expect(await admin.goto(`${s.url}/ui/images`).then(() => admin.$$('form[action$="/promote"]'))).not.toHaveLength(0);
    await reader.goto(`${s.url}/ui/machines/${NODE1}`);
    expect(await reader.$$('form[action$="/power"]')).toHaveLength(0);
    const status = await reader.evaluate(async (id) => {
      const csrf = JSON.parse(document.body.getAttribute('hx-headers')!)['x-csrf-token'] as string;
      const res = await fetch(`/ui/images/${id}/promote`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-csrf-token': csrf }, body: 'channel=stable' });
      return res.status;
    }, ids['2.0']!);
    expect(status).toBe(403);
    expect(channelImage()).toBe(ids['1.0']);
    await reader.browserContext().close();
  });

  it('refuses a state-changing request without the CSRF token (403), from the page and from outside', async () => {
    const fromPage = await admin.evaluate(async (id) => {
      const res = await fetch(`/ui/images/${id}/promote`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'channel=stable' });
      return res.status;
    }, ids['2.0']!);
    expect(fromPage).toBe(403);
    const cookie = (await admin.cookies()).map((c) => `${c.name}=${c.value}`).join('; ');
    const forged = await fetch(`${s.url}/ui/images/${ids['2.0']}/promote`, { method: 'POST', headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' }, body: 'channel=stable&_csrf=forged' });
    expect(forged.status).toBe(403);
    expect(channelImage()).toBe(ids['1.0']);
    // The same request with the session's token goes through: the 403s were the CSRF check's.
    const csrf = await admin.evaluate(() => JSON.parse(document.body.getAttribute('hx-headers')!)['x-csrf-token'] as string);
    const real = await fetch(`${s.url}/ui/images/${ids['2.0']}/promote`, { method: 'POST', headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' }, body: `channel=stable&_csrf=${csrf}`, redirect: 'manual' });
    expect(real.status).toBe(303);
    expect(channelImage()).toBe(ids['2.0']);
    // The API takes no cookie: only bearer tokens.
    expect((await fetch(`${s.url}/v1/machines`, { headers: { cookie } })).status).toBe(401);
  });

  it("shows one rollout's waves and its machines' states, paused, resumed and aborted by clicking", async () => {
    const res = await s.api('/v1/rollouts', { method: 'POST', json: { image: ids['2.0'], selector: 'role=web', waves: '100%', bootTimeout: '10m' } });
    expect(res.status, await res.clone().text()).toBe(201);
    const { id } = (await res.json()) as { id: number };
    await admin.goto(`${s.url}/ui/rollouts`);
    expect(await admin.$eval('main tbody', (t) => t.textContent)).toContain('role=web');
    await admin.goto(`${s.url}/ui/rollouts/${id}`);
    expect(await admin.$eval('h1', (h) => h.textContent)).toBe(`Rollout ${id}`);
    expect(await admin.$eval('#rollout', (e) => e.textContent)).toContain('web3');
    expect(await admin.$eval('#rollout', (e) => e.textContent)).toMatch(/Wave \d/);
    await shot(admin, 'rollout');
    // A reader sees the same running rollout, and no button to change it.
    const reader = await login(readerToken);
    await reader.goto(`${s.url}/ui/rollouts/${id}`);
    expect(await reader.$eval('#rollout', (e) => e.textContent)).toContain('running');
    expect(await reader.$$('#rollout form')).toHaveLength(0);
    await reader.browserContext().close();
    // Pause, resume and abort by clicking, each after a confirmation; the CMDB holds each change.
    const dialogs: string[] = [];
    const accept = (d: Dialog) => {
      dialogs.push(d.message());
      void d.accept();
    };
    admin.on('dialog', accept);
    const buttons = () => admin.$$eval('#rollout form', (forms) => forms.map((f) => f.getAttribute('action')!.split('/').at(-1)));
    for (const [action, state, then] of [['pause', 'paused', ['resume', 'abort']], ['resume', 'running', ['pause', 'abort']], ['abort', 'aborted', []]] as const) {
      expect(await buttons()).toContain(action);
      await Promise.all([admin.waitForNavigation(), clickNow(admin, `#rollout form[action$="/${action}"] button`)]);
      expect(dialogs.at(-1)).toBe(`${action} rollout ${id}?`);
      expect(s.cmdb.rollouts.get(id)).toMatchObject({ state, reason: `${action} by token:bootstrap-admin` });
      expect(await admin.$eval('#rollout', (e) => e.textContent)).toContain(state);
      expect(await buttons()).toEqual(then);
    }
    admin.off('dialog', accept);
  });

  it('pages through 10,000 machines', async () => {
    const rows = Array.from({ length: 10_000 }, (_, i) => ({
      macs: [`02:10:00:${((i >> 16) & 255).toString(16).padStart(2, '0')}:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`],
      hostname: `rack${i}`,
      site: i % 2 ? 'par1' : 'ams2',
      labels: { rack: `r${i % 40}` },
      image: { name: 'minimal', channel: 'stable' },
    }));
    expect((await s.api('/v1/machines/import', { method: 'POST', json: rows })).status).toBe(200);
    await admin.goto(`${s.url}/`);
    expect(await admin.$eval('#fleet p.muted', (p) => p.textContent)).toContain('10003 machines, page 1 of 101');
    expect(await admin.$$('#fleet tbody tr')).toHaveLength(100);
    await shot(admin, 'fleet-10000');
    // On a phone the page fits its width (wide tables scroll inside their card).
    await admin.setViewport({ width: 390, height: 844 });
    expect(await admin.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    await admin.screenshot({ path: join(SHOTS, 'fleet-phone.png') });
    await admin.setViewport({ width: 1280, height: 800 });
    // The theme follows the system's setting.
    const background = () => admin.evaluate(() => getComputedStyle(document.body).backgroundColor);
    await admin.emulateMediaFeatures([{ name: 'prefers-color-scheme', value: 'light' }]);
    expect(await background()).toBe('rgb(250, 250, 250)');
    await admin.emulateMediaFeatures([{ name: 'prefers-color-scheme', value: 'dark' }]);
    expect(await background()).toBe('rgb(17, 20, 24)');
    await shot(admin, 'fleet-dark');
    await admin.emulateMediaFeatures([]);
    await Promise.all([admin.waitForNavigation(), admin.click('a[rel=next]')]);
    expect(await admin.$eval('#fleet p.muted', (p) => p.textContent)).toContain('page 2 of 101');
    notes.fleetFirstByteMsInBrowser = await admin.evaluate(() => {
      const nav = performance.getEntriesByType('navigation')[0] as PerformanceNavigationTiming;
      return Math.round((nav.responseStart - nav.requestStart) * 10) / 10;
    });
    // First byte as a client on the link sees it (curl in livery's namespace, no forwarder between), measured (not asserted): the median of 20 loads.
    const cookie = (await admin.cookies()).map((c) => `${c.name}=${c.value}`).join('; ');
    const times = Array.from({ length: 20 }, () =>
      Number(s.net.exec(s.net.server, 'curl', ['-sS', '-o', '/dev/null', '-w', '%{time_starttransfer}', '-H', `cookie: ${cookie}`, `http://${SERVER}:8080/`])) * 1000,
    ).sort((a, b) => a - b);
    notes.fleetFirstByteMsMedian = Math.round(times[10]! * 10) / 10;
    const page = await (await fetch(`${s.url}/`, { headers: { cookie } })).text();
    const asset = async (file: string) => Buffer.from(await (await fetch(`${s.url}/ui/assets/${file}`, { headers: { 'accept-encoding': 'identity' } })).arrayBuffer());
    const weights = Object.fromEntries(
      await Promise.all(['htmx.min.js', 'sse.js', 'console.css'].map(async (f) => { const b = await asset(f); return [f, { bytes: b.length, gzip: gzipSync(b).length }]; })),
    );
    weights['fleet page (100 rows)'] = { bytes: Buffer.byteLength(page), gzip: gzipSync(page).length };
    notes.weights = weights;
    console.log('console numbers', JSON.stringify(notes));
    // The page's JavaScript stays under ~100 KB compressed.
    expect(weights['htmx.min.js'].gzip + weights['sse.js'].gzip).toBeLessThan(100 * 1024);
  });

  it('logs out: the session ends in the CMDB, so the old cookie no longer works', async () => {
    const cookie = (await admin.cookies()).map((c) => `${c.name}=${c.value}`).join('; ');
    await Promise.all([admin.waitForNavigation(), admin.click('header form[action="/ui/logout"] button')]);
    expect(new URL(admin.url()).pathname).toBe('/ui/login');
    const again = await fetch(`${s.url}/`, { headers: { cookie }, redirect: 'manual' });
    expect(again.status).toBe(303);
    expect(again.headers.get('location')).toBe('/ui/login?next=%2F');
  });
});
