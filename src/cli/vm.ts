import type { Command } from 'commander';
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { createWriteStream, existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { fileURLToPath } from 'node:url';
import { normalizeMac } from '../net/mac.js';
import { OVMF_CODE, QEMU } from '../lab/vm/qemu.js';
import type { VmSessionResult } from '../lab/vm/session.js';
import { CliError, parseResponse, type ApiClient } from './client.js';
import { wholeNumber } from './numbers.js';
import { clientFor, globals } from './context.js';
import { printJson } from './output.js';

interface VmBootFlags {
  uefi?: boolean;
  pxe?: boolean;
  mac?: string;
  memory: string;
  cpus: string;
  accel: string;
  exitOnBoot?: boolean;
  timeout?: string;
}

/** What to boot: a bundle on disk, and the MAC and hostname the VM gets. */
interface Target {
  bundle: string;
  mac: string | null;
  hostname: string;
}

export function registerVmCommands(program: Command): void {
  const vm = program.command('vm').description('throwaway VMs that network-boot from a private livery (needs root and QEMU)');
  vm.command('boot')
    .description(
      'boot an image in a throwaway VM: a private network namespace, a private livery loaded with the image, the console on ' +
        'this terminal; Ctrl-C (or QEMU exiting) removes everything',
    )
    .argument('<image-or-mac>', 'a bundle file, an image id on the server (--url), or a machine MAC there (its image, MAC and hostname)')
    .option('--uefi', 'UEFI firmware (OVMF) instead of BIOS')
    .option('--pxe', "no iPXE ROM on the NIC: the firmware's PXE client loads iPXE over TFTP first, as real servers do")
    .option('--mac <mac>', "the VM's MAC (default: the machine's, else a random 52:54:00:xx:xx:xx)")
    .option('--memory <MiB>', 'VM memory; the rootfs is held in RAM', '1024')
    .option('--cpus <n>', 'VM CPUs', '2')
    .option('--accel <accel>', 'auto (KVM only if a probe boot works) | kvm | tcg', 'auto')
    .option('--exit-on-boot', 'stop as soon as the image phones home (exit 0), for scripts')
    .option('--timeout <seconds>', 'give up (exit 1) if the image has not phoned home by then')
    .action(async (ref: string, flags: VmBootFlags, cmd: Command) => {
      const settings = parseFlags(flags);
      if (process.getuid?.() !== 0) {
        throw new CliError('vm boot needs root: it creates a network namespace, a bridge and a tap device, and runs a DHCP server on them (try sudo)');
      }
      requireTools(settings.firmware);
      const downloads = mkdtempSync(join(tmpdir(), 'livery-vm-image-'));
      const stop = new AbortController();
      const interrupt = () => stop.abort();
      const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
      for (const s of signals) process.on(s, interrupt);
      try {
        const target = await resolveTarget(ref, clientFor(cmd), downloads);
        // Loaded here so that other commands do not pay for the VM machinery's start-up.
        const { runVmSession } = await import('../lab/vm/session.js');
        const result = await runVmSession({
          ...settings,
          bundle: target.bundle,
          mac: settings.mac ?? target.mac ?? randomMac(),
          hostname: target.hostname,
          cli: fileURLToPath(new URL('./main.js', import.meta.url)),
          // --json keeps stdout for the result; the console stays in the session's log.
          terminal: !globals(cmd).json,
          say: (line) => process.stderr.write(`livery vm: ${line}\n`),
          signal: stop.signal,
        });
        if (globals(cmd).json) printJson(result);
        process.exitCode = exitCode(result);
      } finally {
        for (const s of signals) process.off(s, interrupt);
        rmSync(downloads, { recursive: true, force: true });
      }
    });
}

/** 130 after Ctrl-C (as shells report SIGINT); otherwise success means the image phoned home. */
function exitCode(r: VmSessionResult): number {
  if (r.ended === 'interrupted') return 130;
  return r.bootSeconds === null ? 1 : 0;
}

function parseFlags(flags: VmBootFlags) {
  const mac = flags.mac === undefined ? undefined : normalizeMac(flags.mac);
  if (mac === null) throw new CliError(`--mac: not a MAC address: ${flags.mac}`);
  const positive = (name: string, text: string, max: number) => wholeNumber(name, text, 1, max);
  if (!['auto', 'kvm', 'tcg'].includes(flags.accel)) throw new CliError(`--accel: expected auto, kvm or tcg, got ${JSON.stringify(flags.accel)}`);
  return {
    mac,
    firmware: flags.uefi ? ('uefi' as const) : ('bios' as const),
    nicRom: !flags.pxe,
    memoryMiB: positive('--memory', flags.memory, 65536),
    cpus: positive('--cpus', flags.cpus, 64),
    accel: flags.accel as 'auto' | 'kvm' | 'tcg',
    exitOnBoot: Boolean(flags.exitOnBoot),
    timeoutMs: flags.timeout === undefined ? null : positive('--timeout', flags.timeout, 86_400) * 1000,
  };
}

function requireTools(firmware: 'bios' | 'uefi'): void {
  if (spawnSync(QEMU, ['--version'], { stdio: 'ignore' }).error) throw new CliError(`${QEMU} not found: install the Debian package qemu-system-x86`);
  if (firmware === 'uefi' && !existsSync(OVMF_CODE)) throw new CliError(`--uefi: ${OVMF_CODE} not found: install the Debian package ovmf`);
}

/** A bundle file as it is; an image id or a machine's MAC is looked up on the server and its bundle downloaded. */
async function resolveTarget(ref: string, client: ApiClient, downloads: string): Promise<Target> {
  if (existsSync(ref) && statSync(ref).isFile()) return { bundle: resolve(ref), mac: null, hostname: 'livery-vm' };
  if (ref.includes('/') || ref.endsWith('.tar')) throw new CliError(`${ref}: no such bundle file`);
  const mac = normalizeMac(ref);
  if (mac) {
    const plan = await client.get<{ machine: { hostname: string | null } | null; image: { id: string } | null; reasons: string[] }>(
      `/v1/machines/${encodeURIComponent(mac)}/explain`,
    );
    if (!plan.image) throw new CliError(`${mac} boots no image on ${client.baseUrl}: ${plan.reasons.at(-1) ?? 'no reason given'}`);
    return { bundle: await download(client, plan.image.id, downloads), mac, hostname: plan.machine?.hostname ?? 'livery-vm' };
  }
  return { bundle: await download(client, ref, downloads), mac: null, hostname: 'livery-vm' };
}

async function download(client: ApiClient, imageId: string, dir: string): Promise<string> {
  const url = `${client.baseUrl}/v1/images/${encodeURIComponent(imageId)}/bundle`;
  let res: Response;
  try {
    res = await fetch(url, { headers: client.headers() });
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    throw new CliError(`cannot reach ${client.baseUrl}: ${cause?.code ?? cause?.message ?? (err as Error).message} (set --url or LIVERY_URL)`);
  }
  if (!res.ok || !res.body) await parseResponse(res);
  const file = join(dir, 'image.tar');
  await pipeline(Readable.fromWeb(res.body as unknown as WebReadableStream), createWriteStream(file));
  return file;
}

/** A locally administered address in QEMU's 52:54:00 range. */
const randomMac = () => ['52', '54', '00', ...randomBytes(3).toString('hex').match(/../g)!].join(':');
