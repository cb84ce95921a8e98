import { afterEach, expect, it } from 'vitest';
import type { Lease } from '../../src/cmdb/leases.js';
import type { SqlCmdb } from '../../src/cmdb/index.js';
import { execRaw } from '../helpers/db-snapshot.js';
import { describeEngines } from '../helpers/cmdb-engines.js';

describeEngines('lease claims, one by one and set-wise', (rig) => {
  let cmdb: SqlCmdb;
  afterEach(() => cmdb?.close());

  const lease = (ip: string, mac: string, subnetId: number, extra: Partial<Lease> = {}): Lease => ({
    ip,
    mac,
    subnetId,
    state: 'bound',
    expiresAt: 1_900_000_000_000,
    clientId: null,
    hostname: null,
    ...extra,
  });
  const table = () => execRaw(cmdb, 'SELECT ip, mac, subnet_id, state, expires_at, client_id, hostname, updated_at FROM leases ORDER BY ip');

  it('claimMany refuses and leaves exactly what claiming each lease in order does', () => {
    cmdb = rig().open();
    const a = cmdb.subnets.create({ name: 'a', cidr: '10.20.0.0/24', pools: [{ start: '10.20.0.10', end: '10.20.0.200' }] }).id;
    const b = cmdb.subnets.create({ name: 'b', cidr: '10.21.0.0/24', pools: [{ start: '10.21.0.10', end: '10.21.0.200' }] }).id;
    const before = [
      lease('10.20.0.10', '02:00:00:00:00:01', a), // moves to .20: this row goes
      lease('10.20.0.11', '02:00:00:00:00:02', a, { state: 'released' }), // released: taken over by another MAC
      lease('10.21.0.10', '02:00:00:00:00:01', b), // the same MAC in another subnet stays
      lease('10.20.0.12', '02:00:00:00:00:03', a), // untouched
      lease('10.20.0.13', '02:00:00:00:00:06', a), // live: another MAC's claim is refused
      lease('10.20.0.14', '02:00:00:00:00:07', a), // live, but a reservation takes it
    ];
    const batch = [
      { lease: lease('10.20.0.20', '02:00:00:00:00:01', a, { hostname: 'n1' }), now: 1000 },
      { lease: lease('10.20.0.11', '02:00:00:00:00:04', a, { clientId: '01:02', state: 'declined' }), now: 1001 },
      { lease: lease('10.21.0.11', '02:00:00:00:00:05', b), now: 1002 },
      { lease: lease('10.20.0.13', '02:00:00:00:00:08', a), now: 1003 },
      { lease: lease('10.20.0.14', '02:00:00:00:00:09', a), now: 1004, force: true },
    ].map((c) => ({ force: false, ...c }));
    const seed = () => {
      execRaw(cmdb, 'DELETE FROM leases');
      cmdb.tx(() => before.forEach((l) => cmdb.leases.claim(l, 1)));
    };
    seed();
    const refusedOneByOne = cmdb.tx(() => batch.filter(({ lease: l, now, force }) => !cmdb.leases.claim(l, now, force)).map((c) => c.lease.ip));
    const oneByOne = table();
    seed();
    expect(cmdb.tx(() => cmdb.leases.claimMany(batch))).toEqual(refusedOneByOne);
    expect(table()).toEqual(oneByOne);
    expect(refusedOneByOne).toEqual(['10.20.0.13']);
    expect(oneByOne.map((r) => r.mac)).toEqual([
      '02:00:00:00:00:04',
      '02:00:00:00:00:03',
      '02:00:00:00:00:06',
      '02:00:00:00:00:09',
      '02:00:00:00:00:01',
      '02:00:00:00:00:01',
      '02:00:00:00:00:05',
    ]);
  });
});
