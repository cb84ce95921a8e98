import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { IncomingMessage } from 'node:http';
import { PassThrough, type Readable } from 'node:stream';
import { Counter } from 'prom-client';
import { BundleError, DuplicateImageError, manifestSha256 } from '../../catalog/index.js';
import { CmdbError } from '../../cmdb/errors.js';
import type { Image, ImageSummary } from '../../cmdb/types.js';
import { actorOf, closeUnreadBody, HttpError, requireRole } from '../auth.js';
import type { HttpContext } from '../context.js';
import { AUTH_ERRORS, body, errors, json } from '../openapi.js';
import { ChannelChangeRecord, ChannelMove, ChannelRecord, DeletedImageRecord, DuplicateImage, GcReportRecord, ImageRecord, ImageSummaryRecord, Page, PresentImageRecord } from '../response-schemas.js';

const IdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) });
const ChannelParams = Type.Object({ name: Type.String({ minLength: 1, maxLength: 64 }), channel: Type.String({ minLength: 1, maxLength: 32 }) });
const ChannelBody = Type.Object({ channel: Type.String() }, { additionalProperties: false });
const PublishQuery = Type.Object({ channel: Type.Optional(Type.String()) }, { additionalProperties: false });
/** `omit`: blobs (sha256, comma-separated) the receiver has, left out of the bundle; at most one per artifact. */
const BundleQuery = Type.Object(
  { omit: Type.Optional(Type.String({ pattern: '^[0-9a-f]{64}(,[0-9a-f]{64}){0,63}$', description: 'sha256s of blobs to leave out, comma-separated' })) },
  { additionalProperties: false },
);
const ListQuery = Type.Object({ name: Type.Optional(Type.String()) }, { additionalProperties: false });

const Tar = Type.String({ contentMediaType: 'application/x-tar' });
const BundleBody = { 'application/x-tar': { ...Tar, description: 'the image bundle: a tar whose first entry is manifest.json, then each artifact it lists' } };

/** /v1/images and /v1/channels: publishing, listing, channels, deletion, gc and export. */
export const imageRoutes: FastifyPluginAsyncTypebox<HttpContext> = async (app, { cmdb, catalog, registry }) => {
  const read = { onRequest: requireRole(cmdb, 'reader') };
  const write = { onRequest: requireRole(cmdb, 'publisher') };
  const tags = ['images'];
  const publishes = new Counter({
    name: 'livery_catalog_publishes_total',
    help: 'Bundle publishes by result (published, rejected: bad bundle, duplicate, failed: cut off or server error)',
    labelNames: ['result'],
    registers: [registry],
  });

  // The bundle body is handed to the route as the raw stream: it may be many gigabytes.
  app.addContentTypeParser('application/x-tar', (_req, payload, done) => done(null, payload));

  const channelsOf = () => {
    const byImage = new Map<string, string[]>();
    for (const c of cmdb.images.channels()) byImage.set(c.imageId, [...(byImage.get(c.imageId) ?? []), `${c.name}@${c.channel}`]);
    return <T extends ImageSummary>(image: T) => ({ ...image, channels: byImage.get(image.id) ?? [] });
  };

  /** One image as show and publish answer it: with its channels and its manifest's identity, to compare across servers. */
  const described = (image: Image) => ({ ...channelsOf()(image), manifestSha256: manifestSha256(image.manifest) });

  app.get('/v1/images', { ...read, schema: { tags, operationId: 'listImages', summary: 'List images (without recipes and package lists)', querystring: ListQuery, response: { 200: json(Page(ImageSummaryRecord, Type.Null()), 'the images'), ...errors(400, ...AUTH_ERRORS) } } }, async (req) => {
    const withChannels = channelsOf();
    return { items: cmdb.images.list({ name: req.query.name }).map(withChannels), next: null };
  });

  app.get('/v1/images/:id', { ...read, schema: { tags, operationId: 'getImage', summary: 'Show an image by id, id prefix or NAME@CHANNEL', params: IdParams, response: { 200: json(ImageRecord, 'the image with its manifest and its identity'), ...errors(400, ...AUTH_ERRORS, 404) } } }, async (req) => described(cmdb.images.byRef(req.params.id)));

  // The content type is checked with the token, before fastify would buffer a JSON or CSV body.
  const tarOnly = async (req: FastifyRequest, reply: FastifyReply) => {
    const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (type === 'application/x-tar') return;
    closeUnreadBody(req, reply);
    throw new HttpError(415, `content-type: expected application/x-tar (an image bundle), got ${type ? JSON.stringify(type) : 'none'}`);
  };

  app.post('/v1/images', { onRequest: [write.onRequest, tarOnly], config: { bodyStream: true, documentedBody: BundleBody },
      schema: {
        tags,
        operationId: 'publishImage',
        summary: 'Publish an image bundle (a tar: manifest.json first, then the artifacts), streamed',
        querystring: PublishQuery,
        response: {
          200: json(PresentImageRecord, 'the same image (id and manifest) is already here: nothing stored'),
          201: json(ImageRecord, 'the image as published'),
          409: json(DuplicateImage, 'an image with this name and version exists'),
          ...errors(400, ...AUTH_ERRORS, 413, 415, 507),
        },
      },
    }, async (req, reply) => {
    // A declared length already over the limit is refused before a byte is read.
    const max = catalog.limits.maxBundleBytes;
    if (Number(req.headers['content-length'] ?? 0) > max) throw new HttpError(413, `bundle: larger than catalog.maxBundleBytes (${max} bytes)`);
    const raw = req.raw;
    const upload = guardedBody(raw, req.body as Readable);
    try {
      const image = await catalog.publish(upload.body, { actor: actorOf(req), channel: req.query.channel });
      publishes.inc({ result: 'published' });
      return reply.code(201).send(described(image));
    } catch (err) {
      const result = upload.cutOff() ? 'failed' : err instanceof DuplicateImageError ? 'duplicate' : err instanceof CmdbError ? 'rejected' : 'failed';
      publishes.inc({ result });
      discardRest(raw, max);
      // A copy of an image already here is done: sending it again is no error (pulls are idempotent).
      if (err instanceof DuplicateImageError && err.identical && err.field === 'id') {
        return reply.code(200).send({ ...described(cmdb.images.get(err.existingId)), alreadyPresent: true });
      }
      if (err instanceof DuplicateImageError) {
        return reply.code(409).send({ error: err.message, field: err.field, imageId: err.existingId, identical: err.identical });
      }
      throw err;
    }
  });

  app.delete('/v1/images/:id', { ...write, schema: { tags, operationId: 'deleteImage', summary: 'Delete an image no channel or machine uses', params: IdParams, response: { 200: json(DeletedImageRecord, 'the image deleted'), ...errors(400, ...AUTH_ERRORS, 404, 409) } } }, async (req) => catalog.remove(cmdb.images.byRef(req.params.id).id, actorOf(req)));

  app.post('/v1/images/:id/promote', { ...write, schema: { tags, operationId: 'promoteImage', summary: 'Point a channel of the image\'s name at it', params: IdParams, body: ChannelBody, response: { 200: json(ChannelMove, 'what the channel points at now'), ...errors(400, ...AUTH_ERRORS, 404, 409) } } }, async (req) => {
    const image = cmdb.images.byRef(req.params.id);
    const change = catalog.promote(image.id, req.body.channel, actorOf(req));
    return { name: image.name, channel: req.body.channel, imageId: image.id, previousImageId: change?.previousImageId ?? image.id, changed: change !== null };
  });

  app.post('/v1/images/gc', { ...write, schema: { tags, operationId: 'collectImageGarbage', summary: 'Delete blobs no image uses', response: { 200: json(GcReportRecord, 'what was deleted'), ...errors(...AUTH_ERRORS) } } }, async (req) => catalog.gc(actorOf(req)));

  app.get('/v1/images/:id/bundle', { ...read, schema: { tags, operationId: 'exportImage', summary: 'Download an image as a bundle (what publish takes), leaving out blobs the receiver has', params: IdParams, querystring: BundleQuery, response: { 200: body('application/x-tar', 'the bundle', Tar), ...errors(400, ...AUTH_ERRORS, 404) } } }, async (req, reply) => {
    const omit = new Set(req.query.omit ? req.query.omit.split(',') : []);
    const { image, stream, length } = catalog.exportBundle(cmdb.images.byRef(req.params.id).id, omit);
    if (length !== null) reply.header('content-length', length);
    // Said up front too, so a puller can see the image is already at its destination before reading the body.
    return reply
      .header('livery-image-id', image.id)
      .header('livery-manifest-sha256', manifestSha256(image.manifest))
      .header('content-type', 'application/x-tar')
      .header('content-disposition', `attachment; filename="${image.name}-${image.version}.tar"`)
      .send(stream);
  });

  app.get('/v1/channels', { ...read, schema: { tags, operationId: 'listChannels', summary: 'List channels and the image each points at', response: { 200: json(Page(ChannelRecord, Type.Null()), 'every channel'), ...errors(...AUTH_ERRORS) } } }, async () => ({ items: cmdb.images.channels(), next: null }));

  app.get('/v1/channels/:name/:channel/history', { ...read, schema: { tags, operationId: 'getChannelHistory', summary: "A channel's promotions and rollbacks", params: ChannelParams, response: { 200: json(Page(ChannelChangeRecord, Type.Null()), 'the changes, newest first'), ...errors(400, ...AUTH_ERRORS, 404) } } }, async (req) => ({
    items: cmdb.images.history(req.params.name, req.params.channel),
    next: null,
  }));

  app.post('/v1/channels/:name/:channel/rollback', { ...write, schema: { tags, operationId: 'rollBackChannel', summary: 'Point a channel back at its previous image', params: ChannelParams, response: { 200: json(ChannelMove, 'what the channel points at now'), ...errors(400, ...AUTH_ERRORS, 404, 409) } } }, async (req) => {
    const change = catalog.rollback(req.params.name, req.params.channel, actorOf(req));
    return { name: change.name, channel: change.channel, imageId: change.imageId, previousImageId: change.previousImageId, changed: true };
  });
};

/**
 * The request body behind a PassThrough: a client that disconnects mid-upload fails the
 * publish (instead of looking like a clean end of stream), and a failed publish destroys only
 * the PassThrough, so the connection stays usable for the error reply.
 */
function guardedBody(raw: IncomingMessage, body: Readable): { body: PassThrough; cutOff: () => boolean } {
  const guarded = new PassThrough({ highWaterMark: 1024 * 1024 });
  let cutOff = false;
  body.pipe(guarded);
  raw.once('close', () => {
    if (raw.complete) return;
    cutOff = true;
    guarded.destroy(new BundleError(null, 'upload cut off: the client disconnected before the end of the bundle'));
  });
  return { body: guarded, cutOff: () => cutOff };
}

/**
 * After a refused upload the rest of the body is read and dropped, so the client (which may
 * still be sending) gets the answer on a healthy connection. A body running past the bundle
 * limit is no bundle at all: then the connection is closed instead.
 */
function discardRest(raw: IncomingMessage, limit: number): void {
  raw.unpipe();
  if (raw.complete || raw.destroyed) return;
  let dropped = 0;
  raw.on('data', (chunk: Buffer) => {
    dropped += chunk.length;
    if (dropped > limit) raw.socket?.destroy();
  });
  raw.resume();
}
