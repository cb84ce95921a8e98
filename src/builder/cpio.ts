/**
 * Encoder for the cpio "newc" format the kernel unpacks as an initramfs. Pure: entries in,
 * bytes out. Entries are written in path order (so parents precede children) with inode
 * numbers by position, owner root and one fixed mtime, which makes the archive depend on
 * the entries alone.
 */
export type CpioEntry =
  | { path: string; type: 'dir'; mode: number }
  | { path: string; type: 'file'; mode: number; data: Uint8Array }
  | { path: string; type: 'symlink'; target: string }
  | { path: string; type: 'chardev'; mode: number; major: number; minor: number };

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;
const TRAILER = 'TRAILER!!!';

interface Header {
  ino: number;
  mode: number;
  nlink: number;
  mtime: number;
  size: number;
  rdevMajor: number;
  rdevMinor: number;
  name: string;
}

export function encodeCpio(entries: CpioEntry[], mtime: number): Uint8Array {
  const sorted = [...entries].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const chunks: Uint8Array[] = [];
  sorted.forEach((entry, i) => {
    const path = entry.path.replace(/^\/+/, '');
    const data = entryData(entry);
    chunks.push(header({ ino: i + 1, mode: entryMode(entry), nlink: entry.type === 'dir' ? 2 : 1, mtime, size: data.length, ...rdev(entry), name: path }));
    chunks.push(data, padding(data.length));
  });
  chunks.push(header({ ino: 0, mode: 0, nlink: 1, mtime: 0, size: 0, rdevMajor: 0, rdevMinor: 0, name: TRAILER }));
  return concat(chunks);
}

function entryMode(e: CpioEntry): number {
  switch (e.type) {
    case 'dir':
      return S_IFDIR | e.mode;
    case 'file':
      return S_IFREG | e.mode;
    case 'symlink':
      return S_IFLNK | 0o777;
    case 'chardev':
      return S_IFCHR | e.mode;
  }
}

function entryData(e: CpioEntry): Uint8Array {
  if (e.type === 'file') return e.data;
  if (e.type === 'symlink') return new TextEncoder().encode(e.target);
  return new Uint8Array(0);
}

function rdev(e: CpioEntry): { rdevMajor: number; rdevMinor: number } {
  return e.type === 'chardev' ? { rdevMajor: e.major, rdevMinor: e.minor } : { rdevMajor: 0, rdevMinor: 0 };
}

function header(h: Header): Uint8Array {
  const name = new TextEncoder().encode(`${h.name}\0`);
  const fields = [h.ino, h.mode, 0, 0, h.nlink, h.mtime, h.size, 0, 0, h.rdevMajor, h.rdevMinor, name.length, 0];
  const text = '070701' + fields.map((f) => f.toString(16).padStart(8, '0')).join('');
  const head = new TextEncoder().encode(text);
  return concat([head, name, padding(head.length + name.length)]);
}

/** newc aligns both the header+name and the data to 4 bytes. */
function padding(length: number): Uint8Array {
  return new Uint8Array((4 - (length % 4)) % 4);
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}
