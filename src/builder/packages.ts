import type { Recipe } from './recipe-types.js';

/** Debian's kernel meta-package per architecture. */
const KERNEL_PACKAGE: Record<string, string> = {
  amd64: 'linux-image-amd64',
  arm64: 'linux-image-arm64',
};

export interface PackagePlan {
  /** Sorted, unique: the recipe's packages plus what the builder and the recipe's settings need. */
  install: string[];
  /** `-pkg` names, purged after bootstrap in case a dependency pulled them in. */
  purge: string[];
}

/** Packages every image needs, each with the reason, so a `-pkg` that removes one is explained. */
function requiredPackages(recipe: Recipe): Map<string, string> {
  const kernel = KERNEL_PACKAGE[recipe.base.arch];
  if (kernel === undefined) throw new Error(`no kernel package known for architecture ${recipe.base.arch} (supported: ${Object.keys(KERNEL_PACKAGE).join(', ')})`);
  const required = new Map<string, string>([
    [kernel, 'the image boots this kernel and its modules'],
    ['systemd-sysv', 'the image boots systemd'],
    ['busybox-static', 'livery builds the initramfs from it'],
    ['curl', 'livery-agent fetches metadata and phones home with it'],
    // init-system-helpers depends on "usrmerge | usr-is-merged"; naming the second keeps perl out.
    ['usr-is-merged', 'keeps the usrmerge conversion tool (and perl) out of the image'],
  ]);
  if (recipe.firewall.allow.length > 0 || recipe.firewall.ruleset !== undefined) required.set('nftables', 'the recipe has firewall rules');
  if (recipe.users.some((u) => u.sudo)) required.set('sudo', 'a user has --sudo');
  if (!['UTC', 'Etc/UTC'].includes(recipe.timezone)) required.set('tzdata', `timezone ${recipe.timezone}`);
  if (!['C', 'C.UTF-8', 'POSIX'].includes(recipe.locale)) required.set('locales', `locale ${recipe.locale}`);
  return required;
}

export function planPackages(recipe: Recipe): PackagePlan {
  const required = requiredPackages(recipe);
  for (const name of recipe.removedPackages) {
    const why = required.get(name);
    if (why !== undefined) throw new Error(`package ${name} cannot be removed with -${name}: ${why}`);
  }
  // mmdebstrap's essential phase satisfies init-system-helpers' "usrmerge | usr-is-merged" with
  // usrmerge, a one-time conversion tool that drags in 45 MB of perl; usr-is-merged stays.
  return { install: [...new Set([...recipe.packages, ...required.keys()])].sort(), purge: [...new Set([...recipe.removedPackages, 'usrmerge'])].sort() };
}
