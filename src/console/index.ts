import type { FastifyPluginAsync } from 'fastify';
import { PowerService } from '../power/service.js';
import { SecretBox, secretKeyPath } from '../cmdb/secret-box.js';
import type { HttpContext } from '../http/context.js';
import { assetRoutes } from './assets.js';
import { errorsAsHtml } from './layout.js';
import { loginRoutes } from './login.js';
import { eventRoutes } from './pages/events.js';
import { fleetRoutes } from './pages/fleet.js';
import { imageRoutes } from './pages/images.js';
import { machineRoutes } from './pages/machine.js';
import { rolloutRoutes } from './pages/rollouts.js';
import { streamRoutes } from './stream.js';

/** Form posts are small: a token, a channel name, an action. */
const FORM_BODY_LIMIT = 16 * 1024;

/**
 * The operator's web console at `/` and `/ui/…`: server-rendered pages over the same service
 * functions as the REST API (the CMDB's stores, the catalog, the rollout commands, the power
 * service), behind a session cookie that only these routes accept. The API keeps bearer
 * tokens only, so no cookie can ever authorize an API call from another site.
 */
export const consoleRoutes: FastifyPluginAsync<HttpContext> = async (app, ctx) => {
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: FORM_BODY_LIMIT }, (_req, body, done) =>
    done(null, Object.fromEntries(new URLSearchParams(body as string))),
  );
  app.decorateRequest('consoleUser', null);
  errorsAsHtml(app);
  const power = new PowerService(ctx.cmdb, ctx.config.power, new SecretBox(secretKeyPath(ctx.config.dataDir)));
  assetRoutes(app);
  loginRoutes(app, ctx.cmdb, ctx.config);
  fleetRoutes(app, ctx.cmdb);
  machineRoutes(app, ctx, power);
  imageRoutes(app, ctx.cmdb, ctx.catalog);
  rolloutRoutes(app, ctx.cmdb);
  eventRoutes(app, ctx.cmdb);
  streamRoutes(app, ctx.cmdb, ctx.feed, ctx.registry);
};
