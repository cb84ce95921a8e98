import type { BootPlan } from '../boot/index.js';
import type { Subnet } from '../cmdb/types.js';
import { formatIpv4, maskOf, parseCidr } from '../net/ipv4.js';
import { BootOp, type DhcpPacket, type DhcpPacketInit } from './wire/codec.js';
import { DhcpMessageType, type DhcpOptions } from './wire/options.js';
import { encodePxeVendorOptions, PxeDiscoveryControl } from './wire/pxe.js';

export interface ServerIdentity {
  /** Our address on the served segment: server identifier and next-server. */
  address: string;
}

export interface ReplySpec {
  request: DhcpPacket;
  type: 'offer' | 'ack' | 'nak';
  server: ServerIdentity;
  /** Address given (0.0.0.0 for proxyDHCP, INFORM and NAK). */
  yiaddr?: string;
  subnet?: Subnet | null;
  /** Seconds; omitted for INFORM and proxy replies. */
  leaseSeconds?: number;
  hostname?: string | null;
  plan?: BootPlan | null;
  /** proxyDHCP: boot information only, with the PXE vendor options. */
  proxy?: boolean;
  message?: string;
}

const TYPE = { offer: DhcpMessageType.OFFER, ack: DhcpMessageType.ACK, nak: DhcpMessageType.NAK } as const;

/**
 * Builds a reply from a request, a boot plan and an address: pure, so every rule about which
 * option goes where is tested without sockets.
 */
export function buildReply(spec: ReplySpec): DhcpPacketInit {
  const { request: req, server } = spec;
  const options: DhcpOptions = { messageType: TYPE[spec.type], serverId: server.address };
  const packet: DhcpPacketInit = {
    op: BootOp.REPLY,
    htype: req.htype,
    hlen: req.hlen,
    xid: req.xid,
    chaddr: req.chaddr,
    broadcast: req.broadcast,
    giaddr: req.giaddr,
    yiaddr: spec.yiaddr ?? '0.0.0.0',
    ciaddr: spec.type === 'ack' && req.options.messageType === DhcpMessageType.INFORM ? req.ciaddr : '0.0.0.0',
    options,
  };
  // Relays need option 82 back unchanged to route the reply to the right port (RFC 3046).
  if (req.options.relayAgentInfo) options.relayAgentInfo = req.options.relayAgentInfo;
  if (spec.type === 'nak') {
    options.message = spec.message ?? 'address not valid here';
    return packet;
  }
  if (spec.subnet && !spec.proxy) addNetworkOptions(options, spec.subnet);
  if (spec.leaseSeconds) {
    options.leaseTime = spec.leaseSeconds;
    options.renewalTime = Math.floor(spec.leaseSeconds / 2);
    options.rebindingTime = Math.floor((spec.leaseSeconds * 7) / 8);
  }
  if (spec.hostname && !spec.proxy) options.hostname = spec.hostname;
  if (spec.plan) addBootOptions(packet, options, spec.plan, spec);
  if (spec.proxy && spec.plan && spec.plan.next.kind !== 'none') addProxyIdentity(packet, options, spec);
  return packet;
}

/**
 * A proxyDHCP reply (PXE 2.1 §2.2.2) names its boot server in siaddr and says PXEClient, whatever
 * the boot file. iPXE takes a ProxyDHCP OFFER as the boot information only when it has vendor
 * class PXEClient, a next-server and a boot file name (dhcp_has_pxeopts in iPXE's dhcp.c);
 * without the next-server it sends a ProxyDHCP REQUEST to port 4011 and holds the ACK to the
 * same test, so a script URL alone ends in "Nothing to boot". UEFI HTTP Boot keeps HTTPClient.
 */
function addProxyIdentity(packet: DhcpPacketInit, options: DhcpOptions, spec: ReplySpec): void {
  packet.siaddr = spec.server.address;
  if (options.vendorClassId !== 'HTTPClient') options.vendorClassId = 'PXEClient';
}

function addNetworkOptions(options: DhcpOptions, subnet: Subnet): void {
  const cidr = parseCidr(subnet.cidr)!;
  options.subnetMask = formatIpv4(maskOf(cidr.prefix));
  options.broadcastAddress = formatIpv4(cidr.last);
  if (subnet.gateway) options.routers = [subnet.gateway];
  if (subnet.dns.length > 0) options.dnsServers = subnet.dns;
  if (subnet.domain) options.domainName = subnet.domain;
}

/**
 * Boot options from the plan: a TFTP loader (siaddr + file + 66/67), an HTTP URL for UEFI
 * HTTP Boot (with vendor class HTTPClient, which such firmware requires), or the script URL
 * for iPXE. PXE clients also get vendor class PXEClient and option 43.
 */
function addBootOptions(packet: DhcpPacketInit, options: DhcpOptions, plan: BootPlan, spec: ReplySpec): void {
  const next = plan.next;
  if (next.kind === 'none') return;
  const req = spec.request;
  if (next.kind === 'tftp') {
    packet.siaddr = spec.server.address;
    packet.file = next.file;
    options.tftpServerName = spec.server.address;
    options.bootfileName = next.file;
  } else {
    packet.file = next.url;
    options.bootfileName = next.url;
  }
  if (next.kind === 'http') options.vendorClassId = 'HTTPClient';
  else if (req.options.vendorClassId?.startsWith('PXEClient')) options.vendorClassId = 'PXEClient';
  // Vendor class PXEClient without option 43 makes UEFI PXE (EDK2/OVMF) take the reply for a
  // BINL offer and ask again on port 4011, which only proxy mode answers ("PXE-E16"); "boot
  // file direct" tells every PXE client to fetch the file in this reply, full mode or proxy.
  if (options.vendorClassId === 'PXEClient' && next.kind === 'tftp') {
    options.vendorSpecific = encodePxeVendorOptions({ discoveryControl: PxeDiscoveryControl.BOOTFILE_DIRECT });
  }
  // PXE firmware matches replies to its own GUID; echoing option 97 is what it expects.
  if (req.options.clientUuid) options.clientUuid = req.options.clientUuid;
}
