import { connect, type Socket } from 'node:net';
import { ResponseReader, type ResponseProgress } from './http-response.js';

export interface HttpFetched {
  bytes: number;
  /** The body, when asked for (boot scripts); artifacts are counted, not kept. */
  text: string | null;
}

// Every connection reads into this one buffer: the read callback runs to completion before
// the next read, and the reader copies what it keeps. One shared buffer, instead of a fresh
// one per read, is what lets one process receive for a thousand machines.
const READ_BUFFER = Buffer.allocUnsafe(1024 * 1024);

/**
 * One machine's HTTP, as iPXE does it: one connection from the machine's own address, kept
 * open from request to request, GETs one after another.
 */
export class MachineHttp {
  private socket: Socket | null = null;
  private origin = '';
  /** Where the bytes of the connection go: the response being read. */
  private deliver: ((bytes: Uint8Array) => void) | null = null;
  private broken: ((error: Error) => void) | null = null;

  constructor(
    private readonly localAddress: string,
    private readonly idleMs: number,
  ) {}

  /** GET `url`; rejects unless the answer is a complete 200. */
  get(url: string, keepText: boolean, signal: AbortSignal): Promise<HttpFetched> {
    return this.request('GET', url, keepText, signal, null, 200);
  }

  /** POST a JSON body to `url` (the agent's phone-home); rejects unless the answer is a 204. */
  postJson(url: string, body: unknown, signal: AbortSignal): Promise<HttpFetched> {
    return this.request('POST', url, true, signal, JSON.stringify(body), 204);
  }

  private request(method: 'GET' | 'POST', url: string, keepText: boolean, signal: AbortSignal, body: string | null, expect: number): Promise<HttpFetched> {
    const target = new URL(url);
    if (target.protocol !== 'http:') return Promise.reject(new Error(`${url}: only http:// is simulated`));
    const socket = this.connection(target);
    const reader = new ResponseReader(keepText);
    return new Promise<HttpFetched>((resolve, reject) => {
      const settle = (outcome: ResponseProgress | Error) => {
        if (!(outcome instanceof Error) && outcome.state === 'reading') return;
        this.deliver = null;
        this.broken = null;
        signal.removeEventListener('abort', aborted);
        if (outcome instanceof Error || outcome.state === 'failed') {
          this.close();
          return reject(outcome instanceof Error ? outcome : new Error(`${url}: ${outcome.error}`));
        }
        if (!outcome.keepAlive) this.close();
        if (outcome.status !== expect) return reject(new Error(`HTTP ${outcome.status} for ${method} ${url}: ${outcome.text?.slice(0, 200)}`));
        resolve({ bytes: outcome.bytes, text: outcome.text });
      };
      const aborted = () => settle(signal.reason as Error);
      if (signal.aborted) return aborted();
      signal.addEventListener('abort', aborted, { once: true });
      this.deliver = (bytes) => settle(reader.feed(bytes));
      this.broken = (error) => settle(new Error(`${url}: ${error.message} after ${reader.received} body bytes`));
      const content = body === null ? '' : `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n`;
      socket.write(`${method} ${target.pathname}${target.search} HTTP/1.1\r\nHost: ${target.host}\r\nUser-Agent: iPXE/1.0 (livery storm)\r\nConnection: keep-alive\r\n${content}\r\n${body ?? ''}`);
    });
  }

  close(): void {
    this.socket?.destroy();
    this.socket = null;
  }

  /** The open connection to `target`'s origin, or a new one. */
  private connection(target: URL): Socket {
    if (this.socket && this.origin === target.host) return this.socket;
    this.close();
    const socket = connect({
      host: target.hostname,
      port: Number(target.port || 80),
      localAddress: this.localAddress,
      onread: {
        buffer: READ_BUFFER,
        callback: (n) => {
          // Bytes nobody asked for mean the connection is out of step: drop it.
          if (this.deliver) this.deliver(READ_BUFFER.subarray(0, n));
          else socket.destroy();
          return true;
        },
      },
    });
    socket.setNoDelay(true);
    socket.setTimeout(this.idleMs, () => socket.destroy(new Error(`nothing received for ${this.idleMs} ms`)));
    socket.on('error', (err) => this.broken?.(err));
    socket.on('close', () => {
      if (this.socket === socket) this.socket = null;
      this.broken?.(new Error('connection closed'));
    });
    this.socket = socket;
    this.origin = target.host;
    return socket;
  }
}
