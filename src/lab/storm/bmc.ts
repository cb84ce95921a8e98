import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';

/**
 * The BMCs of a rack of virtual machines, as one Redfish service over HTTPS (as an enclosure
 * manager serves its blades): system `i` is /redfish/v1/Systems/<i>, with its PowerState, Boot
 * override and #ComputerSystem.Reset, behind HTTP basic authentication. A reset that starts the
 * machine (On, PowerCycle, ForceRestart) answers 204 at once and calls `onStart(i)`: the
 * machine boots from then on, as a real one would after its BMC said yes.
 */
export interface RackBmcOptions {
  address: string;
  port: number;
  key: Buffer;
  cert: Buffer;
  username: string;
  password: string;
  machines: number;
  /** Every machine is on at first (a fleet in service). */
  onStart(index: number): void;
}

const RESETS = ['On', 'ForceOff', 'PowerCycle', 'ForceRestart'];
const STARTS = new Set(['On', 'PowerCycle', 'ForceRestart']);
const SYSTEM = /^\/redfish\/v1\/Systems\/(\d+)(\/Actions\/ComputerSystem\.Reset)?$/;

const same = (a: string, b: string) => a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));

function send(res: ServerResponse, status: number, body?: unknown): void {
  res.writeHead(status, { 'odata-version': '4.0', ...(body === undefined ? {} : { 'content-type': 'application/json' }) });
  res.end(body === undefined ? undefined : JSON.stringify(body));
}

export async function startRackBmc(o: RackBmcOptions): Promise<Server> {
  const on = new Array<boolean>(o.machines).fill(true);
  const boot = new Array<{ BootSourceOverrideTarget: string; BootSourceOverrideEnabled: string }>(o.machines);
  const authorized = (req: IncomingMessage) => {
    const m = /^Basic (.+)$/i.exec(req.headers.authorization ?? '');
    if (!m) return false;
    const [user, ...rest] = Buffer.from(m[1]!, 'base64').toString('utf8').split(':');
    return same(user ?? '', o.username) && same(rest.join(':'), o.password);
  };
  const system = (i: number) => ({
    '@odata.id': `/redfish/v1/Systems/${i}`,
    '@odata.type': '#ComputerSystem.v1_13_0.ComputerSystem',
    Id: String(i),
    PowerState: on[i] ? 'On' : 'Off',
    Boot: boot[i] ?? { BootSourceOverrideTarget: 'None', BootSourceOverrideEnabled: 'Disabled' },
    Actions: { '#ComputerSystem.Reset': { target: `/redfish/v1/Systems/${i}/Actions/ComputerSystem.Reset`, 'ResetType@Redfish.AllowableValues': RESETS } },
  });
  const handle = (req: IncomingMessage, res: ServerResponse, body: string) => {
    if (!authorized(req)) return send(res, 401, { error: { code: 'Base.1.8.NoValidSession', message: 'authentication required' } });
    const m = SYSTEM.exec(req.url ?? '');
    const i = m ? Number(m[1]) : -1;
    if (!m || i >= o.machines) return send(res, 404, { error: { code: 'Base.1.8.ResourceMissingAtURI', message: `no ${req.url}` } });
    let json: Record<string, unknown> = {};
    try {
      json = body ? (JSON.parse(body) as Record<string, unknown>) : {};
    } catch {
      return send(res, 400, { error: { code: 'Base.1.8.MalformedJSON', message: 'the body is not JSON' } });
    }
    if (!m[2] && req.method === 'GET') return send(res, 200, system(i));
    if (!m[2] && req.method === 'PATCH') {
      boot[i] = { ...system(i).Boot, ...(json.Boot as object) };
      return send(res, 200, system(i));
    }
    if (m[2] && req.method === 'POST' && RESETS.includes(String(json.ResetType))) {
      const type = String(json.ResetType);
      on[i] = type !== 'ForceOff';
      send(res, 204);
      if (STARTS.has(type)) o.onStart(i);
      return;
    }
    return send(res, 400, { error: { code: 'Base.1.8.ActionParameterValueNotInList', message: `unsupported ${req.method} ${req.url}` } });
  };
  const server = createServer({ key: o.key, cert: o.cert }, (req, res) => {
    let body = '';
    req.setEncoding('utf8').on('data', (d: string) => (body += d));
    req.on('end', () => handle(req, res, body));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.address, resolve);
  });
  return server;
}
