import type { Registry } from 'prom-client';
import { nodeName, type Config } from '../config/index.js';
import type { Logger } from '../log.js';
import { parseAddressOrCidr, parseIpv4 } from '../net/ipv4.js';
import { BURST_RECEIVE_BUFFER_BYTES, openDatagramSocket, type DatagramSocket, type OnDatagram } from '../net/datagram.js';
import type { DhcpBootPath } from './contract.js';
import { CmdbOutage } from './cmdb-outage.js';
import { DiscoveryBudget } from './discovery-budget.js';
import { Exchange } from './exchange.js';
import { FullMode, isUnknown } from './full.js';
import { LeaseBooks } from './lease-book.js';
import { LoadBalance } from './load-balance.js';
import { watchPeers } from './peer-watch.js';
import { ReadLoop, type Mode } from './loop.js';
import { dhcpMetrics, type DhcpMetrics } from './metrics.js';
import { Outbox } from './outbox.js';
import { ProxyMode } from './proxy.js';
import { RateLimiter } from './ratelimit.js';
import { servedInterface } from './served-interface.js';
import { UnknownMacBudget } from './unknown-macs.js';

export interface DhcpServer {
  close(): Promise<void>;
}

export interface DhcpServerOptions {
  config: Config;
  registry: Registry;
  logger: Logger;
  /** The boot decision and the CMDB, as the daemon hands them over. */
  boot: DhcpBootPath;
}

const ZERO = '0.0.0.0';

/**
 * Starts livery's DHCP server on dhcp.interface, or, while that interface does not carry
 * dhcp.address yet (no carrier: Node lists only running links), waits for it, checking every
 * dhcp.interfaceRetrySeconds, and starts answering as soon as it does; the rest of livery
 * serves meanwhile. An interface that does not exist at all is refused at once (InterfaceError).
 */
export async function startDhcpServer(opts: DhcpServerOptions): Promise<DhcpServer> {
  const d = opts.config.dhcp;
  const metrics = dhcpMetrics(opts.registry);
  const served = servedInterface(d.interface, d.address);
  if (served.ready) return listen(opts, metrics, served.index);
  metrics.up.set(0);
  opts.logger.warn({ interface: d.interface, address: d.address }, `${served.why}: DHCP waits for it, checking every ${d.interfaceRetrySeconds} s (HTTP and TFTP serve meanwhile)`);
  let server: DhcpServer | null = null;
  const timer = setInterval(() => {
    try {
      const now = servedInterface(d.interface, d.address);
      if (!now.ready) return;
      clearInterval(timer);
      server = listen(opts, metrics, now.index);
    } catch (err) {
      // The interface was removed, or the socket could not be opened: say so, and keep trying.
      opts.logger.error({ err }, 'dhcp: cannot start on its interface yet; will try again');
    }
  }, d.interfaceRetrySeconds * 1000);
  return {
    close: async () => {
      clearInterval(timer);
      await server?.close();
    },
  };
}

/**
 * livery's DHCP server. One socket on port 67 (and 4011 in proxy mode), confined to the served
 * interface, read by the ReadLoop; each packet is answered by the mode's handler (FullMode or
 * ProxyMode) and what they produce is committed in batches by the Outbox: an ACK leaves only
 * once its lease is on disk.
 */
function listen(opts: DhcpServerOptions, metrics: DhcpMetrics, ifindex: number): DhcpServer {
  const { config, logger, boot } = opts;
  const d = config.dhcp;
  const balance = new LoadBalance(nodeName(config), d.peers, boot.nodeAlive);
  const books = new LeaseBooks(boot, {
    offerHoldSeconds: d.offerHoldSeconds,
    declineQuarantineSeconds: d.declineQuarantineSeconds,
    share: { index: balance.index, of: balance.members.length },
  });
  if (d.mode === 'full' && !books.containing(parseIpv4(d.address)!)) {
    logger.warn({ address: d.address }, 'no subnet in the CMDB contains dhcp.address: only relayed clients will get addresses');
  }
  let mode: Mode;
  const outage = new CmdbOutage(opts.registry, logger);
  const outbox = new Outbox(
    (ops) => boot.commit(ops),
    metrics,
    logger,
    outage,
    () => {
      try {
        books.reload();
      } catch (err) {
        // The next packet's refresh reads them back; its answer waits until one can.
        if (!outage.failed(err)) logger.error({ err }, 'reading the lease books back failed: trying again with the next packet');
      }
    },
    (holders) => {
      const now = Date.now();
      for (const row of holders) books.learn(row, now, true);
      logger.warn({ addresses: holders.map((h) => h.ip) }, 'another node leased these addresses first: their clients were sent a NAK and start over');
    },
  );
  books.whenReloaded(() => mode.reloaded());
  const exchange = new Exchange(boot, outbox, books, new DiscoveryBudget(config.discovery), metrics, { server: d.port, client: d.clientPort }, d.address);
  if (d.mode === 'proxy') {
    mode = new ProxyMode(exchange, books);
  } else {
    const unknownMacs = new UnknownMacBudget({ cap: d.unknownMacLeaseCap, poolPercent: d.unknownMacPoolPercent });
    mode = new FullMode(exchange, books, unknownMacs, (mac) => isUnknown(boot.machine(mac)), metrics, logger);
  }
  const limiter = new RateLimiter(d.rateLimit.perMacPerSecond, d.rateLimit.globalPerSecond);
  const relaySources = d.relaySources.map((r) => parseAddressOrCidr(r)!);
  const loop = new ReadLoop(mode, outbox, boot, books, limiter, balance, metrics, logger, outage, { maxWaitMs: d.maxWaitMs, serverPort: d.port, relaySources });
  const sockets: DatagramSocket[] = [];
  const unwatch = d.peers.length > 0 ? watchPeers(d.peers, boot.nodeAlive, metrics.peerUp, logger) : () => {};
  const close = async () => {
    unwatch();
    await loop.stop();
    for (const socket of sockets) socket.close();
  };
  try {
    const main: DatagramSocket = openSocket(d.port, ifindex, (buf, address, port) => loop.onPacket(buf, { address, port }, main, 'main'));
    sockets.push(main);
    if (d.mode === 'proxy') {
      const proxy: DatagramSocket = openSocket(d.proxyPort, ifindex, (buf, address, port) => loop.onPacket(buf, { address, port }, proxy, 'proxy-4011'));
      sockets.push(proxy);
    }
  } catch (err) {
    void close();
    throw err;
  }
  metrics.up.set(1);
  logger.info({ interface: d.interface, address: d.address, mode: d.mode, port: d.port }, 'dhcp listening');
  return { close };
}

/**
 * Port 67 (or 4011) on every address, confined to the served interface: Node's dgram cannot say
 * which interface a broadcast arrived on, so the socket neither receives nor sends on any other.
 */
function openSocket(port: number, ifindex: number, onDatagram: OnDatagram): DatagramSocket {
  return openDatagramSocket({ address: ZERO, port, ifindex, receiveBufferBytes: BURST_RECEIVE_BUFFER_BYTES }, onDatagram);
}
