import { createSocket } from 'node:dgram';
import { parentPort, workerData } from 'node:worker_threads';

/**
 * The DHCP hub's socket, on a thread of its own. In the simulator's main thread it shared one
 * event loop with every machine's HTTP downloads: libuv reads at most 32 datagrams from a
 * socket per pass of the loop, and while the loop received gigabytes a second a pass took
 * tenths of a second, so replies waited unread in the socket's buffer for seconds, past the
 * machines' retransmission timers. Here the socket is read as soon as replies arrive, and they
 * reach the main thread in one batch per message-port wakeup, however many there are.
 *
 * Messages in: { bytes, port } to broadcast, or 'close'. Out: 'ready' once bound, then each
 * reply's bytes; { error } if the socket cannot be opened.
 */
const { clientPort, receiveBufferBytes } = workerData as { clientPort: number; receiveBufferBytes: number };
const port = parentPort!;
const socket = createSocket({ type: 'udp4', reuseAddr: true });
const bindFailed = (err: Error) => port.postMessage({ error: err.message });
socket.once('error', bindFailed);
socket.bind(clientPort, '0.0.0.0', () => {
  // From here on every message out is a reply's bytes.
  socket.off('error', bindFailed);
  socket.setBroadcast(true);
  socket.setRecvBufferSize(receiveBufferBytes);
  // A failed send is a lost packet; the retransmission timer recovers it.
  socket.on('error', () => undefined);
  socket.on('message', (buf) => port.postMessage(buf));
  port.postMessage('ready');
});
port.on('message', (m: { bytes: Uint8Array; port: number } | 'close') => {
  if (m === 'close') socket.close(() => port.close());
  else socket.send(m.bytes, m.port, '255.255.255.255');
});
