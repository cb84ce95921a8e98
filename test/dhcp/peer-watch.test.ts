import { PassThrough } from 'node:stream';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { dhcpMetrics } from '../../src/dhcp/metrics.js';
import { watchPeers } from '../../src/dhcp/peer-watch.js';
import { createLogger } from '../../src/log.js';

describe('watching the peers on the segment', () => {
  afterEach(() => vi.useRealTimers());

  it('logs once when a peer dies and once when it returns, and shows it in livery_dhcp_peer_up', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    const out = new PassThrough();
    const lines: { msg: string; node: string }[] = [];
    out.on('data', (d: Buffer) => d.toString().trim().split('\n').forEach((l) => lines.push(JSON.parse(l))));
    const registry = new Registry();
    const alive = new Set(['b', 'c']);
    const stop = watchPeers(['b', 'c'], (n) => alive.has(n), dhcpMetrics(registry).peerUp, createLogger('info', 'test', out));
    const gauge = async () => (await registry.getSingleMetric('livery_dhcp_peer_up')!.get()).values.map((v) => [v.labels.node, v.value]);
    expect(await gauge()).toEqual([['b', 1], ['c', 1]]);
    alive.delete('b');
    vi.advanceTimersByTime(3000);
    expect(await gauge()).toEqual([['b', 0], ['c', 1]]);
    alive.add('b');
    vi.advanceTimersByTime(1000);
    stop();
    await new Promise((r) => setImmediate(r));
    expect(lines.map((l) => [l.node, l.msg.split(':')[0]])).toEqual([
      ['b', 'dhcp peer is not alive (no fresh heartbeat)'],
      ['b', 'dhcp peer is alive'],
    ]);
  });
});
