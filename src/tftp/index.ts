/** livery's TFTP server: read-only, RFC 1350 with the option extensions PXE firmware and iPXE use. */
export { startTftpServer, TFTP_DEFAULTS } from './server.js';
export type { TftpServer, TftpServerOptions, TransferRecord, TftpClient } from './server.js';
export type { TftpStats } from './metrics.js';
export type { TransferResult } from './pump.js';
export { decodePacket, encodePacket, ErrorCode, Opcode } from './codec.js';
export type { TftpPacket, TftpOption, DecodeResult, MalformedReason } from './codec.js';
