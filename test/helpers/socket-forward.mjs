/**
 * Forwards every connection to LISTEN to CONNECT, byte for byte (TLS passes through untouched).
 * Each end is ADDRESS:PORT (TCP) or a path (a UNIX socket). A UNIX socket is a file, seen from
 * every network namespace: so a forwarder inside a test's namespace lets programs there reach a
 * server of the test process (TCP in, UNIX out), or the test process reach a server inside the
 * namespace (UNIX in, TCP out), without touching the host's network.
 * It prints `listening on <end>` (with the port a TCP port 0 got) once it accepts connections.
 *
 * usage: node test/helpers/socket-forward.mjs LISTEN CONNECT
 */
import { connect, createServer } from 'node:net';

const [listen, target] = process.argv.slice(2);
const endpoint = (text) => {
  const m = /^(.+):(\d+)$/.exec(text);
  return m && !text.includes('/') ? { host: m[1], port: Number(m[2]) } : { path: text };
};

const server = createServer((client) => {
  const upstream = connect(endpoint(target));
  client.pipe(upstream).pipe(client);
  client.on('error', () => upstream.destroy());
  upstream.on('error', () => client.destroy());
});
server.listen(endpoint(listen), () => {
  const a = server.address();
  console.log(`listening on ${typeof a === 'string' ? a : `${a.address}:${a.port}`}`);
});
