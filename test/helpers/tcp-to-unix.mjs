/**
 * Forwards TCP connections on ADDRESS:PORT to the UNIX socket SOCKET, byte for byte (TLS passes
 * through untouched). Run inside a test's network namespace, it lets programs there reach a
 * server of the test process (which lives outside it) without touching the host's network.
 *
 * usage: node test/helpers/tcp-to-unix.mjs ADDRESS PORT SOCKET
 */
import { connect, createServer } from 'node:net';

const [address, port, socketPath] = process.argv.slice(2);
createServer((client) => {
  const server = connect(socketPath);
  client.pipe(server).pipe(client);
  client.on('error', () => server.destroy());
  server.on('error', () => client.destroy());
}).listen(Number(port), address, () => console.log(`listening on ${address}:${port}`));
