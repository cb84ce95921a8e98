import { loadAddon } from '../native.js';
import { formatIpv4 } from './ipv4.js';

/**
 * A UDP/IPv4 socket that can be confined to one interface, read in batches (native/datagram.c
 * says why it is not Node's dgram): every wakeup of the event loop reads up to 32 datagrams and
 * delivers them in one call.
 */
export interface DatagramSocket {
  /** Sends at once. A datagram that cannot leave (full buffer, no route) is lost: returns its errno name, else null. */
  send(packet: Buffer, port: number, address: string): string | null;
  close(): void;
}

export interface DatagramOptions {
  address: string;
  port: number;
  /** Confines the socket to this interface (SO_BINDTOIFINDEX): it neither receives nor sends on any other. 0: every interface. */
  ifindex: number;
  /** Requested SO_RCVBUF; the kernel caps it at net.core.rmem_max. */
  receiveBufferBytes: number;
}

/**
 * What livery's request sockets (DHCP, TFTP) ask for: a rack that powers on at once sends its
 * DISCOVERs, then its RRQs, within milliseconds, and the kernel's default receive buffer
 * (~208 KB) holds a few hundred; each one dropped costs its machine a retransmission wait.
 */
export const BURST_RECEIVE_BUFFER_BYTES = 4 * 1024 * 1024;

export type OnDatagram = (packet: Buffer, address: string, port: number) => void;

interface NativeDatagram {
  /** Throws a TypeError on bad arguments, or an Error whose `code` is the errno and whose message names the step that failed. */
  open(options: DatagramOptions, onBatch: (payloads: Buffer, meta: Uint32Array) => void): unknown;
  send(handle: unknown, packet: Buffer, port: number, address: string): string | null;
  close(handle: unknown): void;
}

let native: NativeDatagram | null = null;

export function openDatagramSocket(options: DatagramOptions, onDatagram: OnDatagram): DatagramSocket {
  native ??= loadAddon<NativeDatagram>('datagram', "livery's DHCP socket");
  const addon = native;
  // meta holds offset, length, sender address and sender port for each datagram of the batch.
  const handle = addon.open(options, (payloads, meta) => {
    for (let i = 0; i < meta.length; i += 4) {
      onDatagram(payloads.subarray(meta[i]!, meta[i]! + meta[i + 1]!), formatIpv4(meta[i + 2]!), meta[i + 3]!);
    }
  });
  return {
    send: (packet, port, address) => addon.send(handle, packet, port, address),
    close: () => addon.close(handle),
  };
}
