/**
 * Reads one HTTP/1.1 response from the bytes of a connection, as they arrive. Pure: no I/O.
 * Only what livery's boot endpoints send is understood — a Content-Length body — which keeps
 * it small enough that counting a 100 MB body costs next to nothing.
 */
export type ResponseProgress =
  | { state: 'reading' }
  | { state: 'done'; status: number; bytes: number; text: string | null; keepAlive: boolean }
  | { state: 'failed'; error: string };

const MAX_HEAD_BYTES = 16 * 1024;
const HEAD_END = Buffer.from('\r\n\r\n');

export class ResponseReader {
  private head: Buffer | null = Buffer.alloc(0);
  private status = 0;
  private length = 0;
  private keepAlive = true;
  private bytes = 0;
  private readonly parts: Buffer[] = [];
  private result: ResponseProgress = { state: 'reading' };

  /** `keepText`: keep the body (boot scripts); otherwise it is only counted (artifacts). Error bodies are always kept: they say why. */
  constructor(private readonly keepText: boolean) {}

  /** Takes the next bytes of the connection; they may be reused by the caller once this returns. */
  feed(chunk: Uint8Array): ResponseProgress {
    if (this.result.state !== 'reading') return chunk.length === 0 ? this.result : this.fail(`${chunk.length} bytes after the response ended`);
    let body = chunk;
    if (this.head !== null) {
      // Headers nearly always come whole in a response's first read, which for an artifact may
      // run to a megabyte: only headers split across reads are copied together.
      const seen = this.head.length === 0 ? Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength) : Buffer.concat([this.head, chunk]);
      const end = seen.indexOf(HEAD_END);
      if (end === -1) {
        if (seen.length > MAX_HEAD_BYTES) return this.fail(`no end of headers in ${seen.length} bytes`);
        this.head = Buffer.from(seen);
        return this.result;
      }
      const parsed = this.parseHead(seen.subarray(0, end).toString('latin1'));
      if (parsed) return this.fail(parsed);
      this.head = null;
      body = seen.subarray(end + HEAD_END.length);
    }
    this.bytes += body.length;
    if (this.bytes > this.length) return this.fail(`body longer than its Content-Length ${this.length}`);
    if (this.keepText || this.status !== 200) this.parts.push(Buffer.from(body));
    if (this.bytes === this.length) {
      const text = this.parts.length > 0 || this.keepText ? Buffer.concat(this.parts).toString('utf8') : null;
      this.result = { state: 'done', status: this.status, bytes: this.bytes, text, keepAlive: this.keepAlive };
    }
    return this.result;
  }

  /** Bytes of body so far, for "connection closed after n bytes". */
  get received(): number {
    return this.bytes;
  }

  /** Status line and the headers that matter; returns what is wrong, or null. */
  private parseHead(text: string): string | null {
    const [statusLine, ...lines] = text.split('\r\n');
    const m = /^HTTP\/1\.([01]) (\d{3})/.exec(statusLine ?? '');
    if (!m) return `not an HTTP/1.x status line: ${JSON.stringify(statusLine?.slice(0, 60))}`;
    this.status = Number(m[2]);
    this.keepAlive = m[1] === '1';
    let length: number | null = null;
    for (const line of lines) {
      const colon = line.indexOf(':');
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim();
      if (name === 'content-length') length = /^\d+$/.test(value) ? Number(value) : NaN;
      else if (name === 'transfer-encoding') return `Transfer-Encoding ${value} is not supported (livery sends Content-Length)`;
      else if (name === 'connection') this.keepAlive = value.toLowerCase() !== 'close';
    }
    // A 204 (a phone-home's answer) has no body, whatever its headers say (RFC 9110 6.4.1).
    if (this.status === 204) length = 0;
    if (length === null || Number.isNaN(length)) return 'no valid Content-Length';
    this.length = length;
    return null;
  }

  private fail(error: string): ResponseProgress {
    this.result = { state: 'failed', error };
    return this.result;
  }
}
