import type { SocketOptions } from 'node:dgram';

/**
 * A dgram `lookup` for sockets that only ever send to IP literals (taken from rinfo or from a
 * packet). Node resolves every send's address through dns.lookup otherwise, costing each
 * packet a regex and a nextTick; answering at once also makes send() hand the packet to the
 * kernel synchronously, so one sent just before close() is not lost.
 */
export function ipLiteralLookup(family: 4 | 6): NonNullable<SocketOptions['lookup']> {
  return (address, _options, callback) => callback(null, address, family);
}
