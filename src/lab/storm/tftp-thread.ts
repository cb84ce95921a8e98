import { parentPort } from 'node:worker_threads';
import { tftpGet, type TftpRequest } from './tftp-client.js';

/**
 * Every machine's TFTP transfer, on a thread of its own. A PXE ROM's transfer is lock-step: it
 * sends the next ACK only once it has read the last DATA block. On the simulator's main thread,
 * whose loop also receives every machine's HTTP downloads, each of a loader's ~50 blocks waited
 * for a pass of that loop (a tenth of a second and more in a storm); here the sockets are read
 * as soon as blocks arrive, as a real NIC's would be.
 *
 * Messages in: { id, request } to start a transfer, { abort: id }. Out: { id, fetched } or
 * { id, error } once a transfer ends.
 */
export type TftpThreadRequest = Omit<TftpRequest, 'signal'>;

const port = parentPort!;
const running = new Map<number, AbortController>();

port.on('message', (m: { id: number; request: TftpThreadRequest } | { abort: number }) => {
  if ('abort' in m) {
    running.get(m.abort)?.abort(new Error('aborted'));
    return;
  }
  const stop = new AbortController();
  running.set(m.id, stop);
  tftpGet({ ...m.request, signal: stop.signal }).then(
    (fetched) => port.postMessage({ id: m.id, fetched }),
    (err: unknown) => port.postMessage({ id: m.id, error: (err as Error).message }),
  ).finally(() => running.delete(m.id));
});
