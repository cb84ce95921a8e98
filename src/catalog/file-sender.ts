import type { FileHandle } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { loadAddon } from '../native.js';
import { copyFileRange } from './blob-sender.js';

/** What native/file_sender.c reports when a transfer ends; `position` is the file offset reached. */
interface Outcome {
  id: number;
  result: 'ok' | 'aborted' | 'error';
  position: number;
  code?: string;
}

interface FileSenderAddon {
  init(onFinished: (outcome: Outcome) => void): void;
  start(socketFd: number, fileFd: number, start: number, end: number, idleMs: number): number;
  abort(id: number): void;
}

let addon: FileSenderAddon | null = null;
const waiting = new Map<number, (outcome: Outcome) => void>();

function fileSender(): FileSenderAddon {
  if (addon === null) {
    addon = loadAddon<FileSenderAddon>('file_sender', "livery's artifact sender");
    addon.init((outcome) => {
      const settle = waiting.get(outcome.id);
      waiting.delete(outcome.id);
      settle?.(outcome);
    });
  }
  return addon;
}

/**
 * The kernel descriptor of a plain TCP connection. Null for TLS, whose bytes must pass through
 * OpenSSL, and for sockets that have none (fastify's inject). Node exposes it only on the
 * socket's libuv handle.
 */
function plainTcpDescriptor(socket: Socket | null): number | null {
  if (socket === null || (socket as TLSSocket).encrypted) return null;
  const fd = (socket as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : null;
}

/** Resolves once the response's headers have reached the kernel, or its connection has closed. */
function headersFlushed(res: ServerResponse): Promise<void> {
  return new Promise((resolve, reject) => {
    const closed = () => resolve();
    res.once('close', closed);
    res.write('', (err) => {
      res.off('close', closed);
      if (err) reject(err);
      else resolve();
    });
  });
}

/** A client that hung up or stalled mid-body: its connection is closed, as Node's idle timer would, not reported as a failure. */
const CLIENT_GONE = new Set(['EPIPE', 'ECONNRESET', 'ETIMEDOUT']);

/**
 * Sends bytes [start, end] of an open file as the body of a response whose headers are set
 * (writeHead), then ends it. On a plain TCP connection the body goes by sendfile(2) on
 * native/file_sender.c's thread: no copy through a buffer and no work on the event loop. Over
 * TLS it is copied (copyFileRange). Node's idle timer would see no activity while the thread
 * writes, so the thread keeps the socket's idle limit instead, and Node's timer resumes after.
 * A client that leaves or stalls ends the transfer; any other failure
 * rejects, and the caller closes the connection, as the body can no longer be whole.
 */
export async function sendFileRange(file: FileHandle, res: ServerResponse, start: number, end: number): Promise<void> {
  await headersFlushed(res);
  const socket = res.socket;
  if (res.destroyed || socket === null || socket.destroyed) return;
  const fd = plainTcpDescriptor(socket);
  if (fd === null) return copyFileRange(file, res, start, end);

  const sender = fileSender();
  const idleMs = socket.timeout ?? 0;
  const id = sender.start(fd, file.fd, start, end + 1, idleMs);
  socket.setTimeout(0);
  const outcome = new Promise<Outcome>((settle) => waiting.set(id, settle));
  const abort = () => sender.abort(id);
  res.once('close', abort);
  const { result, position, code } = await outcome;
  res.off('close', abort);
  if (socket.destroyed) return;
  socket.setTimeout(idleMs);
  if (result === 'ok') res.end();
  else if (result === 'error' && !CLIENT_GONE.has(code ?? '')) throw new Error(`sendfile stopped at byte ${position} of [${start}, ${end}]: ${code}`);
  else socket.destroy();
}
