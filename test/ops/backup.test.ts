/**
 * `livery backup` while livery serves DHCP under perfdhcp load and takes a publish, then
 * `livery restore` into an empty data dir: the copy is sound, holds every lease ACKed before
 * the backup began and every image published before it, and a livery started on it serves
 * those images byte for byte. A damaged backup restores nothing; an old schema is copied
 * before a migration touches it.
 */
import Database from 'better-sqlite3';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openCmdb } from '../../src/cmdb/index.js';
import { MIGRATIONS } from '../../src/cmdb/migrations.js';
import { databasePath } from '../../src/daemon/paths.js';
import { makeBundle, randomArtifacts, sha256 } from '../helpers/bundle.js';
import { livery, liveryAsync, serveUntilListening } from '../helpers/cli.js';
import { startLiveryInNs, type NsLivery } from '../helpers/livery-ns.js';
import { createTestNet, NETNS_SKIP, type TestNet } from '../helpers/netns.js';
import { startPerfdhcp, type PerfdhcpRun } from '../helpers/perfdhcp.js';
import { tempDir } from '../helpers/tmp.js';

const SERVER = '10.99.0.1';
const RELAY = '10.100.0.1';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function boundLeases(dataDir: string): Map<string, number> {
  const db = new Database(databasePath(dataDir), { readonly: true });
  try {
    const rows = db.prepare("SELECT mac, ip FROM leases WHERE state = 'bound'").all() as { mac: string; ip: number }[];
    return new Map(rows.map((r) => [r.mac, r.ip]));
  } finally {
    db.close();
  }
}

describe.skipIf(NETNS_SKIP)(NETNS_SKIP ? `backup test skipped: ${NETNS_SKIP}` : 'backup and restore of a serving livery', () => {
  const dir = tempDir();
  const dataDir = join(dir.path, 'var');
  const restored = join(dir.path, 'restored');
  const backupFile = join(dir.path, 'livery.tar');
  let net: TestNet;
  let served: NsLivery | undefined;
  let perfdhcp: PerfdhcpRun | undefined;

  beforeAll(async () => {
    net = createTestNet({ serverAddress: `${SERVER}/24`, clientAddresses: ['10.99.0.2/24', `${RELAY}/16`], routes: [{ ns: 'server', to: '10.100.0.0/16', via: '10.99.0.2' }] });
    const cmdb = openCmdb(databasePath(dataDir));
    cmdb.subnets.create({ name: 'racks', cidr: '10.100.0.0/16', gateway: RELAY, pools: [{ start: '10.100.1.0', end: '10.100.255.254' }], policy: 'discover' });
    cmdb.close();
    served = await startLiveryInNs(net, dir.path, {
      dataDir,
      http: { listen: `${SERVER}:8080`, workers: 1 },
      tftp: { enabled: false },
      dhcp: { enabled: true, interface: net.serverIf, address: SERVER },
    });
  });

  afterAll(async () => {
    await perfdhcp?.stop().catch(() => undefined);
    await served?.stop();
    net?.remove();
    dir.cleanup();
  });

  /** Publishes a bundle with Debian's curl inside the server namespace; resolves with the HTTP status. */
  function publish(tar: Buffer, rate?: string): Promise<{ status: number; body: string }> {
    const file = join(dir.path, `bundle-${Date.now()}.tar`);
    writeFileSync(file, tar);
    const token = readFileSync(join(dataDir, 'admin.token'), 'utf8').trim();
    const args = ['-sS', '-o', '-', '-w', '\n%{http_code}', '-H', `authorization: Bearer ${token}`, '-H', 'content-type: application/x-tar', '--data-binary', `@${file}`, ...(rate ? ['--limit-rate', rate] : []), `http://${SERVER}:8080/v1/images`];
    const proc = net.spawn(net.server, 'curl', args);
    let out = '';
    proc.stdout!.on('data', (d) => (out += d));
    proc.stderr!.on('data', (d) => (out += d));
    const guard = setTimeout(() => proc.kill('SIGKILL'), 120_000);
    return new Promise((resolve) =>
      proc.once('exit', () => {
        clearTimeout(guard);
        const lines = out.trimEnd().split('\n');
        resolve({ status: Number(lines.at(-1)), body: lines.slice(0, -1).join('\n') });
      }),
    );
  }

  it('backs up under DHCP load and during a publish; the restore holds every ACKed lease and published image', async () => {
    const base = await makeBundle('bk', 'v1');
    const first = await publish(base.tar);
    expect(first.status, first.body).toBe(201);
    const baseId = (JSON.parse(first.body) as { id: string }).id;

    perfdhcp = startPerfdhcp(net, { server: SERVER, relay: RELAY, rate: 200, clients: 4000, seconds: 40 });
    for (let waited = 0; boundLeases(dataDir).size < 100; waited += 200) {
      if (waited > 30_000) throw new Error(`perfdhcp got fewer than 100 leases in 30 s:\n${served!.output().slice(-2000)}`);
      await sleep(200);
    }
    // Slowed down so the backup surely runs while this publish is still streaming in.
    const later = await makeBundle('bk', 'v2', randomArtifacts({ rootfs: 24 << 20 }));
    const publishing = publish(later.tar, '6M');
    await sleep(500);
    const ackedBefore = boundLeases(dataDir);
    const backup = await liveryAsync(['backup', '--data-dir', dataDir, '--to', backupFile, '--json']);
    expect(backup.code, backup.stderr).toBe(0);
    const leasesAfterBackup = boundLeases(dataDir).size;
    const second = await publishing;
    expect(second.status, second.body).toBe(201);
    const load = await perfdhcp.stop();
    perfdhcp = undefined;
    // The load really ran across the backup.
    expect(leasesAfterBackup).toBeGreaterThan(ackedBefore.size);
    expect(load.request.received).toBeGreaterThan(ackedBefore.size);
    expect(JSON.parse(backup.stdout)).toMatchObject({ file: backupFile, schemaVersion: MIGRATIONS.length, blobs: base.artifacts.length });

    const restore = livery(['restore', backupFile, '--data-dir', restored]);
    expect(restore.code, restore.stderr).toBe(0);
    const cmdb = openCmdb(databasePath(restored));
    try {
      expect(cmdb.integrityCheck()).toBe('ok');
      const images = cmdb.images.list();
      expect(images.map((i) => i.version)).toEqual(['v1']);
      const restoredLeases = new Map((cmdb.db.prepare("SELECT mac, ip FROM leases WHERE state = 'bound'").all() as { mac: string; ip: number }[]).map((r) => [r.mac, r.ip]));
      const lost = [...ackedBefore].filter(([mac, ip]) => restoredLeases.get(mac) !== ip);
      expect(lost, 'leases ACKed before the backup began but missing from it').toEqual([]);
    } finally {
      cmdb.close();
    }
    expect(readFileSync(join(restored, 'secret.key'))).toEqual(readFileSync(join(dataDir, 'secret.key')));

    // A livery on the restored data dir serves the image byte for byte.
    const copy = await serveUntilListening(['--data-dir', restored, '--http-listen', '127.0.0.1:0', '--no-tftp']);
    try {
      for (const a of base.artifacts) {
        const r = await fetch(`${copy.url}/images/${baseId}/${a.name}`);
        expect(r.status, a.name).toBe(200);
        expect(sha256(Buffer.from(await r.arrayBuffer()))).toBe(sha256(a.content));
      }
    } finally {
      await copy.stop();
    }
  });

  it('restores nothing from a damaged backup, and names what is wrong', () => {
    const tar = readFileSync(backupFile);
    // Flip one byte inside the first blob's data: its tar header is a 512-byte block starting with its name.
    let header = tar.indexOf('blobs/sha256/');
    while (header % 512 !== 0) header = tar.indexOf('blobs/sha256/', header + 1);
    const at = header + 512 + 100;
    const damaged = Buffer.from(tar);
    damaged[at] = damaged[at]! ^ 0xff;
    const file = join(dir.path, 'damaged.tar');
    writeFileSync(file, damaged);
    const target = join(dir.path, 'from-damaged');
    const r = livery(['restore', file, '--data-dir', target]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/blobs\/sha256\/[0-9a-f]{2}\/[0-9a-f]{64} does not match its sha256 in backup\.json: the backup is damaged/);
    expect(readdirSync(target)).toEqual([]);
  });

  it('refuses to restore over a data dir that holds anything', () => {
    const r = livery(['restore', backupFile, '--data-dir', restored]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('is not empty (');
    expect(r.stderr).toContain('livery.db');
  });
});

describe('before a schema migration', () => {
  it('copies the database as it was and says where', async () => {
    const dir = tempDir();
    try {
      const dataDir = join(dir.path, 'var');
      mkdirSync(dataDir);
      const old = new Database(databasePath(dataDir));
      // As livery's own migrate() does: a migration may edit sqlite_schema, which defensive mode forbids.
      old.unsafeMode(true);
      for (const sql of MIGRATIONS.slice(0, -1)) old.exec(sql);
      old.pragma(`user_version = ${MIGRATIONS.length - 1}`);
      old.prepare("INSERT INTO subnets (name, cidr, network, prefix, created_at, updated_at) VALUES ('kept', '10.5.0.0/24', 168099840, 24, 0, 0)").run();
      old.close();

      const started = await serveUntilListening(['--data-dir', dataDir, '--http-listen', '127.0.0.1:0', '--no-tftp']);
      await started.stop();
      const copies = readdirSync(join(dataDir, 'backups'));
      expect(copies).toHaveLength(1);
      expect(copies[0]).toMatch(new RegExp(`^livery-schema${MIGRATIONS.length - 1}-.*\\.db$`));
      expect(started.output()).toContain(join(dataDir, 'backups', copies[0]!));
      const copy = new Database(join(dataDir, 'backups', copies[0]!), { readonly: true });
      expect(copy.pragma('user_version', { simple: true })).toBe(MIGRATIONS.length - 1);
      expect(copy.prepare('SELECT name FROM subnets').all()).toEqual([{ name: 'kept' }]);
      copy.close();
      expect(existsSync(join(dataDir, 'livery.db'))).toBe(true);
    } finally {
      dir.cleanup();
    }
  });
});
