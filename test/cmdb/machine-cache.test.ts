import { isDeepStrictEqual } from 'node:util';
import { afterEach, expect, it, vi } from 'vitest';
import { MachineCache, type Cmdb } from '../../src/cmdb/index.js';
import { CHECK_INTERVAL_MS } from '../../src/cmdb/machine-cache.js';
import { discoveredMachine } from '../../src/cmdb/machine-rows.js';
import { describeEngines } from '../helpers/cmdb-engines.js';

/** Long enough for the cache to read the change counter again. */
const nextCheck = () => new Promise((resolve) => setTimeout(resolve, CHECK_INTERVAL_MS + 1));

/**
 * What `read` gives once a check has seen the change, or after 10 s: on PostgreSQL the change
 * reaches the cache's connection as a NOTIFY, a moment after the commit (longer on a loaded machine).
 */
async function afterChecks<T>(read: () => T, expected: unknown): Promise<T> {
  const deadline = Date.now() + 10_000;
  await nextCheck();
  let value = read();
  while (!isDeepStrictEqual(value, expected) && Date.now() < deadline) {
    await nextCheck();
    value = read();
  }
  return value;
}

describeEngines('MachineCache: the DHCP server’s machines by MAC, dropped when any process changes one', (rig) => {
  const cleanups: (() => void)[] = [];
  afterEach(() => cleanups.splice(0).reverse().forEach((c) => c()));
  /** The server's connection (with the cache) and an operator's, as the HTTP API would be: one database. */
  const open = (): { server: Cmdb; operator: Cmdb; cache: MachineCache } => {
    const server = rig().open();
    const operator = rig().open();
    cleanups.push(() => server.close(), () => operator.close());
    operator.subnets.create({ name: 'lab', cidr: '10.9.0.0/24' });
    operator.machines.create({ macs: ['52:54:00:00:00:01'], hostname: 'node1' });
    return { server, operator, cache: new MachineCache(server.machines) };
  };

  it('sees every kind of edit from another connection once the check interval has passed', async () => {
    const { operator, cache } = open();
    const mac = '52:54:00:00:00:01';
    expect(cache.byCanonicalMac(mac)?.hostname).toBe('node1');
    const edits: [string, () => void, (c: MachineCache) => unknown, unknown][] = [
      ['hostname', () => operator.machines.update(mac, { hostname: 'node2' }), (c) => c.byCanonicalMac(mac)?.hostname, 'node2'],
      ['reservation', () => operator.machines.update(mac, { ip: '10.9.0.7' }), (c) => c.byCanonicalMac(mac)?.ip, '10.9.0.7'],
      ['Secure Boot (the loader DHCP names)', () => operator.machines.update(mac, { secureBoot: 'on' }), (c) => c.byCanonicalMac(mac)?.secureBoot, 'on'],
      ['subnet rename', () => { operator.machines.update(mac, { subnet: 'lab' }); operator.subnets.update('lab', { name: 'lab2' }); }, (c) => c.byCanonicalMac(mac)?.subnet, 'lab2'],
      ['second MAC', () => operator.machines.update(mac, { macs: [mac, '52:54:00:00:00:02'] }), (c) => c.byCanonicalMac(mac)?.macs.length, 2],
      ['retire', () => operator.machines.retire(mac), (c) => c.byCanonicalMac(mac)?.state, 'retired'],
      ['purge', () => operator.machines.purge(mac), (c) => c.byCanonicalMac(mac), null],
    ];
    for (const [what, edit, read, expected] of edits) {
      edit();
      expect(await afterChecks(() => read(cache), expected), what).toEqual(expected);
    }
  });

  it('sees an edit through its own connection at the very next lookup, and reads no counter between checks otherwise', () => {
    const { server, operator, cache } = open();
    const mac = '52:54:00:00:00:01';
    // The cache's clock stands still: no check interval passes, however slow the round trips.
    vi.useFakeTimers({ toFake: ['performance'] });
    cleanups.push(() => vi.useRealTimers());
    expect(cache.byCanonicalMac(mac)?.hostname).toBe('node1');
    const counterReads = vi.spyOn(server.machines, 'changeCount');
    // Another connection's edit waits for the check interval (no counter read until then)...
    operator.machines.update(mac, { hostname: 'other' });
    expect(cache.byCanonicalMac(mac)?.hostname).toBe('node1');
    expect(counterReads).not.toHaveBeenCalled();
    // ...while one through the cache's own connection (the API in the same process) is seen at once.
    server.machines.update(mac, { kernelArgs: 'own=1' });
    expect(cache.byCanonicalMac(mac)).toMatchObject({ hostname: 'other', kernelArgs: 'own=1' });
    expect(counterReads).toHaveBeenCalledTimes(1);
  });

  it('keeps serving its copy through last-seen stamps and new machines, which change nobody it holds', async () => {
    const { server, operator, cache } = open();
    const mac = '52:54:00:00:00:01';
    const first = cache.byCanonicalMac(mac)!;
    const before = server.machines.changeCount();
    operator.machines.touchLastSeen(first.id);
    operator.machines.add({ macs: ['52:54:00:00:00:09'], state: 'discovered' });
    await nextCheck();
    expect(server.machines.changeCount()).toBe(before);
    expect(cache.byCanonicalMac(mac)).toBe(first);
    // A MAC never looked up before is found at once.
    expect(cache.byCanonicalMac('52:54:00:00:00:09')?.state).toBe('discovered');
  });

  it('keeps a MAC it found no machine for until a MAC is registered, by any connection', async () => {
    const { server, operator, cache } = open();
    const lookups = vi.spyOn(server.machines, 'byCanonicalMac');
    const unknown = '52:54:00:00:00:0c';
    expect(cache.byCanonicalMac(unknown)).toBeNull();
    await nextCheck();
    expect(cache.byCanonicalMac(unknown)).toBeNull();
    expect(lookups).toHaveBeenCalledTimes(1);
    const hits = cache.byCanonicalMac('52:54:00:00:00:01');
    operator.machines.add({ macs: [unknown], state: 'discovered' });
    expect(await afterChecks(() => cache.byCanonicalMac(unknown)?.state, 'discovered')).toBe('discovered');
    // Registering dropped only what the cache did not know: the machines it held are still its copies.
    expect(cache.byCanonicalMac('52:54:00:00:00:01')).toBe(hits);
  });

  it('takes in machines a committed batch registered, exactly as a lookup reads them, unless the counter moved since', async () => {
    const { server, operator, cache } = open();
    const lookups = vi.spyOn(server.machines, 'byCanonicalMac');
    cache.byCanonicalMac('52:54:00:00:00:01'); // a first check: the cache holds the counter's value
    lookups.mockClear();
    const at = Date.now();
    const id = operator.machines.addDiscoveredMany(['52:54:00:00:00:0a'], at)[0]!;
    cache.remember({ discovered: [['52:54:00:00:00:0a', id, at]], changeCount: server.machines.changeCount() });
    const remembered = cache.byCanonicalMac('52:54:00:00:00:0a');
    expect(lookups).not.toHaveBeenCalled();
    expect(remembered).toEqual(server.machines.byCanonicalMac('52:54:00:00:00:0a'));
    expect(remembered).toEqual(discoveredMachine(id, '52:54:00:00:00:0a', at));
    // Stale: an edit moved the counter after the commit that registered it.
    const other = operator.machines.addDiscoveredMany(['52:54:00:00:00:0b'], at)[0]!;
    const counterAtCommit = server.machines.changeCount();
    operator.machines.update('52:54:00:00:00:0b', { hostname: 'named-meanwhile' });
    expect(await afterChecks(() => server.machines.changeCount() > counterAtCommit, true)).toBe(true);
    await nextCheck();
    cache.byCanonicalMac('52:54:00:00:00:01'); // this check sees the edit
    cache.remember({ discovered: [['52:54:00:00:00:0b', other, at]], changeCount: counterAtCommit });
    expect(cache.byCanonicalMac('52:54:00:00:00:0b')?.hostname).toBe('named-meanwhile');
  });
});
