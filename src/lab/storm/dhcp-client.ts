import { BootOp, macToChaddr, type DhcpPacket, type DhcpPacketInit } from '../../dhcp/wire/codec.js';
import { DhcpMessageType, type DhcpOptions } from '../../dhcp/wire/options.js';
import type { DhcpHub } from './dhcp-hub.js';

/** The two firmwares a BIOS machine runs DHCP in: the NIC's PXE ROM, then the iPXE it loaded. */
export type Firmware = 'bios-pxe' | 'ipxe';

export interface VirtualNic {
  mac: string;
  /** Option 97: type 0 + SMBIOS UUID. */
  guid: Uint8Array;
}

export interface DhcpLease {
  /** The server identifier of the ACK: whichever of the servers answered first. */
  server: string;
  ip: string;
  /** Next server (siaddr) and boot file, as the ACK gave them. */
  siaddr: string;
  bootfile: string;
}

export interface DhcpTiming {
  /** Waits between retransmissions of one message (PXE ROMs: 4, 8, 16, 32 s). */
  waitsMs: number[];
  /** Each wait moved at random by up to this much either way (RFC 2131: ±1 s). */
  jitterMs: number;
  /** Times the whole DISCOVER…ACK is started over after a NAK or a message never answered. */
  restarts: number;
}

/** What each firmware puts in its requests, after the options captured from real ones (test/fixtures/dhcp). */
function firmwareOptions(firmware: Firmware, nic: VirtualNic): DhcpOptions {
  const common: DhcpOptions = {
    maxMessageSize: 1472,
    clientArch: [0],
    clientNdi: { type: 1, major: 2, minor: 1 },
    clientUuid: nic.guid,
    vendorClassId: 'PXEClient:Arch:00000:UNDI:002001',
  };
  if (firmware === 'bios-pxe') {
    return {
      ...common,
      parameterRequestList: [1, 2, 3, 4, 5, 6, 12, 13, 15, 17, 18, 22, 23, 28, 40, 41, 42, 43, 50, 51, 54, 58, 59, 60, 66, 67, 97, 128, 129, 130, 131, 132, 133, 134, 135],
    };
  }
  return {
    ...common,
    // iPXE sends its user class as the bare string, not in RFC 3004 form.
    userClass: Buffer.from('iPXE'),
    clientId: Uint8Array.of(1, ...macToChaddr(nic.mac).subarray(0, 6)),
    parameterRequestList: [1, 3, 6, 7, 12, 15, 17, 26, 43, 60, 66, 67, 119, 128, 129, 130, 131, 132, 133, 134, 135, 175, 203],
  };
}

/**
 * One DHCP round as `firmware` does it: DISCOVER → OFFER → REQUEST (server id, requested
 * address) → ACK, one xid for the whole exchange, each message retransmitted with backoff.
 * Only replies from `servers` (option 54) count: the storm is against those. As a PXE ROM,
 * the round takes the first OFFER from any of them, then REQUESTs from that one only and
 * takes only its ACK or NAK (a server that dies meanwhile leaves the REQUEST unanswered, and
 * the round starts over with a DISCOVER). `check` vets the boot information of the OFFER and the ACK (null = fine, else why not);
 * `restarted` hears why a round was started over. Throws with the reason when no address
 * could be had.
 */
export async function dhcpRound(
  hub: DhcpHub,
  servers: readonly string[],
  nic: VirtualNic,
  firmware: Firmware,
  check: (reply: DhcpPacket) => string | null,
  timing: DhcpTiming,
  signal: AbortSignal,
  restarted: (why: Error) => void,
): Promise<DhcpLease> {
  const options = firmwareOptions(firmware, nic);
  const chaddr = macToChaddr(nic.mac);
  const startedAt = Date.now();
  let why = '';
  for (let round = 0; round <= timing.restarts; round++) {
    if (round > 0) restarted(new Error(why));
    const xid = hub.nextXid();
    const packet = (type: DhcpMessageType, extra: DhcpOptions = {}): DhcpPacketInit => ({
      op: BootOp.REQUEST,
      xid,
      chaddr,
      // PXE ROMs cannot take unicast before they have an address.
      broadcast: true,
      secs: Math.min(0xffff, Math.floor((Date.now() - startedAt) / 1000)),
      options: { ...options, ...extra, messageType: type },
    });
    const offer = await hub.exchange(packet(DhcpMessageType.DISCOVER), (r) => r.options.messageType === DhcpMessageType.OFFER && servers.includes(r.options.serverId ?? ''), timing, signal);
    if (!offer) {
      why = `no OFFER after ${timing.waitsMs.length} DISCOVERs`;
      continue;
    }
    const refused = check(offer);
    if (refused) throw new Error(`OFFER: ${refused}`);
    const server = offer.options.serverId!;
    const ack = await hub.exchange(
      packet(DhcpMessageType.REQUEST, { serverId: server, requestedIp: offer.yiaddr }),
      (r) => r.options.serverId === server && (r.options.messageType === DhcpMessageType.ACK || r.options.messageType === DhcpMessageType.NAK),
      timing,
      signal,
    );
    if (!ack) {
      why = `no ACK after ${timing.waitsMs.length} REQUESTs`;
      continue;
    }
    if (ack.options.messageType === DhcpMessageType.NAK) {
      why = `NAK: ${ack.options.message ?? 'no reason given'}`;
      continue;
    }
    const bad = check(ack);
    if (bad) throw new Error(`ACK: ${bad}`);
    return { server, ip: ack.yiaddr, siaddr: ack.siaddr, bootfile: bootfileOf(ack) };
  }
  throw new Error(`${why} (${timing.restarts + 1} rounds)`);
}

/** Option 67, or the BOOTP file field when the server used only that. */
export function bootfileOf(reply: DhcpPacket): string {
  return reply.options.bootfileName ?? reply.file ?? '';
}
