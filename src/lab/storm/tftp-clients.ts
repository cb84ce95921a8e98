import type { Worker } from 'node:worker_threads';
import { startThread } from '../../thread.js';
import type { TftpFetched, TftpRequest } from './tftp-client.js';
import type { TftpThreadRequest } from './tftp-thread.js';

const THREAD = new URL(import.meta.url.endsWith('.ts') ? './tftp-thread.ts' : './tftp-thread.js', import.meta.url);

type Outcome = { id: number; fetched: TftpFetched } | { id: number; error: string };

/** The machines' TFTP transfers, run on their thread (tftp-thread.ts); each settles as tftpGet's would. */
export class TftpClients {
  private readonly waiting = new Map<number, { resolve(f: TftpFetched): void; reject(e: Error): void }>();
  private lastId = 0;

  private constructor(private readonly thread: Worker) {
    thread.on('message', (m: Outcome) => {
      const w = this.waiting.get(m.id);
      if (!w) return;
      this.waiting.delete(m.id);
      if ('error' in m) w.reject(new Error(m.error));
      else w.resolve(m.fetched);
    });
    // A thread that dies takes its transfers with it: they fail rather than hang.
    thread.on('error', (err) => this.failAll(err));
    thread.on('exit', () => this.failAll(new Error('TFTP client thread exited')));
  }

  static open(): TftpClients {
    return new TftpClients(startThread(THREAD, null));
  }

  get(req: TftpRequest): Promise<TftpFetched> {
    const { signal, ...request } = req;
    if (signal.aborted) return Promise.reject(signal.reason as Error);
    const id = ++this.lastId;
    return new Promise<TftpFetched>((resolve, reject) => {
      const aborted = () => {
        this.waiting.delete(id);
        this.thread.postMessage({ abort: id });
        reject(signal.reason as Error);
      };
      signal.addEventListener('abort', aborted, { once: true });
      const done = () => signal.removeEventListener('abort', aborted);
      this.waiting.set(id, { resolve: (f) => (done(), resolve(f)), reject: (e) => (done(), reject(e)) });
      this.thread.postMessage({ id, request: request satisfies TftpThreadRequest });
    });
  }

  /** Ends the thread; transfers still running fail. */
  async close(): Promise<void> {
    await this.thread.terminate();
  }

  private failAll(err: Error): void {
    for (const w of this.waiting.values()) w.reject(err);
    this.waiting.clear();
  }
}
