export { startDhcpServer, type DhcpServer, type DhcpServerOptions } from './server.js';
export { decodeDhcp, encodeDhcp, type DhcpPacket } from './wire/codec.js';
export type { DhcpBootPath, DhcpClient } from './contract.js';
