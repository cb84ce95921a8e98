import type { Cmdb } from '../cmdb/index.js';
import type { Image } from '../cmdb/types.js';
import { conflict } from '../cmdb/errors.js';
import type { Config } from '../config/index.js';
import { decide } from './decide.js';

const MAX_NAMED = 5;

/**
 * Who would boot `image` through the signed chain while enforcing Secure Boot (secureBoot on):
 * known machines, as decide() sees them now, and subnets whose default image (for unknown
 * machines) it is. Call it inside the transaction that moved a channel, so the answer is what
 * the next boot would get.
 */
export function secureBootUsersOf(image: Image, cmdb: Cmdb, config: Config): string[] {
  const users: string[] = [];
  for (const machine of cmdb.machines.mayEnforceSecureBoot(config.boot.secureBoot)) {
    const facts = { mac: machine.macs[0]!, firmware: 'uefi-pxe' as const, arch: 'x86_64' as const, archCode: 7, subnetHint: null, door: 'explain' as const };
    // Whichever node it asks, a machine boots the image once that node holds it: not this node's readiness.
    const plan = decide(facts, { cmdb, config, machine, imageReady: () => true });
    if (plan.image?.id === image.id && plan.chain.chain === 'shim' && plan.chain.secureBoot === 'on') users.push(`machine ${machine.hostname ?? `#${machine.id}`}`);
  }
  for (const subnet of cmdb.subnets.list()) {
    if (subnet.policy !== 'default-image' || (subnet.secureBoot ?? config.boot.secureBoot) !== 'on') continue;
    if (cmdb.images.resolve({ name: subnet.defaultImage.name, channel: subnet.defaultImage.channel, id: null })?.id === image.id) users.push(`subnet ${subnet.name}`);
  }
  return users;
}

/**
 * Refuses to let an image with an unsigned kernel reach machines that enforce Secure Boot:
 * their firmware would refuse the kernel and they would not boot. Images whose signature is
 * not known (bundles without `kernelSigned`) pass.
 */
export function refuseUnsignedForSecureBoot(image: Image, channel: string, cmdb: Cmdb, config: Config): void {
  if (image.manifest.kernelSigned !== false) return;
  const users = secureBootUsersOf(image, cmdb, config);
  if (users.length === 0) return;
  const named = users.slice(0, MAX_NAMED).join(', ') + (users.length > MAX_NAMED ? ` and ${users.length - MAX_NAMED} more` : '');
  throw conflict(
    'kernelSigned',
    `image ${image.name} ${image.version} has an unsigned kernel, and ${named} (secureBoot on) would boot it from ${image.name}@${channel}: ` +
      'firmware enforcing Secure Boot refuses an unsigned kernel. Build it with a signed kernel (Debian signs linux-image-amd64), ' +
      'or set secureBoot off or auto for those machines',
  );
}
