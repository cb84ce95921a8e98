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

/**
 * `livery image pull`: the other livery's export streams straight into this server's publish,
 * and the image keeps its id (the bundle carries it). Pulling an image already here with the
 * same manifest transfers nothing and succeeds; the server refuses any other overlap by id or
 * name:version with a 409 naming both images.
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
      const res = await download(bundleUrl(url, flags.from, flags.id), token ? { authorization: `Bearer ${token}` } : {});
      const id = res.headers.get('livery-image-id');
      const here = id ? await imageHere(client, id) : null;
      let pulled: Pulled;
      if (here && here.manifestSha256 === res.headers.get('livery-manifest-sha256')) {
        await res.body?.cancel();
        pulled = { ...here, alreadyPresent: true };
      } else {
        const length = contentLength(res);
        pulled = await parseResponse<Pulled>(await upload(client, fromWeb(res).pipe(progress('pull', length, showBar(cmd))), length, flags.channel));
      }
      if (pulled.alreadyPresent && flags.channel) {
        await client.request('POST', `/v1/images/${encodeURIComponent(pulled.id)}/promote`, { channel: flags.channel });
      }
      if (globals(cmd).json) return printJson(pulled);
      console.log(pulled.alreadyPresent ? `already present as ${pulled.id}` : `pulled ${pulled.name} ${pulled.version} as ${pulled.id}`);
    });
}
