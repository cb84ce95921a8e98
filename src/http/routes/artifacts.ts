import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { open } from 'node:fs/promises';
import { etagMatches, parseRange } from '../../catalog/index.js';
import { normalizeMac } from '../../net/mac.js';
import { HttpError } from '../auth.js';
import type { HttpContext } from '../context.js';

const Params = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }), file: Type.String({ minLength: 1, maxLength: 128 }) });
const Query = Type.Object({ mac: Type.Optional(Type.String({ maxLength: 32 })) });
type ArtifactRequest = FastifyRequest<{ Params: { id: string; file: string }; Querystring: { mac?: string } }>;

// Large reads mean fewer trips through the event loop per gigabyte served.
const READ_CHUNK_BYTES = 1024 * 1024;

/**
 * GET/HEAD /images/<id>/<file>: artifacts for booting machines (no token; they are public and
 * content-addressed). Single byte ranges, ETag = "<sha256>", cacheable forever.
 */
export const artifactRoutes: FastifyPluginAsyncTypebox<HttpContext> = async (app, { cmdb, catalog }) => {
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

    const handle = await open(artifact.path, 'r').catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
      // Deleted and garbage-collected since this process cached the image.
      catalog.forget(id);
      reply.removeHeader('content-length').removeHeader('content-range').header('content-type', 'application/json; charset=utf-8');
      throw new HttpError(404, `image ${id} has no artifact ${file}`);
    });
    // A boot fetches each file once from byte 0; later Range chunks of it are not new events.
    const mac = req.query.mac ? normalizeMac(req.query.mac) : null;
    if (mac && start === 0) {
      cmdb.events.add({
        type: 'artifact',
        mac,
        machineId: cmdb.machines.byCanonicalMac(mac)?.id ?? null,
        imageId: id,
        detail: { file, role: artifact.role, bytes: length, range: req.headers.range ?? null },
      });
    }
    return reply.send(handle.createReadStream({ start, end, highWaterMark: READ_CHUNK_BYTES }));
  };

  const route = { schema: { tags: ['artifacts'], params: Params, querystring: Query } };
  app.get('/images/:id/:file', { ...route, exposeHeadRoute: false }, serve);
  app.head('/images/:id/:file', route, serve);
};
