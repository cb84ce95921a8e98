import { readFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';

export class InterfaceError extends Error {
  override name = 'InterfaceError';
}

/** The served interface: its index, and whether it carries dhcp.address now (else why not). */
export type ServedInterface = { index: number; ready: true } | { index: number; ready: false; why: string };

/**
 * Looks up `name` and whether it carries `address` now. An interface that does not exist is
 * refused (a typo in the config, or the wrong host: serving the wrong segment is worse than
 * not serving). One that exists but does not carry the address yet is not an error: Node
 * lists only links that are up and running, so a bridge whose ports are down, or a switch port
 * that comes up after livery, shows no address until it does; the caller waits for it.
 */
export function servedInterface(name: string, address: string): ServedInterface {
  let index: number;
  try {
    index = Number(readFileSync(`/sys/class/net/${name}/ifindex`, 'utf8').trim());
  } catch {
    const known = Object.keys(networkInterfaces()).join(', ');
    throw new InterfaceError(`dhcp.interface: no interface ${name} on this host (have: ${known})`);
  }
  const addrs = (networkInterfaces()[name] ?? []).filter((a) => a.family === 'IPv4').map((a) => a.address);
  if (addrs.includes(address)) return { index, ready: true };
  const state = linkState(name);
  const why = addrs.length > 0 ? `it has ${addrs.join(', ')}` : state === 'up' ? 'it has no IPv4 address' : `it is not running (operstate ${state}: no carrier, or down)`;
  return { index, ready: false, why: `dhcp.address ${address} is not an address of ${name} yet (${why})` };
}

function linkState(name: string): string {
  try {
    return readFileSync(`/sys/class/net/${name}/operstate`, 'utf8').trim();
  } catch {
    return 'unknown';
  }
}
