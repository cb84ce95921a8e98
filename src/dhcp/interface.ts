import { readFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';

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
