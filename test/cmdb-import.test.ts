import Database from 'better-sqlite3';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CmdbError, openCmdb, type Cmdb } from '../src/cmdb/index.js';
import { importMachines, ImportError, type ImportRow } from '../src/cmdb/import.js';
import { dumpTables } from './helpers/db-snapshot.js';
import { tempDir } from './helpers/tmp.js';

let dir: ReturnType<typeof tempDir>;
let cmdb: Cmdb;
const file = () => join(dir.path, 'livery.db');

beforeEach(() => {
  dir = tempDir();
  cmdb = openCmdb(file());
});
afterEach(() => {
  cmdb.close();
  dir.cleanup();
});

const mac = (i: number) => `0a:00:00:${[(i >> 16) & 255, (i >> 8) & 255, i & 255].map((b) => b.toString(16).padStart(2, '0')).join(':')}`;
const rows = (n: number): ImportRow[] => Array.from({ length: n }, (_, i) => ({ line: i + 2, input: { macs: [mac(i)], hostname: `n-${i}` } }));

describe('machine import: checked before the write lock, applied all or nothing', () => {
  it('aborts with a conflict, writing nothing, when a MAC it checked is registered before it applies', async () => {
    const before = dumpTables(cmdb.db);
    const importing = importMachines(cmdb, 'ops', rows(5_000));
    // The check yields to the event loop between chunks of rows: a DHCP writer (its own
    // connection) registers the first row's MAC, already checked as new, meanwhile.
    await new Promise((r) => setImmediate(r));
    const dhcp = new Database(file());
    dhcp.prepare("INSERT INTO machines (id, state, created_at, updated_at) VALUES (9999, 'discovered', 0, 0)").run();
    dhcp.prepare('INSERT INTO machine_macs (mac, machine_id, position) VALUES (?, 9999, 0)').run(mac(0));
    dhcp.close();
    const err = await importing.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CmdbError);
    expect((err as CmdbError).kind).toBe('conflict');
    expect((err as Error).message).toBe(`import: MAC ${mac(0)} was given to machine 9999 meanwhile; nothing was changed, retry the import`);
    const after = dumpTables(cmdb.db);
    expect(after.machines).toEqual([...before.machines!, expect.objectContaining({ id: 9999 })]);
    expect(after.audit_log).toEqual(before.audit_log);
  });

  it('aborts when a machine it updates is edited before it applies', async () => {
    const m = cmdb.machines.create({ macs: [mac(0)], hostname: 'old' });
    const importing = importMachines(cmdb, 'ops', [{ line: 2, input: { macs: [mac(0)], hostname: 'renamed' } }, ...rows(2_000).slice(1)]);
    await new Promise((r) => setImmediate(r));
    const other = new Database(file());
    other.prepare('UPDATE machines SET site = ?, updated_at = updated_at + 1 WHERE id = ?').run('moved', m.id);
    other.close();
    await expect(importing).rejects.toThrow(`import: machine ${m.id} was changed meanwhile`);
    expect(cmdb.machines.count()).toBe(1);
    expect(cmdb.machines.get(m.id)).toMatchObject({ hostname: 'old', site: 'moved' });
  });

  it('checks each row against the rows before it in the same file', async () => {
    const before = dumpTables(cmdb.db);
    const input: ImportRow[] = [
      { line: 2, input: { macs: [mac(1)], hostname: 'a', ip: '10.9.0.5' } },
      { line: 3, input: { macs: [mac(2), mac(1)], hostname: 'b' } },
      { line: 4, input: { macs: [mac(3)], hostname: 'A' } },
      { line: 5, input: { macs: [mac(4)], ip: '10.9.0.5' } },
    ];
    const err = (await importMachines(cmdb, 'ops', input).catch((e: unknown) => e)) as ImportError;
    expect(err).toBeInstanceOf(ImportError);
    expect(err.problems).toEqual([
      { line: 3, error: `macs: MAC ${mac(1)} already belongs to machine a` },
      { line: 4, error: 'hostname: hostname a is already taken' },
      { line: 5, error: 'ip: 10.9.0.5 is already reserved for machine a' },
    ]);
    expect(dumpTables(cmdb.db)).toEqual(before);
  });

  it('creates and updates in one go, with one audit row, and moves the change counter as single writes do', async () => {
    const kept = cmdb.machines.create({ macs: [mac(0)], hostname: 'n-0' });
    const edited = cmdb.machines.create({ macs: [mac(1)], hostname: 'before' });
    const counter = cmdb.machines.changeCount();
    const result = await importMachines(cmdb, 'ops', [...rows(3), { line: 5, input: { macs: [mac(3), mac(4)], labels: { rack: 'r1' } } }]);
    expect(result).toEqual({ created: 2, updated: 1, unchanged: 1 });
    expect(cmdb.machines.get(kept.id).hostname).toBe('n-0');
    expect(cmdb.machines.get(edited.id).hostname).toBe('n-1');
    expect(cmdb.machines.find(mac(4))).toMatchObject({ macs: [mac(3), mac(4)], labels: { rack: 'r1' }, state: 'registered' });
    expect(cmdb.machines.find('n-2')).toMatchObject({ macs: [mac(2)], state: 'registered' });
    // Migration 3's triggers: the edited machine's row and its MACs (rewritten, as update() does),
    // and the second MAC of a new machine; nothing for the unchanged one.
    expect(cmdb.machines.changeCount()).toBe(counter + 3);
    expect(cmdb.audit.list().filter((a) => a.action === 'machine.import')).toEqual([
      expect.objectContaining({ actor: 'ops', target: '4 rows', detail: { created: 2, updated: 1, unchanged: 1 } }),
    ]);
  });
});
