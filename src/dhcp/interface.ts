import type { Socket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { networkInterfaces } from 'node:os';

const require = createRequire(import.meta.url);

/** Linux SO_BINDTOIFINDEX (5.0+): confines a socket to one interface by index, an integer option. */
const SOL_SOCKET = 1;
const SO_BINDTOIFINDEX = 62;

export class InterfaceError extends Error {
  override name = 'InterfaceError';
}

/**
 * Checks that `name` exists and carries `address`, and returns its index. DHCP is refused at
 * start otherwise: serving the wrong segment is worse than not serving.
 */
export function servedInterface(name: string, address: string): number {
  let index: number;
  try {
    index = Number(readFileSync(`/sys/class/net/${name}/ifindex`, 'utf8').trim());
  } catch {
    const known = Object.keys(networkInterfaces()).join(', ');
    throw new InterfaceError(`dhcp.interface: no interface ${name} on this host (have: ${known})`);
  }
  const addrs = (networkInterfaces()[name] ?? []).filter((a) => a.family === 'IPv4').map((a) => a.address);
  if (!addrs.includes(address)) {
    throw new InterfaceError(`dhcp.address: ${address} is not an address of ${name} (it has ${addrs.join(', ') || 'no IPv4 address'})`);
  }
  return index;
}

/**
 * Node's dgram cannot say which interface a broadcast arrived on, so the socket is confined
 * to the served interface instead: after this, it neither receives nor sends on any other.
 * Uses the `sockopt` addon on the socket's file descriptor.
 */
export function bindToInterface(socket: Socket, ifindex: number): void {
  const { setsockopt, getsockopt } = require('sockopt') as {
    setsockopt: (s: unknown, level: number, name: number, value: number) => void;
    getsockopt: (s: unknown, level: number, name: number) => number;
  };
  // sockopt reads `_handle.fd`; hand it the descriptor without touching the deprecated getter.
  const state = Object.getOwnPropertySymbols(socket).find((s) => s.description === 'state symbol');
  const fd = state ? (socket as unknown as Record<symbol, { handle?: { fd?: number } }>)[state]?.handle?.fd : undefined;
  if (typeof fd !== 'number' || fd < 0) throw new InterfaceError('cannot confine the DHCP socket: no file descriptor (Node internals changed?)');
  setsockopt({ _handle: { fd } }, SOL_SOCKET, SO_BINDTOIFINDEX, ifindex);
  if (getsockopt({ _handle: { fd } }, SOL_SOCKET, SO_BINDTOIFINDEX) !== ifindex) {
    throw new InterfaceError('cannot confine the DHCP socket to its interface (SO_BINDTOIFINDEX needs Linux 5.0 or newer)');
  }
}
