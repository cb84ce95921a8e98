import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { OutgoingHttpHeaders } from 'node:http';
import { etagMatches, OpenBlobs, parseRange, sendFileRange } from '../../catalog/index.js';
import { normalizeMac } from '../../net/mac.js';
import { HttpError } from '../auth.js';
import { AHEAD_OF_BOOT_STEPS, type HttpContext } from '../context.js';
import { body, empty, errors, OPEN } from '../openapi.js';

const Params = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }), file: Type.String({ minLength: 1, maxLength: 128 }) });
const Query = Type.Object({ mac: Type.Optional(Type.String({ maxLength: 32 })) });
const Octets = Type.String({ contentMediaType: 'application/octet-stream' });
type ArtifactRequest = FastifyRequest<{ Params: { id: string; file: string }; Querystring: { mac?: string } }>;

/**
 * GET/HEAD /images/<id>/<file>: artifacts for booting machines (no token; they are public and
 * content-addressed). Single byte ranges, ETag = "<sha256>", cacheable forever.
 */
export const artifactRoutes: FastifyPluginAsyncTypebox<HttpContext> = async (app, { cmdb, machineCache, catalog, machineDoor, bootSteps }) => {
  const blobs = new OpenBlobs();
  app.addHook('onClose', () => blobs.close());
  /**
   * The machine with this MAC, from the cache. One the cache does not know may have been
   * registered by a script's step just now (a new MAC's script, then its kernel), not yet
   * written or not yet seen by the cache: it is read from the CMDB once those steps are written.
   */
  const machineWith = async (mac: string) => {
    const cached = machineCache.byCanonicalMac(mac);
    if (cached) return cached;
    await bootSteps.written();
    return cmdb.machines.byCanonicalMac(mac);
  };

  const serve = async (req: ArtifactRequest, reply: FastifyReply) => {
    const { id, file } = req.params;
    const artifact = catalog.artifact(id, file);
    if (!artifact) throw new HttpError(404, `image ${id} has no artifact ${file}`);
    const etag = `"${artifact.sha256}"`;
    reply
      .header('etag', etag)
      .header('accept-ranges', 'bytes')
      .header('cache-control', 'public, max-age=31536000, immutable');
    if (etagMatches(req.headers['if-none-match'], etag)) return reply.code(304).send();

    // If-Range with a different validator means "the file changed, send all of it".
    const ifRange = req.headers['if-range'];
    const range = ifRange && ifRange !== etag ? null : parseRange(req.headers.range, artifact.size);
    if (range === 'unsatisfiable') {
      return reply.code(416).header('content-range', `bytes */${artifact.size}`).send({ error: `range not satisfiable: ${file} has ${artifact.size} bytes` });
    }
    const start = range?.start ?? 0;
    const end = range?.end ?? artifact.size - 1;
    const length = end - start + 1;
    if (range) reply.code(206).header('content-range', `bytes ${start}-${end}/${artifact.size}`);
    reply.header('content-length', length).header('content-type', 'application/octet-stream');
    if (req.method === 'HEAD' || length === 0) return reply.send();

    const blob = await blobs.acquire(artifact.path).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
      // Deleted and garbage-collected since this process cached the image.
      catalog.forget(id);
      reply.removeHeader('content-length').removeHeader('content-range').header('content-type', 'application/json; charset=utf-8');
      throw new HttpError(404, `image ${id} has no artifact ${file}`);
    });
    try {
      // A boot fetches each file once from byte 0; later Range chunks of it are not new events.
      // Only machines the CMDB knows get events (the script fetch registers a new MAC first), only
      // from their own address, and within the machine door's limits: else the file is still
      // served, without an event.
      const mac = req.query.mac ? normalizeMac(req.query.mac) : null;
      const machine = mac && start === 0 ? await machineWith(mac) : null;
      if (mac && machine && machineDoor.mayRecordFor(req, machine) && machineDoor.admitEvent(req, mac, true) === 'ok') {
        // Written (off this loop) before the bytes go out: the phone-home that follows may reach another process.
        await bootSteps.recordEvent({ type: 'artifact', mac, machineId: machine.id, imageId: id, detail: { file, role: artifact.role, bytes: length, range: req.headers.range ?? null } });
      }
      // The body bypasses fastify's stream handling (see sendFileRange); headers go out as set above.
      reply.hijack();
      reply.raw.writeHead(reply.statusCode, reply.getHeaders() as OutgoingHttpHeaders);
      await sendFileRange(blob.file, reply.raw, start, end).catch((err: unknown) => {
        req.log.warn({ err, id, file }, 'artifact transfer failed');
        reply.raw.destroy();
      });
    } finally {
      blob.release();
    }
  };

  // HEAD (the same headers, no body) is left out of the document, as fastify's own HEAD routes are.
  const schema = {
    tags: ['artifacts'],
    operationId: 'getArtifact',
    summary: "Download an image's artifact (kernel, initrd, rootfs); single byte ranges",
    security: OPEN,
    params: Params,
    querystring: Query,
    response: {
      200: body('application/octet-stream', 'the file', Octets),
      206: body('application/octet-stream', 'the requested byte range', Octets),
      304: empty('unchanged (If-None-Match)'),
      ...errors(400, 404, 416, 429),
    },
  };
  // An artifact waits for its own event (and so for the steps before it), not for earlier steps when it records none.
  const config = AHEAD_OF_BOOT_STEPS;
  app.get('/images/:id/:file', { schema, config, exposeHeadRoute: false }, serve);
  app.head('/images/:id/:file', { schema, config }, serve);
};
