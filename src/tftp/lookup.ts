import type { Peer } from './config.js';
import { ErrorCode } from './codec.js';
import { normalizeRequestPath, resolveUnderRoot } from './confine.js';
import { openRegularFile, type Content } from './source.js';

/** Where a request name can be found, in the order they are consulted. */
export interface ContentPlaces {
  /** Rendered content, or a file on disk under another name (e.g. an image artifact); null: not virtual. */
  resolveVirtual?: (path: string, client: Peer) => Promise<Buffer | { path: string } | null>;
  /** By normalised request name. */
  files: Map<string, string>;
  /** Real path (symlinks resolved) of the TFTP root. */
  rootReal: string;
}

export type Lookup =
  /** `file` is the normalised name, as reported in the transfer record. */
  | { ok: true; file: string; content: Content }
  /** `reason` labels the refusal metric; `code` and `message` go to the client. */
  | { ok: false; reason: string; code: number; message: string };

/**
 * Resolves a requested name: refused outright if it could leave the root, then virtual files,
 * then the configured `files`, then the root. The result holds an open file (or a buffer), so a
 * successful lookup must end in closeContent() one way or another.
 */
export async function lookupContent(requested: string, client: Peer, places: ContentPlaces): Promise<Lookup> {
  const name = normalizeRequestPath(requested);
  if (!name.ok) return refusal(name.reason);
  const path = name.path;
  const virtual = await places.resolveVirtual?.(path, client);
  if (Buffer.isBuffer(virtual)) return { ok: true, file: path, content: { kind: 'buffer', data: virtual } };
  const mapped = virtual?.path ?? places.files.get(path);
  const target = mapped !== undefined ? { ok: true as const, path: mapped } : await resolveUnderRoot(places.rootReal, path);
  if (!target.ok) return refusal(target.reason);
  const file = await openRegularFile(target.path);
  return file.ok ? { ok: true, file: path, content: file.content } : refusal(file.reason);
}

/** Missing things are "file not found"; everything else is "access violation", without saying why. */
function refusal(reason: string): Lookup {
  return reason === 'not-found' || reason === 'empty'
    ? { ok: false, reason, code: ErrorCode.FILE_NOT_FOUND, message: 'file not found' }
    : { ok: false, reason, code: ErrorCode.ACCESS_VIOLATION, message: 'access violation' };
}
