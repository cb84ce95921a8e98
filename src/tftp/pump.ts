import { loadAddon } from '../native.js';

/**
 * The typed face of native/tftp_pump.c, which runs the DATA/ACK exchange of every accepted read
 * transfer on its own thread (the reasons are at the top of that file). Everything before the
 * first DATA block (request parsing, confinement, option negotiation, the OACK's bytes) and after
 * the last (records, metrics, events) stays here in TypeScript.
 */

export type TransferResult = 'ok' | 'timeout' | 'aborted-by-client' | 'error';

export interface PumpSpec {
  /** Address the transfer socket binds to (its port is ephemeral: the server's transfer ID). */
  host: string;
  peerAddress: string;
  peerPort: number;
  /** An open file (duplicated by the pump: the caller may close its own descriptor at once) ... */
  fd: number;
  /** ... or, with fd -1, bytes in memory (copied by the pump). */
  data: Buffer | null;
  /** Bytes of the file to send; fixed at open, so a file that grows mid-transfer matches tsize. */
  size: number;
  netascii: boolean;
  blksize: number;
  windowsize: number;
  timeoutMs: number;
  /** Retransmissions of one window before giving up; each waits twice as long as the one before. */
  retries: number;
  /** The transfer ends when no ACK has advanced it for this long, whatever timeoutMs and retries say. */
  silenceLimitMs: number;
  /** Bytes per read(2) from the file. */
  readAhead: number;
  /** OACK to send first (and wait for ACK 0), or null to start straight with DATA block 1. */
  oack: Buffer | null;
}

/** Packet counts of one transfer, so far or in all. */
export interface PumpCounters {
  /** DATA payload bytes put on the wire, retransmissions included. */
  dataBytesSent: number;
  /** Packets (OACK or DATA) sent again after a timeout or a partial window ACK. */
  retransmissions: number;
  /** Packets that reached the transfer socket and were dropped, by reason (unknown-tid, too-short, ...). */
  dropped: Record<string, number>;
}

export interface PumpOutcome extends PumpCounters {
  result: TransferResult;
  /** Payload bytes the client acknowledged. */
  bytes: number;
  /** Why a transfer did not end 'ok', for the log. */
  detail?: string;
}

export interface PumpedTransfer {
  /** The transfer socket's port. */
  port: number;
  /** Resolves once, when the transfer has ended and its socket is closed. */
  done: Promise<PumpOutcome>;
  /** Ends the transfer from our side, telling the client why. */
  abort(message: string): void;
  /** Counts so far, or null once the transfer has ended (its outcome then has the totals). */
  counters(): PumpCounters | null;
}

interface NativePump {
  init(onFinished: (outcome: PumpOutcome & { id: number }) => void): void;
  /** Throws on an invalid spec (TypeError) or when the socket cannot be bound (Error with `code`). */
  start(spec: PumpSpec): { id: number; port: number; handle: unknown };
  abort(id: number, message: string): void;
  /** Valid only until the transfer's outcome is delivered: the native side then frees it. */
  counters(handle: unknown): PumpCounters;
}

let native: NativePump | null = null;
const waiting = new Map<number, (outcome: PumpOutcome) => void>();

/** Loads the addon; called when a TFTP server starts, so a missing build stops it with a clear message. */
export function loadPump(): void {
  if (native) return;
  const loaded = loadAddon<NativePump>('tftp_pump', "livery's TFTP data path");
  loaded.init(({ id, ...outcome }) => {
    const resolve = waiting.get(id);
    waiting.delete(id);
    resolve?.(outcome);
  });
  native = loaded;
}

export function startPump(spec: PumpSpec): PumpedTransfer {
  loadPump();
  const pump = native!;
  const { id, port, handle } = pump.start(spec);
  const done = new Promise<PumpOutcome>((resolve) => waiting.set(id, resolve));
  return {
    port,
    done,
    abort: (message) => pump.abort(id, message),
    counters: () => (waiting.has(id) ? pump.counters(handle) : null),
  };
}
