import { expect, it } from 'vitest';
import { readingsOf } from '../../src/cmdb/refs.js';

const MACHINE = ['mac', 'id', 'hostname'] as const;

it('reads a MAC with colons as a MAC alone: no hostname can be spelled so', () => {
  expect(readingsOf('02:00:00:0f:04:01', MACHINE)).toEqual([{ kind: 'mac', value: '02:00:00:0f:04:01' }]);
});

it('reads a spelling that is also a valid hostname both ways, and digits as an id too', () => {
  expect(readingsOf('020000ff0401', MACHINE)).toEqual([
    { kind: 'mac', value: '02:00:00:ff:04:01' },
    { kind: 'hostname', value: '020000ff0401' },
  ]);
  expect(readingsOf('0200.00ff.0401', MACHINE).map((r) => r.kind)).toEqual(['mac', 'hostname']);
  expect(readingsOf('02-00-00-ff-04-01', MACHINE).map((r) => r.kind)).toEqual(['mac', 'hostname']);
  expect(readingsOf('12345', MACHINE).map((r) => r.kind)).toEqual(['id', 'hostname']);
  expect(readingsOf('node-7.rack2', MACHINE)).toEqual([{ kind: 'hostname', value: 'node-7.rack2' }]);
});

it('refuses a typed hostname: that no hostname can be', () => {
  expect(() => readingsOf('hostname:52:54:00:ab:cd:01', MACHINE)).toThrow('"52:54:00:ab:cd:01" is not a hostname');
});
