import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toEnv } from '../../src/http/machine/metadata.js';
import { runAgent } from '../helpers/agent-run.js';
import { tempDir } from '../helpers/tmp.js';

/**
 * What the agent makes of the metadata document, byte for byte: the files it writes
 * (run/livery/metadata.env, etc/hostname, etc/hosts, etc/resolv.conf), the hostname it sets
 * and what it prints. The expected outputs were recorded from the agent that parsed the
 * document with a process per line, before it became one awk program; any change in what
 * the agent keeps, rejects or applies shows here.
 */
const MAC = '52:54:00:12:34:58';
const IMAGE = 'min"quoted\\image';

let server: Server;
let port: number;
let metadata: { status: number; body: string } = { status: 200, body: '' };
const posted: { url: string; body: string }[] = [];
const scratch = tempDir('livery-agent-md-');

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      if (req.method === 'GET' && req.url === `/v1/metadata/${MAC}?format=env`) {
        res.writeHead(metadata.status, { 'content-type': 'text/plain; charset=utf-8' }).end(metadata.body);
        return;
      }
      posted.push({ url: req.url!, body });
      res.writeHead(req.method === 'POST' ? 204 : 404).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as { port: number }).port;
});

afterAll(async () => {
  await new Promise((r) => server.close(r));
  scratch.cleanup();
});

let runs = 0;
/** One boot of the agent on `body`: everything it wrote and said. */
async function agentOn(body: string, status = 200) {
  metadata = { status, body };
  posted.length = 0;
  const cmdline = `BOOTIF=01-52-54-00-12-34-58 livery.server=http://127.0.0.1:${port}/ livery.image=${IMAGE}`;
  const r = await runAgent(join(scratch.path, `root${++runs}`), cmdline);
  const file = (path: string) => (existsSync(join(r.root, path)) ? readFileSync(join(r.root, path), 'utf8') : null);
  const booted = posted.find((p) => p.url.endsWith('/booted'));
  // The port and the build machine's own hostname (kept when the metadata sets none) vary by run.
  const stable = (text: string) => text.replaceAll(`:${port}`, ':PORT').replaceAll(hostname(), 'BUILD-HOST');
  return {
    code: r.code,
    stdout: stable(r.stdout),
    hostname: stable(r.hostname),
    metadataEnv: file('run/livery/metadata.env'),
    etcHostname: file('etc/hostname'),
    hosts: file('etc/hosts'),
    resolv: file('etc/resolv.conf'),
    bootedImage: booted ? (JSON.parse(booted.body) as { imageId: string }).imageId : null,
    posts: posted.map((p) => p.url),
  };
}

const canUnshare = process.getuid?.() === 0;

describe.skipIf(!canUnshare)('livery-agent metadata handling (needs root for a private UTS namespace)', () => {
  it("applies livery's own encoding of a machine with awkward labels and vars", async () => {
    const doc = toEnv({
      mac: MAC,
      hostname: 'rack7-node-12',
      ip: '192.0.2.12',
      prefix: 24,
      gateway: '192.0.2.1',
      dns: ['192.0.2.53', '2001:db8::53'],
      domain: 'lab.example',
      site: 'Zürich east',
      labels: { role: 'web server', 'it\'s': "o'clock", quote: '"double" and \'single\'', empty: '' },
      vars: {
        note: "it's $(touch /tmp/x) `id` ; rm -rf / \\n \\\\ 'x'",
        unicode: 'héllo wörld ✓ 日本',
        multiline: 'first line\nsecond line',
        tab: 'a\tb',
        trailingQuote: "ends with '",
        onlyQuote: "'",
        empty: '',
      },
      image: { id: IMAGE, name: 'min', version: '1', channel: null },
    });
    expect(await agentOn(doc)).toMatchInlineSnapshot(`
      {
        "bootedImage": "min"quoted\\image",
        "code": 0,
        "etcHostname": "rack7-node-12
      ",
        "hostname": "rack7-node-12",
        "hosts": "127.0.0.1	localhost
      127.0.1.1	rack7-node-12.lab.example rack7-node-12
      ::1	localhost ip6-localhost ip6-loopback
      ",
        "metadataEnv": "LIVERY_MAC='52:54:00:12:34:58'
      LIVERY_HOSTNAME='rack7-node-12'
      LIVERY_IP='192.0.2.12'
      LIVERY_PREFIX='24'
      LIVERY_GATEWAY='192.0.2.1'
      LIVERY_DNS='192.0.2.53 2001:db8::53'
      LIVERY_DOMAIN='lab.example'
      LIVERY_SITE='Zürich east'
      LIVERY_IMAGE_ID='min"quoted\\image'
      LIVERY_IMAGE_NAME='min'
      LIVERY_IMAGE_VERSION='1'
      LIVERY_IMAGE_CHANNEL=''
      LIVERY_LABEL_ROLE='web server'
      LIVERY_LABEL_IT_S='o'\\''clock'
      LIVERY_LABEL_QUOTE='"double" and '\\''single'\\'''
      LIVERY_LABEL_EMPTY=''
      LIVERY_VAR_NOTE='it'\\''s $(touch /tmp/x) \`id\` ; rm -rf / \\n \\\\ '\\''x'\\'''
      LIVERY_VAR_UNICODE='héllo wörld ✓ 日本'
      LIVERY_VAR_TAB='a	b'
      LIVERY_VAR_TRAILINGQUOTE='ends with '\\'''
      LIVERY_VAR_ONLYQUOTE=''\\'''
      LIVERY_VAR_EMPTY=''
      ",
        "posts": [
          "/v1/machines/52:54:00:12:34:58/booted",
          "/v1/machines/52:54:00:12:34:58/facts",
        ],
        "resolv": "search lab.example
      nameserver 192.0.2.53
      nameserver 2001:db8::53
      ",
        "stdout": "livery-agent: ignoring a malformed metadata line
      livery-agent: ignoring a malformed metadata line
      livery-agent: booted image min"quoted\\image as rack7-node-12
      livery-agent: facts reported
      ",
      }
    `);
  });

  it('rejects every malformed line and keeps the rest, the last of a repeated key winning', async () => {
    const doc = [
      "LIVERY_HOSTNAME='first'",
      "LIVERY_DOMAIN='bad domain;x'",
      "LIVERY_DNS='10.0.0.1\t10.0.0.2  bad;host 2001:DB8::1 10.0.0.3'",
      '# comment',
      ' # indented comment',
      '',
      "LIVERY_=''",
      "LIVERY__=''",
      "LIVERY_NOEQ",
      "LIVERY_lower='x'",
      "LIVERY_É='x'",
      "  LIVERY_LEADING='x'",
      "LIVERY_CR='x'\r",
      "LIVERY_EQ='a=b=c'",
      "LIVERY_A='a'\\'''",
      "LIVERY_B=''\\'''",
      "LIVERY_C='''",
      "LIVERY_D='\\''",
      "LIVERY_E='",
      "LIVERY_F=''",
      "LIVERY_G='x'y'",
      "LIVERY_H='x'\\''y'\\''z'",
      "LIVERY_I='x'\\\\''y'",
      "LIVERY_J='back\\slash \\'",
      "LIVERY_K=unquoted",
      "LIVERY_L=\"double\"",
      'LIVERY_HOSTNAME=\'second\'',
      "LIVERY_LAST='no newline at the end'",
    ].join('\n');
    expect(await agentOn(doc)).toMatchInlineSnapshot(`
      {
        "bootedImage": "min"quoted\\image",
        "code": 0,
        "etcHostname": "second
      ",
        "hostname": "second",
        "hosts": "127.0.0.1	localhost
      127.0.1.1	second.bad domain;x second
      ::1	localhost ip6-localhost ip6-loopback
      ",
        "metadataEnv": "LIVERY_HOSTNAME='first'
      LIVERY_DOMAIN='bad domain;x'
      LIVERY_DNS='10.0.0.1	10.0.0.2  bad;host 2001:DB8::1 10.0.0.3'
      LIVERY__=''
      LIVERY_EQ='a=b=c'
      LIVERY_A='a'\\'''
      LIVERY_B=''\\'''
      LIVERY_F=''
      LIVERY_H='x'\\''y'\\''z'
      LIVERY_J='back\\slash \\'
      LIVERY_HOSTNAME='second'
      LIVERY_LAST='no newline at the end'
      ",
        "posts": [
          "/v1/machines/52:54:00:12:34:58/booted",
          "/v1/machines/52:54:00:12:34:58/facts",
        ],
        "resolv": "nameserver 10.0.0.1
      nameserver 10.0.0.2
      nameserver 2001:DB8::1
      nameserver 10.0.0.3
      ",
        "stdout": "livery-agent: ignoring a malformed metadata line
      livery-agent: ignoring a malformed metadata line
      livery-agent: ignoring a malformed metadata line
      livery-agent: ignoring a malformed metadata line
      livery-agent: ignoring a malformed metadata line
      livery-agent: ignoring a malformed metadata line
      livery-agent: ignoring a malformed metadata line
      livery-agent: ignoring a malformed metadata line
      livery-agent: ignoring a malformed metadata line
      livery-agent: ignoring a malformed metadata line
      livery-agent: ignoring a malformed metadata line
      livery-agent: ignoring a malformed metadata line
      livery-agent: ignoring a malformed metadata line
      livery-agent: ignoring a malformed metadata line
      livery-agent: booted image min"quoted\\image as second
      livery-agent: facts reported
      ",
      }
    `);
  });

  it('refuses an invalid hostname but still applies DNS and domain', async () => {
    const doc = "LIVERY_HOSTNAME='bad_host.name'\nLIVERY_DNS='192.0.2.1'\nLIVERY_DOMAIN='ok.example'\n";
    expect(await agentOn(doc)).toMatchInlineSnapshot(`
      {
        "bootedImage": "min"quoted\\image",
        "code": 0,
        "etcHostname": null,
        "hostname": "BUILD-HOST",
        "hosts": null,
        "metadataEnv": "LIVERY_HOSTNAME='bad_host.name'
      LIVERY_DNS='192.0.2.1'
      LIVERY_DOMAIN='ok.example'
      ",
        "posts": [
          "/v1/machines/52:54:00:12:34:58/booted",
          "/v1/machines/52:54:00:12:34:58/facts",
        ],
        "resolv": "search ok.example
      nameserver 192.0.2.1
      ",
        "stdout": "livery-agent: ignoring invalid hostname from metadata
      livery-agent: booted image min"quoted\\image as BUILD-HOST
      livery-agent: facts reported
      ",
      }
    `);
  });

  it('takes a hostname of 63 characters and refuses one of 64 or with a dash at an end', async () => {
    const long = `a${'b'.repeat(61)}c`;
    expect((await agentOn(`LIVERY_HOSTNAME='${long}'\n`)).hostname).toBe(long);
    for (const bad of [`${long}d`, '-node', 'node-', 'nöde', 'node 1']) {
      const r = await agentOn(`LIVERY_HOSTNAME='${bad}'\n`);
      expect(r.stdout, bad).toContain('livery-agent: ignoring invalid hostname from metadata\n');
      expect(r.etcHostname, bad).toBeNull();
    }
    expect((await agentOn("LIVERY_HOSTNAME='x'\n")).hostname).toBe('x');
  });

  it('writes an empty metadata.env for an empty document and none when the server has none', async () => {
    const empty = await agentOn('');
    expect(await agentOn('# only a comment\n\n')).toEqual(empty);
    expect(empty).toMatchInlineSnapshot(`
      {
        "bootedImage": "min"quoted\\image",
        "code": 0,
        "etcHostname": null,
        "hostname": "BUILD-HOST",
        "hosts": null,
        "metadataEnv": "",
        "posts": [
          "/v1/machines/52:54:00:12:34:58/booted",
          "/v1/machines/52:54:00:12:34:58/facts",
        ],
        "resolv": null,
        "stdout": "livery-agent: booted image min"quoted\\image as BUILD-HOST
      livery-agent: facts reported
      ",
      }
    `);
    expect(await agentOn('not found', 404)).toMatchInlineSnapshot(`
      {
        "bootedImage": "min"quoted\\image",
        "code": 0,
        "etcHostname": null,
        "hostname": "BUILD-HOST",
        "hosts": null,
        "metadataEnv": null,
        "posts": [
          "/v1/machines/52:54:00:12:34:58/booted",
          "/v1/machines/52:54:00:12:34:58/facts",
        ],
        "resolv": null,
        "stdout": "livery-agent: could not fetch metadata from http://127.0.0.1:PORT for 52:54:00:12:34:58; keeping the current hostname
      livery-agent: booted image min"quoted\\image as BUILD-HOST
      livery-agent: facts reported
      ",
      }
    `);
  });
});
