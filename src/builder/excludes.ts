/**
 * Paths dpkg never unpacks into the image (dpkg path-exclude globs). A diskless server has no
 * sound card, camera, Wi-Fi, Bluetooth, desktop GPU, joystick or exotic legacy bus, and reads
 * no manual pages; leaving these out at unpack time keeps the squashfs well under 100 MB and
 * makes the bootstrap faster than deleting them afterwards. Server display chips (ast,
 * mgag200) and the generic DRM core stay; so do all wired NIC, storage and filesystem drivers
 * a server may want.
 */
const MODULE_DIRS = [
  'sound',
  'drivers/media',
  'drivers/staging',
  'drivers/net/wireless',
  'net/wireless',
  'net/mac80211',
  'drivers/bluetooth',
  'net/bluetooth',
  'drivers/gpu/drm/amd',
  'drivers/gpu/drm/radeon',
  'drivers/gpu/drm/nouveau',
  'drivers/gpu/drm/i915',
  'drivers/isdn',
  'drivers/iio',
  'drivers/input/joystick',
  'drivers/input/touchscreen',
  'drivers/input/tablet',
  'drivers/net/can',
  'net/can',
  'drivers/nfc',
  'net/nfc',
  'drivers/net/hamradio',
  'net/ax25',
  'net/netrom',
  'net/rose',
  'drivers/net/ieee802154',
  'net/ieee802154',
  'net/mac802154',
  'drivers/net/wan',
  'drivers/net/fddi',
  'drivers/net/arcnet',
  'drivers/net/usb',
  'drivers/comedi',
  'drivers/infiniband',
  'drivers/mmc',
  'drivers/memstick',
  'drivers/pcmcia',
  'drivers/firewire',
  'drivers/atm',
  'net/atm',
  'drivers/gnss',
  'drivers/w1',
  'drivers/mtd',
  'drivers/parport',
  'drivers/android',
  'drivers/accessibility',
  'drivers/soundwire',
  'drivers/hwtracing',
  'drivers/platform/chrome',
  'drivers/platform/surface',
  'drivers/scsi/qla2xxx',
  'drivers/scsi/lpfc',
  'drivers/scsi/bfa',
  'drivers/scsi/aic7xxx',
  'drivers/scsi/qla4xxx',
  'fs/ocfs2',
  'fs/gfs2',
  'fs/ubifs',
  'fs/afs',
  'fs/jfs',
  'fs/nilfs2',
  'fs/reiserfs',
  'fs/hfs',
  'fs/hfsplus',
  'fs/ufs',
  'fs/jffs2',
  'fs/orangefs',
  'fs/coda',
  'net/rxrpc',
  'net/tipc',
  'net/rds',
  'net/appletalk',
  'net/x25',
  'net/phonet',
  'net/caif',
];

const DOCS = ['/usr/share/doc/*', '/usr/share/man/*', '/usr/share/info/*', '/usr/share/locale/*', '/usr/share/lintian/*'];

/** Debian builds initrd.img in the image; livery builds its own, so the generated one is never wanted. */
const BOOT = ['/boot/initrd.img*'];

/** bookworm's kernel packages still ship /lib/modules; later releases ship /usr/lib/modules. */
const MODULE_ROOTS = ['/lib/modules', '/usr/lib/modules'];

export const DPKG_PATH_EXCLUDES: readonly string[] = [...DOCS, ...BOOT, ...MODULE_ROOTS.flatMap((root) => MODULE_DIRS.map((d) => `${root}/*/kernel/${d}/*`))];

/** Kept despite DOCS: copyright files are licence obligations, locale.alias is read by glibc. */
export const DPKG_PATH_INCLUDES: readonly string[] = ['/usr/share/doc/*/copyright', '/usr/share/locale/locale.alias'];
