import type { TftpOption } from './codec.js';

/** RFC 1350 block size, used when the client does not negotiate one. */
export const DEFAULT_BLKSIZE = 512;
/** RFC 2348 bounds. */
export const MIN_BLKSIZE = 8;
export const MAX_BLKSIZE = 65464;
/** RFC 7440 bounds. */
export const MAX_WINDOWSIZE = 65535;

export interface OptionLimits {
  /** Largest block size the server grants; requests above it are lowered to it. */
  maxBlksize: number;
  /** Largest window the server grants; requests above it are lowered to it. */
  maxWindowsize: number;
}

export interface NegotiatedOptions {
  blksize: number;
  windowsize: number;
  /** Retransmission timeout the client asked for (RFC 2349), or null to use the server's own. */
  timeoutMs: number | null;
  /** Options to acknowledge in an OACK, in the client's order and spelling; empty means send no OACK. */
  accepted: TftpOption[];
  /** Everything the client asked for (names lowercased, first occurrence wins), for the transfer record. */
  requested: Record<string, string>;
}

/**
 * Decides which of a read request's options the server accepts (RFC 2347). Unknown options and
 * values outside the RFC ranges are left out of the acknowledgement, which tells the client the
 * server did not take them; in-range values above the server's limits are lowered to the limit.
 *
 * `size` is the number of bytes the transfer will carry, or null when it is not known up front
 * (netascii conversion changes the length), in which case tsize is not acknowledged.
 */
export function negotiateOptions(
  options: readonly TftpOption[],
  limits: OptionLimits,
  size: number | null,
): NegotiatedOptions {
  const result: NegotiatedOptions = {
    blksize: DEFAULT_BLKSIZE,
    windowsize: 1,
    timeoutMs: null,
    accepted: [],
    // No prototype, so names like "__proto__" or "constructor" from the wire stay plain keys.
    requested: Object.create(null) as Record<string, string>,
  };
  for (const { name, value } of options) {
    const key = name.toLowerCase();
    if (Object.hasOwn(result.requested, key)) continue;
    result.requested[key] = value;
    const n = parseDecimal(value);
    if (n === null) continue;
    const accept = (granted: number) => result.accepted.push({ name, value: String(granted) });
    switch (key) {
      case 'blksize':
        if (n < MIN_BLKSIZE) break;
        result.blksize = Math.min(n, limits.maxBlksize);
        accept(result.blksize);
        break;
      case 'windowsize':
        if (n < 1 || n > MAX_WINDOWSIZE) break;
        result.windowsize = Math.min(n, limits.maxWindowsize);
        accept(result.windowsize);
        break;
      case 'timeout':
        // RFC 2349: the server must either use the client's value unchanged or ignore the option.
        if (n < 1 || n > 255) break;
        result.timeoutMs = n * 1000;
        accept(n);
        break;
      case 'tsize':
        if (size === null) break;
        accept(size);
        break;
    }
  }
  return result;
}

function parseDecimal(value: string): number | null {
  return /^[0-9]{1,10}$/.test(value) ? Number(value) : null;
}
