import type { Command } from 'commander';
import type { ImageSummary } from '../cmdb/types.js';
import { CliError, parseResponse, type ApiClient } from './client.js';
import { clientFor, globals } from './context.js';
import { printJson } from './output.js';
import { contentLength, download, fromWeb, progress, showBar, upload } from './transfer.js';

type Pulled = ImageSummary & { channels: string[]; manifestSha256: string; alreadyPresent?: boolean };

/** "URL of a bundle" from either `pull <url>` or `pull --from URL --id ID`. */
function bundleUrl(url: string | undefined, from: string | undefined, id: string | undefined): string {
  if (url) return url;
  if (from && id) return `${from.replace(/\/+$/, '')}/v1/images/${encodeURIComponent(id)}/bundle`;
  throw new CliError('pull: give the bundle URL (<livery>/v1/images/<id>/bundle) or --from <livery URL> --id <image id>');
}

/** The image this server holds under `id`, or null. */
async function imageHere(client: ApiClient, id: string): Promise<Pulled | null> {
  const res = await fetch(`${client.baseUrl}/v1/images/${encodeURIComponent(id)}`, { headers: client.headers() });
  return res.status === 404 ? (await res.body?.cancel(), null) : parseResponse<Pulled>(res);
}

/** The source image behind a livery bundle URL (…/v1/images/<id>/bundle); null for another kind of URL. */
async function sourceImage(bundle: string, headers: Record<string, string>): Promise<Pulled | null> {
  const url = new URL(bundle);
  if (!/\/v1\/images\/[^/]+\/bundle$/.test(url.pathname)) return null;
  url.pathname = url.pathname.replace(/\/bundle$/, '');
  return parseResponse<Pulled>(await download(url.href, headers));
}

/** Every blob this server's images use: a pull leaves those out of the bundle it fetches. */
async function blobsHere(client: ApiClient): Promise<Set<string>> {
  const { items } = await client.get<{ items: Pulled[] }>('/v1/images');
  return new Set(items.flatMap((i) => i.artifacts.map((a) => a.sha256)));
}

/**
 * `livery image pull`: the other livery's export streams straight into this server's publish,
 * and the image keeps its id (the bundle carries it). Blobs this server has already are left
 * out of the bundle. Pulling an image already here with the same manifest transfers nothing and
 * succeeds; the server refuses any other overlap by id or name:version with a 409 naming both.
 */
export function registerImagePull(image: Command): void {
  image
    .command('pull')
    .description("copy an image from another livery under the same id (its export streams straight into this server's publish)")
    .argument('[url]', 'bundle URL: <other livery>/v1/images/<id>/bundle')
    .option('--from <url>', 'the other livery (with --id)')
    .option('--id <id>', 'image id there (with --from)')
    .option('--source-token <token>', 'API token for the other livery (env LIVERY_SOURCE_TOKEN)')
    .option('--channel <channel>', 'also point this channel here at the pulled image (channels are not copied otherwise)')
    .action(async (url: string | undefined, flags: { from?: string; id?: string; sourceToken?: string; channel?: string }, cmd: Command) => {
      const client = clientFor(cmd);
      const token = flags.sourceToken ?? process.env.LIVERY_SOURCE_TOKEN;
      const source = bundleUrl(url, flags.from, flags.id);
      const auth: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
      const wanted = await sourceImage(source, auth);
      const here = wanted ? await imageHere(client, wanted.id) : null;
      let pulled: Pulled;
      let skipped = 0;
      if (here && here.manifestSha256 === wanted?.manifestSha256) {
        pulled = { ...here, alreadyPresent: true };
      } else {
        const have = wanted ? await blobsHere(client) : new Set<string>();
        const omit = new Set(wanted?.artifacts.map((a) => a.sha256).filter((sha) => have.has(sha)));
        skipped = wanted?.artifacts.filter((a) => omit.has(a.sha256)).length ?? 0;
        const thin = new URL(source);
        if (omit.size > 0) thin.searchParams.set('omit', [...omit].join(','));
        const res = await download(thin.href, auth);
        const length = contentLength(res);
        pulled = await parseResponse<Pulled>(await upload(client, fromWeb(res).pipe(progress('pull', length, showBar(cmd))), length, flags.channel));
      }
      if (pulled.alreadyPresent && flags.channel) {
        await client.request('POST', `/v1/images/${encodeURIComponent(pulled.id)}/promote`, { channel: flags.channel });
      }
      const fetched = pulled.alreadyPresent ? 0 : pulled.artifacts.length - skipped;
      if (globals(cmd).json) return printJson({ ...pulled, artifactsFetched: fetched });
      if (pulled.alreadyPresent) return console.log(`already present as ${pulled.id}`);
      console.log(`pulled ${pulled.name} ${pulled.version} as ${pulled.id}${skipped > 0 ? ` (${fetched} of ${pulled.artifacts.length} artifacts fetched; ${skipped} already here)` : ''}`);
    });
}
