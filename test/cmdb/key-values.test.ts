import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatKeyValues, parseKeyValueLists, parseKeyValues } from '../../src/cmdb/key-values.js';
import { liveryAsync } from '../helpers/cli.js';
import { dumpTables } from '../helpers/db-snapshot.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

describe('the k=v list format', () => {
  it('reads , and ; as separators, and quoted values as JSON strings', () => {
    expect(parseKeyValues('labels', 'rack=r0,role=compute')).toEqual({ rack: 'r0', role: 'compute' });
    expect(parseKeyValues('labels', ' rack = r0 ; role=compute ')).toEqual({ rack: 'r0', role: 'compute' });
    expect(parseKeyValues('labels', 'note="a,b;c=d \\"e\\"",empty=')).toEqual({ note: 'a,b;c=d "e"', empty: '' });
    expect(parseKeyValues('labels', '')).toEqual({});
  });

  it('refuses what it would have to guess at, naming the field', () => {
    for (const [text, why] of [
      ['rack=r0=x', /^labels: the value of "rack" holds '=', a quote or a backslash and is ambiguous; quote it/],
      ['rack', /no '=' after key "rack"/],
      ['=x', /missing key/],
      ['a=1,a=2', /key "a" given twice/],
      ['a=1,', /trailing separator/],
      ['a="open', /unterminated quoted value/],
      ['a="x"y', /expected , or ; after a value/],
      ['a="\\q"', /bad escape/],
      ['a=b\\c', /ambiguous; quote it/],
    ] as const) {
      expect(() => parseKeyValues('labels', text), text).toThrow(why);
    }
    expect(() => parseKeyValueLists('--label', ['a=1', 'a=2'])).toThrow('--label: key "a" given twice');
  });

  it('prints what it reads back, for any labels', () => {
    const key = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._/-]{0,10}$/);
    fc.assert(fc.property(fc.dictionary(key, fc.string({ maxLength: 12 }), { maxKeys: 5 }), (labels) => {
      expect(parseKeyValues('labels', formatKeyValues(labels))).toEqual(labels);
    }), { numRuns: 500 });
    expect(formatKeyValues({ rack: 'r0,role=compute' })).toBe('rack="r0,role=compute"');
  });
});

describe('CSV import, ?label= and the CLI share it', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer();
  });
  afterAll(() => s.stop());
  const csv = (body: string) => s.api('/v1/machines/import', { method: 'POST', body, headers: { 'content-type': 'text/csv' } });

  it('a labels cell with , is two labels; an ambiguous one is refused with its line', async () => {
    const ok = await csv('mac,hostname,labels,vars\n52:54:00:60:00:01,kv1,"rack=r0,role=compute",A=1;B=2\n52:54:00:60:00:02,kv2,"note=""x,y""",\n');
    expect(await ok.json()).toEqual({ created: 2, updated: 0, unchanged: 0 });
    expect(s.livery.cmdb.machines.get('kv1')).toMatchObject({ labels: { rack: 'r0', role: 'compute' }, vars: { A: '1', B: '2' } });
    expect(s.livery.cmdb.machines.get('kv2').labels).toEqual({ note: 'x,y' });

    const before = dumpTables(s.livery.cmdb);
    const bad = await csv('mac,labels\n52:54:00:60:00:03,rack=r0\n52:54:00:60:00:04,rack=r0=x\n');
    expect(bad.status).toBe(400);
    expect((await bad.json()).problems).toEqual([{ line: 3, error: expect.stringMatching(/^labels: the value of "rack" holds '='.*quote it/) }]);
    expect(dumpTables(s.livery.cmdb)).toEqual(before);
  });

  it('?label= takes the same lists', async () => {
    const q = encodeURIComponent('rack=r0,role=compute');
    const list = await (await s.api(`/v1/machines?label=${q}`)).json();
    expect(list.items.map((m: { hostname: string }) => m.hostname)).toEqual(['kv1']);
  });

  const livery = (args: string[]) => liveryAsync(args, { LIVERY_URL: s.url, LIVERY_TOKEN: s.token });

  it('the CLI sets labels with the same format and prints them unambiguously', async () => {
    const add = await livery(['machine', 'add', '--mac', '52:54:00:60:00:05', '--hostname', 'kv5', '--label', 'rack=r1,role=db', '--label', 'note="a,b"']);
    expect(add.stderr).toBe('');
    expect(s.livery.cmdb.machines.get('kv5').labels).toEqual({ rack: 'r1', role: 'db', note: 'a,b' });
    const table = (await livery(['machine', 'list'])).stdout;
    expect(table).toMatch(/kv1 .* rack=r0,role=compute /);
    expect(table).toMatch(/kv5 .* rack=r1,role=db,note="a,b" /);
    const bad = await livery(['machine', 'add', '--mac', '52:54:00:60:00:06', '--label', 'rack=r0=x']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('--label: the value of "rack"');
  });
});
