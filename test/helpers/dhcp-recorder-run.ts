import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RecorderSpec, RecorderSummary } from './dhcp-recorder.js';
import type { TestNet } from './netns.js';

const RECORDER = join(import.meta.dirname, 'dhcp-recorder.ts');

/** One ACK the recorder saw: when (ms), for which MAC, which address. */
export interface Ack {
  at: number;
  mac: string;
  ip: string;
}

export interface Recorder {
  /** Sends `hold` or `release`; resolves with how many REQUESTs it then held or released. */
  command(c: 'hold' | 'release'): Promise<number>;
  /** Ends it (SIGTERM, SIGKILL after 5 s); resolves with the recorder's summary. */
  stop(): Promise<RecorderSummary>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Every complete line the recorder has written to `file` so far. */
export function readAcks(file: string): Ack[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .slice(0, -1)
    .map((line) => {
      const [at, mac, ip] = line.split(' ');
      return { at: Number(at), mac: mac!, ip: ip! };
    });
}

/** Runs test/helpers/dhcp-recorder.ts in the client namespace. */
export function startRecorder(net: TestNet, spec: RecorderSpec): Recorder {
  const proc = net.spawn(net.client, process.execPath, ['--import', 'tsx', RECORDER, JSON.stringify(spec)], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  const lines = () => out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, number>);
  return {
    command: async (c) => {
      const answer = c === 'hold' ? 'held' : 'released';
      const before = lines().length;
      proc.stdin!.write(`${c}\n`);
      for (let waited = 0; ; waited += 10) {
        const reply = lines().slice(before).find((l) => answer in l);
        if (reply) return reply[answer]!;
        if (waited > 10_000 || proc.exitCode !== null) throw new Error(`the recorder did not answer "${c}":\n${out}`);
        await sleep(10);
      }
    },
    stop: async () => {
      if (proc.exitCode === null) proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
      const summary = lines().at(-1);
      if (!summary || !('acked' in summary)) throw new Error(`the recorder printed no summary:\n${out}`);
      return summary as unknown as RecorderSummary;
    },
  };
}
