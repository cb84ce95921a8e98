import type { Command } from 'commander';
import { createReadStream, createWriteStream, statSync } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import type { GcReport } from '../catalog/index.js';
import type { Channel, ChannelChange, Image, ImageSummary } from '../cmdb/types.js';
import { parseResponse } from './client.js';
import { registerImageBuild } from './image-build.js';
import { registerImagePull } from './image-pull.js';
import { clientFor, globals } from './context.js';
import { printJson, printRecord, printTable } from './output.js';
import { contentLength, download, fromWeb, progress, showBar, upload } from './transfer.js';

/** Wherever the CLI takes an image, the server resolves any of these forms to one image or says why not. */
const IMAGE_REF = 'image id (or a unique prefix of it), NAME@CHANNEL or NAME:VERSION';

type Listed = ImageSummary & { channels: string[] };
type Move = Pick<ChannelChange, 'name' | 'channel' | 'imageId' | 'previousImageId'> & { changed: boolean };

const MiB = 1024 * 1024;
const shortId = (id: string | null) => (id ? id.slice(0, 8) : '-');

function showImage(image: Image & { channels?: string[] }): void {
  printRecord({
    id: image.id,
    name: image.name,
    version: image.version,
    os: image.os,
    arch: image.arch,
    created: image.createdAt,
    published: image.publishedAt,
    channels: image.channels ?? [],
    kernelArgs: image.kernelArgs,
  });
  printTable(
    ['ARTIFACT', 'ROLE', 'SIZE', 'SHA256'],
    image.artifacts.map((a) => [a.name, a.role, a.size, a.sha256]),
  );
}

const describeMove = (verb: string, m: Move) =>
  m.changed ? `${verb} ${m.name}@${m.channel}: ${shortId(m.previousImageId)} → ${shortId(m.imageId)}` : `${m.name}@${m.channel} already points at ${m.imageId}`;

/** Streams a bundle file to the server's catalog, with a progress bar on a terminal. */
async function publishFile(cmd: Command, file: string, channel: string | undefined): Promise<Listed> {
  const size = statSync(file).size;
  const body = createReadStream(file).pipe(progress('publish', size, showBar(cmd)));
  return parseResponse<Listed>(await upload(clientFor(cmd), body, size, channel));
}

export function registerImageCommands(program: Command): void {
  const image = program.command('image').description('the image catalog: publish, channels, export and pull');
  const path = (id: string) => `/v1/images/${encodeURIComponent(id)}`;

  image
    .command('publish')
    .description('publish a bundle (.tar with manifest.json first)')
    .argument('<bundle>', 'bundle file')
    .option('--channel <channel>', 'also point this channel of the image name at it')
    .action(async (file: string, flags: { channel?: string }, cmd: Command) => {
      const published = await publishFile(cmd, file, flags.channel);
      globals(cmd).json ? printJson(published) : console.log(`published ${published.name} ${published.version} as ${published.id}`);
    });

  registerImageBuild(image, publishFile);

  image
    .command('list')
    .description('list images')
    .option('--name <name>', 'only images of this name')
    .action(async (flags: { name?: string }, cmd: Command) => {
      const q = flags.name ? `?name=${encodeURIComponent(flags.name)}` : '';
      const { items } = await clientFor(cmd).get<{ items: Listed[] }>(`/v1/images${q}`);
      if (globals(cmd).json) return printJson(items);
      printTable(
        ['ID', 'NAME', 'VERSION', 'OS', 'PUBLISHED', 'CHANNELS'],
        items.map((i) => [i.id, i.name, i.version, `${i.os}/${i.arch}`, i.publishedAt, i.channels.map((c) => c.split('@')[1]).join(',')]),
      );
    });

  image
    .command('show')
    .description('show one image and its artifacts')
    .argument('<image>', IMAGE_REF)
    .action(async (id: string, _f: unknown, cmd: Command) => {
      const found = await clientFor(cmd).get<Image & { channels: string[] }>(path(id));
      globals(cmd).json ? printJson(found) : showImage(found);
    });

  image
    .command('channels')
    .description('list channels and the image each points at')
    .action(async (_f: unknown, cmd: Command) => {
      const { items } = await clientFor(cmd).get<{ items: Channel[] }>('/v1/channels');
      if (globals(cmd).json) return printJson(items);
      printTable(['NAME', 'CHANNEL', 'IMAGE', 'VERSION', 'UPDATED'], items.map((c) => [c.name, c.channel, c.imageId, c.version, c.updatedAt]));
    });

  image
    .command('promote')
    .description('point <channel> of the image name at this image')
    .argument('<image>', IMAGE_REF)
    .argument('<channel>', 'e.g. testing, stable')
    .action(async (id: string, channel: string, _f: unknown, cmd: Command) => {
      const m = await clientFor(cmd).request<Move>('POST', `${path(id)}/promote`, { channel });
      globals(cmd).json ? printJson(m) : console.log(describeMove('promoted', m));
    });

  image
    .command('rollback')
    .description('point a channel back at the image it had before its last change')
    .argument('<name>', 'image name')
    .argument('<channel>', 'channel')
    .action(async (name: string, channel: string, _f: unknown, cmd: Command) => {
      const m = await clientFor(cmd).request<Move>('POST', `/v1/channels/${encodeURIComponent(name)}/${encodeURIComponent(channel)}/rollback`);
      globals(cmd).json ? printJson(m) : console.log(describeMove('rolled back', m));
    });

  image
    .command('pin')
    .description('make a machine boot exactly this image (empty id "" unpins)')
    .argument('<machine>', 'MAC, hostname or id')
    .argument('<image>', IMAGE_REF)
    .action(async (machine: string, ref: string, _f: unknown, cmd: Command) => {
      const client = clientFor(cmd);
      const id = ref === '' ? '' : (await client.get<Image>(path(ref))).id;
      const m = await client.request<{ hostname: string | null; macs: string[]; image: { id: string | null } }>(
        'PATCH',
        `/v1/machines/${encodeURIComponent(machine)}`,
        { image: { id: id === '' ? null : id } },
      );
      globals(cmd).json ? printJson(m) : console.log(m.image.id ? `pinned ${m.hostname ?? m.macs[0]} to ${m.image.id}` : `unpinned ${m.hostname ?? m.macs[0]}`);
    });

  image
    .command('rm')
    .description('delete an image (refused while a channel or machine refers to it; blobs go at the next gc)')
    .argument('<image>', IMAGE_REF)
    .action(async (id: string, _f: unknown, cmd: Command) => {
      const removed = await clientFor(cmd).request<Image>('DELETE', path(id));
      globals(cmd).json ? printJson(removed) : console.log(`deleted ${removed.name} ${removed.version} (${removed.id})`);
    });

  image
    .command('gc')
    .description('remove blobs no image uses, and stale temp files')
    .action(async (_f: unknown, cmd: Command) => {
      const r = await clientFor(cmd).request<GcReport>('POST', '/v1/images/gc');
      globals(cmd).json ? printJson(r) : console.log(`removed ${r.blobs} blob(s), ${(r.bytes / MiB).toFixed(1)} MiB; ${r.tempFiles} stale temp file(s)`);
    });

  image
    .command('export')
    .description('download an image as a bundle')
    .argument('<image>', IMAGE_REF)
    .option('-o, --output <file>', 'where to write it (default <name>-<version>.tar)')
    .action(async (id: string, flags: { output?: string }, cmd: Command) => {
      const client = clientFor(cmd);
      const meta = await client.get<Image>(path(id));
      const out = flags.output ?? `${meta.name}-${meta.version}.tar`;
      const res = await download(`${client.baseUrl}${path(id)}/bundle`, client.headers());
      const part = `${out}.part`;
      try {
        await pipeline(fromWeb(res), progress('export', contentLength(res), showBar(cmd)), createWriteStream(part));
        await rename(part, out);
      } catch (err) {
        await rm(part, { force: true });
        throw err;
      }
      globals(cmd).json ? printJson({ id, file: out }) : console.log(`wrote ${out}`);
    });

  registerImagePull(image);
}
