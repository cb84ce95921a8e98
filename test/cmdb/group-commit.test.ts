import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { openCmdb, type SqliteCmdb as Cmdb } from '../../src/cmdb/index.js';
import { tempDir } from '../helpers/tmp.js';

describe('Cmdb.soon: group commit of the boot path’s small writes', () => {
  const dirs: { cleanup(): void }[] = [];
  const open = (): { cmdb: Cmdb; path: string } => {
    const dir = tempDir();
    dirs.push(dir);
    const path = join(dir.path, 'livery.db');
    return { cmdb: openCmdb(path), path };
  };
  afterEach(() => dirs.splice(0).forEach((d) => d.cleanup()));

  it('lands the writes of one event-loop turn in one transaction, each caller getting its own result', async () => {
    const { cmdb } = open();
    const transactions = vi.spyOn(cmdb.db, 'transaction');
    const ids = await Promise.all(Array.from({ length: 50 }, (_, i) => cmdb.soon(() => cmdb.events.add({ type: 'test', detail: { i } }))));
    expect(transactions).toHaveBeenCalledTimes(1);
    expect(new Set(ids).size).toBe(50);
    expect(cmdb.events.tail(0).filter((e) => e.type === 'test').length).toBe(50);
    cmdb.close();
  });

  it('rejects only the write that failed; its neighbours still land', async () => {
    const { cmdb } = open();
    const results = await Promise.allSettled([
      cmdb.soon(() => cmdb.events.add({ type: 'ok-1' })),
      cmdb.soon(() => {
        cmdb.events.add({ type: 'half-done' });
        throw new Error('bad write');
      }),
      cmdb.soon(() => cmdb.events.add({ type: 'ok-2' })),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((results[1] as PromiseRejectedResult).reason.message).toBe('bad write');
    const types = cmdb.events.tail(0).map((e) => e.type);
    expect(types.sort()).toEqual(['ok-1', 'ok-2']);
    cmdb.close();
  });

  it('commits what is still queued when the CMDB is closed', async () => {
    const { cmdb, path } = open();
    const queued = cmdb.soon(() => cmdb.events.add({ type: 'queued-at-close' }));
    cmdb.close();
    expect(await queued).toBeGreaterThan(0);
    const again = openCmdb(path);
    expect(again.events.tail(0).filter((e) => e.type === 'queued-at-close').length).toBe(1);
    again.close();
  });

  it('waits for a write lock held elsewhere past busy_timeout without blocking the event loop', async () => {
    const { cmdb, path } = open();
    const bulk = new Database(path);
    bulk.exec('BEGIN IMMEDIATE');
    bulk.prepare("INSERT INTO events (at, type, detail) VALUES (0, 'bulk', '{}')").run();
    const holdMs = (cmdb.db.pragma('busy_timeout', { simple: true }) as number) + 500;
    // The lock is released by a timer of this same thread: only a loop that keeps turning sees it.
    setTimeout(() => bulk.exec('COMMIT'), holdMs);
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 50);
    const started = Date.now();
    try {
      const id = await cmdb.soon(() => cmdb.events.add({ type: 'boot-step-during-import' }));
      expect(id).toBeGreaterThan(0);
      expect(Date.now() - started).toBeGreaterThanOrEqual(holdMs - 50);
      expect(ticks).toBeGreaterThan(holdMs / 50 / 2);
      expect(cmdb.events.tail(0).map((e) => e.type)).toEqual(['bulk', 'boot-step-during-import']);
    } finally {
      clearInterval(ticker);
      bulk.close();
      cmdb.close();
    }
  }, 30_000);
});
