// Why a DHCP packet (or an encapsulated option inside one) was rejected.
// `kind` is a closed set so servers can use it directly as a metrics label.

export const DHCP_DECODE_ERROR_KINDS = [
  'truncated', // shorter than the 236-byte BOOTP header plus the 4-byte magic cookie
  'bad-op', // op is neither BOOTREQUEST (1) nor BOOTREPLY (2)
  'bad-hlen', // hlen > 16, or not 6 for Ethernet (htype 1)
  'bad-cookie', // the vendor area does not start with 99.130.83.99
  'option-overrun', // an option's length byte (or the byte itself) runs past the end of its area
  'missing-end', // the options area has no END (255) option
  'bad-overload', // option 52 malformed, or the sname/file fields it points at are malformed
  'bad-option', // a known option whose value has the wrong length or shape
] as const;

export type DhcpDecodeErrorKind = (typeof DHCP_DECODE_ERROR_KINDS)[number];

export interface DhcpDecodeError {
  kind: DhcpDecodeErrorKind;
  /** Human-readable detail for logs; not stable, do not match on it. */
  message: string;
  /** The option code concerned, for `bad-option` / `option-overrun` / `bad-overload`. */
  option?: number;
}

export function decodeError(kind: DhcpDecodeErrorKind, message: string, option?: number): { ok: false; error: DhcpDecodeError } {
  return { ok: false, error: option === undefined ? { kind, message } : { kind, message, option } };
}
