/**
 * Real boot: seconds from QEMU start to the image's phone-home line on the serial console, for
 * images/minimal on one BIOS VM (SeaBIOS with the NIC's iPXE ROM, as the e2e BIOS test), all
 * inside a private network namespace (bridge and taps from createPrivateNetwork).
 *
 * Livery: a fresh `livery serve` on the bridge (DHCP full mode, HTTP) with the image published
 * and the machine registered. Reference, on the same bridge once livery has stopped (never two
 * DHCP servers on one bridge): dnsmasq, DHCP only, sends iPXE to a hand-written boot.ipxe on
 * nginx, which serves the very same kernel, initrd and rootfs (hard links to livery's blobs);
 * the script's kernel command line is the one livery rendered for the machine, URLs pointed at
 * nginx. Each round boots once from each side, livery first, each side's servers started fresh.
 */
import { execFileSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, linkSync, mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { buildImage, type BuildResult } from '../src/builder/index.js';
import { BlobStore } from '../src/catalog/blob-store.js';
import {
  chooseAccel,
  createPrivateNetwork,
  PHONE_HOME,
  QEMU,
  startLabLivery,
  startVm,
  stopProcess,
  waitForOutput,
  type AccelChoice,
  type LabLivery,
  type PrivateNetwork,
} from '../src/lab/vm/index.js';
import { CLI } from '../test/helpers/cli.js';
import { versionOf, type BenchHarness, type BenchRow } from './lib/harness.js';
import { nginxVersion, startNginx } from './lib/nginx.js';

const RECIPE = resolve(import.meta.dirname, '../images/minimal/recipe');
/** The e2e test's builder cache: with the Debian base already in it, a build takes ~20 s. */
const BUILDER_CACHE = '/var/cache/livery/test-builder';
const MACHINE = { mac: '52:54:00:be:0e:01', hostname: 'real-boot' };
const VM = { memoryMiB: 1024, cpus: 2 };
/** A bound, not an expectation: under TCG a boot takes about two minutes on two idle cores. */
const BOOT_TIMEOUT_MS = 240_000;
/** livery's lab server listens on 8080; nginx gets a port of its own, so no URL means both. */
const NGINX_PORT = 8081;
const MB = 1_000_000;

export default async function realBoot(h: BenchHarness): Promise<BenchRow[]> {
  if (process.getuid?.() !== 0) throw new Error('the real boot benchmark needs root (network namespaces, taps, QEMU)');
  statSync(CLI); // livery serve runs from dist/: `npm run build` first.
  const started = Date.now();
  h.log('building images/minimal (cached base) while probing KVM');
  const [build, accel] = await Promise.all([buildImage({ recipePath: RECIPE, outDir: join(h.tmpDir, 'bundle'), cacheDir: BUILDER_CACHE }), chooseAccel('bios')]);
  h.log(`VMs use ${accel.accel}: ${accel.reason}`);
  // nginx's workers run as nobody: the scratch folder (mkdtemp, 0700) must be traversable.
  chmodSync(h.tmpDir, 0o755);
  const net = createPrivateNetwork({ tag: 'realboot' });
  // If the runner gives up on this benchmark, it exits without running our finally: the
  // namespace, with whatever still runs in it (QEMU, livery, dnsmasq, nginx), goes then.
  const lastResort = () => net.remove();
  process.once('exit', lastResort);
  try {
    const livery: number[] = [];
    const reference: number[] = [];
    let standIn: StandInFiles | null = null;
    let cutShort = '';
    for (let round = 1; round <= h.runs; round++) {
      const roundStarted = Date.now();
      const side = await startLiverySide(net, join(h.tmpDir, `livery-${round}`), build);
      try {
        standIn ??= prepareStandIn(net, side, build, join(h.tmpDir, 'www'));
        livery.push(await timeBoot(net, join(h.tmpDir, `vm-livery-${round}`), accel, side.server.output));
      } finally {
        await side.server.stop();
        // The stand-in's hard links keep the blobs it serves.
        rmSync(side.dataDir, { recursive: true, force: true });
      }
      const stand = await startStandIn(net, join(h.tmpDir, `stand-in-${round}`), standIn);
      try {
        reference.push(await timeBoot(net, join(h.tmpDir, `vm-reference-${round}`), accel, stand.output));
      } finally {
        await stand.stop();
      }
      h.log(`round ${round}/${h.runs}: livery ${livery.at(-1)!.toFixed(1)} s, dnsmasq + nginx ${reference.at(-1)!.toFixed(1)} s`);
      const roundMs = Date.now() - roundStarted;
      // Past h.timeoutMs the runner abandons the benchmark: a round starts only when one as long
      // as the last, and half as long again, still fits, with a minute left to tear down.
      if (round < h.runs && Date.now() - started + 1.5 * roundMs > h.timeoutMs - 60_000) {
        cutShort = `only ${round} of ${h.runs} rounds fitted in BENCH_TIMEOUT_S`;
        h.log(cutShort);
        break;
      }
    }
    return [
      h.row({
        name: 'real boot: QEMU start to phone-home, minimal image',
        unit: 's',
        higherIsBetter: false,
        livery,
        reference,
        referenceName: 'dnsmasq + nginx (static files, hand-written iPXE script)',
        notes: describe(accel, build, cutShort),
      }),
    ];
  } finally {
    net.remove();
    process.off('exit', lastResort);
  }
}

function describe(accel: AccelChoice, build: BuildResult, cutShort: string): string {
  const size = (role: string) => (build.manifest.artifacts.find((a) => a.role === role)!.size / MB).toFixed(0);
  const versions = [versionOf('dnsmasq').replace(/\s+Copyright.*/, ''), nginxVersion(), versionOf(QEMU)].join(', ');
  return [
    `accel ${accel.accel} (${accel.reason})`,
    `firmware: BIOS (SeaBIOS) with the NIC's iPXE ROM (virtio-net), as the e2e BIOS test; ${VM.memoryMiB} MiB, ${VM.cpus} vCPUs`,
    `images/minimal: kernel ${size('kernel')} MB, initrd ${size('initrd')} MB, rootfs ${size('rootfs')} MB`,
    'timed from QEMU start to the agent\'s "booted image" console line; per round one boot from each side, livery first, servers started fresh for each',
    'livery: livery serve (DHCP full mode, TFTP, HTTP), machine registered',
    'reference: dnsmasq DHCP only with --no-ping (livery does not ping-check addresses either), iPXE user class sent to boot.ipxe on nginx; ' +
      "nginx serves hard links to livery's blobs and a script with livery's kernel command line for the machine, URLs pointed at nginx; " +
      'the phone-home (and the metadata request before it) goes to nginx, which answers 204',
    ...(cutShort ? [cutShort] : []),
    versions,
  ].join('; ');
}

interface LiverySide {
  server: LabLivery;
  dataDir: string;
  imageId: string;
}

/** A fresh `livery serve` on the bridge with the image published and the machine registered. */
async function startLiverySide(net: PrivateNetwork, dataDir: string, build: BuildResult): Promise<LiverySide> {
  const server = await startLabLivery({ net, dataDir, cli: CLI });
  try {
    const image = await server.cli<{ id: string }>(['image', 'publish', build.bundlePath]);
    await server.cli(['machine', 'add', '--mac', MACHINE.mac, '--hostname', MACHINE.hostname, '--image-id', image.id]);
    return { server, dataDir, imageId: image.id };
  } catch (err) {
    await server.stop();
    throw err;
  }
}

interface StandInFiles {
  /** nginx's root: images/<id>/<artifact> and boot.ipxe. */
  root: string;
  url: string;
}

/**
 * The stand-in's web root, from a running livery side: hard links to the blobs livery serves,
 * laid out as livery's URLs are, and boot.ipxe written from livery's script for the machine.
 */
function prepareStandIn(net: PrivateNetwork, side: LiverySide, build: BuildResult, root: string): StandInFiles {
  const url = `http://${net.address}:${NGINX_PORT}`;
  const blobs = new BlobStore(join(side.dataDir, 'blobs'));
  const imageDir = join(root, 'images', side.imageId);
  mkdirSync(imageDir, { recursive: true });
  for (const a of build.manifest.artifacts) linkSync(blobs.path(a.sha256), join(imageDir, a.name));

  const rendered = execFileSync('ip', ['netns', 'exec', net.ns, 'curl', '-fsS', '--max-time', '10', `${side.server.url}/boot/${MACHINE.mac}.ipxe`], {
    encoding: 'utf8',
    timeout: 15_000,
  });
  const kernel = /^kernel\s+(?:--name\s+\S+\s+)?(\S+)\s+(.*?)\s*(?:\|\|.*)?$/m.exec(rendered);
  const initrd = /^initrd\s+(?:--name\s+\S+\s+)?(\S+)/m.exec(rendered);
  if (!kernel || !initrd) throw new Error(`no kernel and initrd lines in livery's script for ${MACHINE.mac}:\n${rendered}`);
  const toNginx = (text: string) => text.replaceAll(side.server.url, url).replaceAll(`?mac=${MACHINE.mac}`, '');
  const script = `#!ipxe\nkernel ${toNginx(kernel[1]!)} ${toNginx(kernel[2]!)}\ninitrd ${toNginx(initrd[1]!)}\nboot\n`;
  // A URL nginx cannot serve would only show as a boot that hangs until its timeout.
  for (const link of script.match(/http:\/\/\S+/g) ?? []) {
    const path = new URL(link).pathname;
    if (link.startsWith(url) && path !== '/' && !existsSync(join(root, path))) throw new Error(`the stand-in has no file for ${link}:\n${script}`);
  }
  writeFileSync(join(root, 'boot.ipxe'), script);
  return { root, url };
}

/**
 * nginx with the stand-in's files (and 204 for the agent's requests to /v1/), and dnsmasq as
 * a DHCP server on the bridge only, sending iPXE (user class "iPXE") to boot.ipxe.
 */
async function startStandIn(net: PrivateNetwork, dir: string, files: StandInFiles): Promise<{ output: () => string; stop: () => Promise<void> }> {
  mkdirSync(dir, { recursive: true });
  const nginx = await startNginx(dir, files.root, NGINX_PORT, { address: net.address, spawn: net.spawn, serverDirectives: 'location /v1/ { return 204; }' });
  let dnsmasq: ChildProcess | null = null;
  const stop = async () => {
    if (dnsmasq) await stopProcess(dnsmasq);
    await nginx.stop();
  };
  try {
    dnsmasq = net.spawn('dnsmasq', [
      '--keep-in-foreground',
      '--conf-file=/dev/null',
      '--port=0',
      '--log-facility=-',
      `--interface=${net.bridge}`,
      '--bind-interfaces',
      `--dhcp-range=${net.hostAddress(100)},${net.hostAddress(199)},1h`,
      '--dhcp-userclass=set:ipxe,iPXE',
      `--dhcp-boot=tag:ipxe,${files.url}/boot.ipxe`,
      '--no-ping',
      `--dhcp-leasefile=${join(dir, 'dnsmasq.leases')}`,
      `--pid-file=${join(dir, 'dnsmasq.pid')}`,
    ]);
    let output = '';
    dnsmasq.stdout!.on('data', (d) => (output += d));
    dnsmasq.stderr!.on('data', (d) => (output += d));
    // Logged once its DHCP socket is open.
    await waitForOutput(dnsmasq, () => output, 'DHCP, IP range', 15_000, 'dnsmasq');
    return { output: () => output, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** Seconds from QEMU start to the phone-home line on the console; the VM is stopped either way. */
async function timeBoot(net: PrivateNetwork, dir: string, accel: AccelChoice, serverLog: () => string): Promise<number> {
  const vm = startVm({ net, dir, mac: MACHINE.mac, firmware: 'bios', accel: accel.accel, nicRom: true, ...VM });
  try {
    await vm.console.waitFor(PHONE_HOME, { timeoutMs: BOOT_TIMEOUT_MS, stopped: vm.stopped, pollMs: 200 });
    return (Date.now() - vm.startedAt) / 1000;
  } catch (err) {
    const log = serverLog().trim().split('\n').slice(-30).join('\n');
    throw new Error(`${(err as Error).message}\nserver log tail:\n${log}\nqemu: ${vm.messages().trim()}`);
  } finally {
    await vm.stop();
  }
}
