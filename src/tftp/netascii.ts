const CR = 0x0d;
const LF = 0x0a;

/**
 * Converts local (Unix) text to netascii as RFC 1350 requires for mode "netascii": LF becomes
 * CR LF and a bare CR becomes CR NUL. Every input byte maps on its own, so chunks can be
 * converted independently and concatenated.
 */
export function toNetascii(bytes: Uint8Array): Buffer {
  let extra = 0;
  for (const b of bytes) if (b === LF || b === CR) extra++;
  const out = Buffer.allocUnsafe(bytes.length + extra);
  let at = 0;
  for (const b of bytes) {
    if (b === LF) {
      out[at++] = CR;
      out[at++] = LF;
    } else if (b === CR) {
      out[at++] = CR;
      out[at++] = 0;
    } else {
      out[at++] = b;
    }
  }
  return out;
}
