import { SingleBar } from 'cli-progress';
import type { Command } from 'commander';
import { Readable, Transform } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { CliError, parseResponse, type ApiClient } from './client.js';
import { globals } from './context.js';

/** Moving bundles between a file or another livery and this one: streamed, never whole in memory. */

const MiB = 1024 * 1024;

/**
 * Counts bytes flowing through; draws a progress bar on stderr when stderr is a terminal and
 * output is for humans (pipes and --json stay clean).
 */
export function progress(label: string, total: number | null, show: boolean): Transform {
  const bar = show
    ? new SingleBar({
        format: `${label} [{bar}] {percentage}% {done}/{size} MiB {speed} MiB/s`,
        stream: process.stderr,
        hideCursor: true,
        clearOnComplete: false,
      })
    : null;
  const started = Date.now();
  let done = 0;
  const mib = (n: number) => (n / MiB).toFixed(1);
  bar?.start(total ?? 0, 0, { done: '0.0', size: total === null ? '?' : mib(total), speed: '0.0' });
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      done += chunk.length;
      const seconds = Math.max((Date.now() - started) / 1000, 0.001);
      bar?.update(total === null ? 0 : done, { done: mib(done), speed: (done / MiB / seconds).toFixed(1) });
      callback(null, chunk);
    },
    flush(callback) {
      bar?.stop();
      callback();
    },
  });
}

export const showBar = (cmd: Command) => Boolean(process.stderr.isTTY) && !globals(cmd).json;

/** Streams a body to POST /v1/images (never whole in memory); resolves with the raw response. */
export async function upload(client: ApiClient, body: Readable, length: number | null, channel: string | undefined): Promise<Response> {
  const query = channel ? `?channel=${encodeURIComponent(channel)}` : '';
  try {
    return await fetch(`${client.baseUrl}/v1/images${query}`, {
      method: 'POST',
      headers: client.headers({ 'content-type': 'application/x-tar', ...(length !== null ? { 'content-length': String(length) } : {}) }),
      body: Readable.toWeb(body) as ReadableStream,
      duplex: 'half',
    } as RequestInit);
  } catch (err) {
    throw unreachable(client.baseUrl, err);
  }
}

function unreachable(url: string, err: unknown): CliError {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  return new CliError(`cannot reach ${url}: ${cause?.code ?? cause?.message ?? (err as Error).message}`);
}

export async function download(url: string, headers: Record<string, string>): Promise<Response> {
  let res: Response;
  try {
    res = await fetch(url, { headers });
  } catch (err) {
    throw unreachable(url, err);
  }
  if (!res.ok || !res.body) await parseResponse(res);
  return res;
}

export const fromWeb = (res: Response) => Readable.fromWeb(res.body as unknown as WebReadableStream);

export function contentLength(res: Response): number | null {
  const n = Number(res.headers.get('content-length') ?? NaN);
  return Number.isFinite(n) ? n : null;
}
