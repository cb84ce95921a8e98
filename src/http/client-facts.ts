import type { FastifyRequest } from 'fastify';
import type { ClientFacts } from '../boot/index.js';
import { parseIpv4 } from '../net/ipv4.js';

/** The source address as IPv4 (dual-stack sockets report ::ffff:a.b.c.d). */
export function requestIpv4(req: FastifyRequest): number | null {
  return parseIpv4(req.ip.replace(/^::ffff:/, ''));
}

/** Facts for a client that reached the HTTP door: it is running iPXE (or a browser/curl). */
export function httpFacts(req: FastifyRequest, mac: string): ClientFacts {
  const q = req.query as { arch?: string };
  const arch = q.arch === 'arm64' ? 'arm64' : q.arch === 'i386' ? 'i386' : 'x86_64';
  return { mac, firmware: 'ipxe', arch, archCode: null, subnetHint: requestIpv4(req), door: 'http' };
}
