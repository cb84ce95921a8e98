import { createSocket, type RemoteInfo } from 'node:dgram';
import { decodePacket, encodePacket, ErrorCode, type TftpPacket } from '../../tftp/codec.js';

export interface TftpRequest {
  server: string;
  port: number;
  /** The machine's own (leased) address: the server sees one client per machine. */
  localAddress: string;
  file: string;
  blksize: number;
  /** Waits for the next packet before repeating our last one (doubling each time). */
  waitsMs: number[];
  signal: AbortSignal;
}

export interface TftpFetched {
  bytes: number;
  /** tsize as the OACK stated it. */
  tsize: number;
  blksize: number;
  retransmissions: number;
}

/**
 * Reads one file the way a PXE ROM does: RRQ with `blksize` and `tsize 0`, ACK 0 for the OACK,
 * then one ACK per DATA block (no windowsize). Our last packet is repeated when the server goes
 * quiet; a repeated DATA block is acknowledged again. Resolves when the short final block
 * arrives; rejects with the reason on ERROR, silence, or an OACK that does not fit the request.
 */
export function tftpGet(req: TftpRequest): Promise<TftpFetched> {
  const socket = createSocket('udp4');
  const rrq = encodePacket({
    op: 'rrq',
    filename: req.file,
    mode: 'octet',
    options: [
      { name: 'blksize', value: String(req.blksize) },
      { name: 'tsize', value: '0' },
    ],
  });
  return new Promise<TftpFetched>((resolve, reject) => {
    let tid: number | null = null;
    let blksize = 0;
    let tsize = -1;
    let expected = 1;
    let bytes = 0;
    let last = rrq;
    let silentTries = 0;
    let retransmissions = 0;
    let timer: NodeJS.Timeout | undefined;
    let finished = false;

    const send = (packet: Buffer, port = tid ?? req.port) => socket.send(packet, port, req.server);
    // Every packet heard restarts the first wait: the same timer, restarted in place, rather
    // than a new one per block (a thousand transfers of fifty blocks each in one process).
    let armedFor = -1;
    const arm = () => {
      if (armedFor === silentTries && timer) {
        timer.refresh();
        return;
      }
      clearTimeout(timer);
      armedFor = silentTries;
      timer = setTimeout(onSilence, req.waitsMs[silentTries]);
    };
    const finish = (error: Error | null) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      req.signal.removeEventListener('abort', aborted);
      if (error) {
        socket.close();
        return reject(error);
      }
      // Stay a while to acknowledge the final block again if our ACK was lost (RFC 1350
      // "dallying"): long enough for the server's first two retransmissions.
      setTimeout(() => socket.close(), 3 * req.waitsMs[0]!).unref();
      resolve({ bytes, tsize, blksize, retransmissions });
    };
    const aborted = () => finish(req.signal.reason as Error);
    const onSilence = () => {
      silentTries++;
      if (silentTries === req.waitsMs.length) return finish(new Error(`no answer after ${silentTries} tries (${tid === null ? 'RRQ' : `block ${expected}`})`));
      retransmissions++;
      send(last);
      arm();
    };
    const ack = (block: number) => {
      last = encodePacket({ op: 'ack', block });
      send(last);
    };
    const onPacket = (packet: TftpPacket) => {
      switch (packet.op) {
        case 'oack': {
          if (expected !== 1) return; // A late duplicate: DATA has begun.
          const opts = new Map(packet.options.map((o) => [o.name.toLowerCase(), o.value]));
          blksize = Number(opts.get('blksize') ?? 512);
          tsize = opts.has('tsize') ? Number(opts.get('tsize')) : -1;
          if (!(blksize >= 8 && blksize <= req.blksize)) return finish(new Error(`OACK blksize ${opts.get('blksize')} is not within 8..${req.blksize}`));
          if (tsize < 0) return finish(new Error('OACK without tsize'));
          return ack(0);
        }
        case 'data': {
          if (blksize === 0) return finish(new Error('DATA without an OACK: the server ignored blksize and tsize'));
          if (packet.block === ((expected - 1) & 0xffff)) return ack(packet.block); // Our ACK was lost.
          if (packet.block !== (expected & 0xffff)) return;
          bytes += packet.data.length;
          ack(packet.block);
          expected++;
          if (packet.data.length < blksize) finish(null);
          return;
        }
        case 'error':
          return finish(new Error(`server error ${packet.code}: ${packet.message}`));
        default:
          return finish(new Error(`unexpected ${packet.op} from the server`));
      }
    };

    socket.on('message', (msg: Buffer, from: RemoteInfo) => {
      if (from.address !== req.server) return;
      if (tid === null) tid = from.port;
      else if (from.port !== tid) {
        // A second transfer the server started for a retransmitted RRQ: tell it to stop.
        send(encodePacket({ op: 'error', code: ErrorCode.UNKNOWN_TID, message: 'unknown transfer ID' }), from.port);
        return;
      }
      const decoded = decodePacket(msg);
      if (!decoded.ok) return;
      if (finished) {
        if (decoded.packet.op === 'data') ack(decoded.packet.block);
        return;
      }
      silentTries = 0;
      arm();
      onPacket(decoded.packet);
    });
    socket.on('error', (err) => finish(err));
    if (req.signal.aborted) return finish(req.signal.reason as Error);
    req.signal.addEventListener('abort', aborted, { once: true });
    socket.bind({ address: req.localAddress, port: 0 }, () => {
      send(rrq);
      arm();
    });
  });
}
