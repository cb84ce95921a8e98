import { execFileSync } from 'node:child_process';
import { randomBytes, randomUUID, timingSafeEqual, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';

/**
 * What stands behind the BMC: a machine's power. StateBackend only holds state; a QEMU VM
 * driven through QMP is the other (test/helpers/qemu-power.ts).
 */
export interface PowerBackend {
  powerState(): 'On' | 'Off';
  reset(type: ResetType): Promise<void>;
}

/** The DMTF ResetType values (Redfish schema Resource.ResetType) this BMC offers. */
export const RESET_TYPES = ['On', 'ForceOff', 'GracefulShutdown', 'GracefulRestart', 'ForceRestart', 'PowerCycle', 'Nmi'] as const;
export type ResetType = (typeof RESET_TYPES)[number];
/** Resets after which the machine boots (so a boot override applies). */
const STARTS = new Set<ResetType>(['On', 'GracefulRestart', 'ForceRestart', 'PowerCycle']);
const BOOT_TARGETS = ['None', 'Pxe', 'Hdd', 'Cd', 'BiosSetup', 'UefiHttp'];
const BOOT_ENABLED = ['Disabled', 'Once', 'Continuous'];

/** A machine that only holds its power state, logging every reset it is asked for. */
export class StateBackend implements PowerBackend {
  state: 'On' | 'Off' = 'Off';
  readonly resets: ResetType[] = [];

  powerState(): 'On' | 'Off' {
    return this.state;
  }

  async reset(type: ResetType): Promise<void> {
    this.resets.push(type);
    if (type === 'ForceOff' || type === 'GracefulShutdown') this.state = 'Off';
    else if (type !== 'Nmi') this.state = 'On';
  }
}

export interface RedfishBmc {
  /** TCP port on 127.0.0.1 (0 when it listens on a UNIX socket). */
  port: number;
  username: string;
  password: string;
  /** sha256 of the self-signed certificate, hex without colons. */
  fingerprint: string;
  boot: { BootSourceOverrideTarget: string; BootSourceOverrideEnabled: string };
  /** The boot override each power-on or restart used (a `Once` override is then cleared, as the standard says). */
  bootsWithOverride: string[];
  /** Every request as `METHOD path`, and how it authenticated. */
  requests: { method: string; path: string; auth: 'none' | 'basic' | 'session' }[];
  /** While set, requests are held unanswered (a BMC that hangs). */
  stall: boolean;
  /** While set, a Reset is carried out and its answer then held (a BMC busy resetting). */
  stallAfterReset: boolean;
  sessions: Map<string, { id: string; user: string }>;
  close(): Promise<void>;
}

const SYSTEM = '/redfish/v1/Systems/1';

/** A self-signed certificate for 127.0.0.1 made with openssl (EC P-256: quick to make). */
function selfSigned(dir: string): { key: Buffer; cert: Buffer } {
  const key = join(dir, 'bmc.key');
  const cert = join(dir, 'bmc.crt');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert,
    '-days', '1', '-subj', '/CN=livery-test-bmc', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
  return { key: readFileSync(key), cert: readFileSync(cert) };
}

/** A DMTF error body (Redfish Base message registry). */
function error(res: ServerResponse, status: number, messageId: string, message: string): void {
  send(res, status, { error: { code: `Base.1.8.${messageId}`, message, '@Message.ExtendedInfo': [{ MessageId: `Base.1.8.${messageId}`, Message: message }] } });
}

function send(res: ServerResponse, status: number, body?: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'odata-version': '4.0', ...(body !== undefined ? { 'content-type': 'application/json; charset=utf-8' } : {}), ...headers });
  res.end(body !== undefined ? JSON.stringify(body) : undefined);
}

const same = (a: string, b: string) => a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));

/**
 * A small Redfish BMC (DMTF DSP0266, schema names as published): the service root, the Systems
 * collection with one ComputerSystem (PowerState, Boot override), its
 * #ComputerSystem.Reset action, and the SessionService (X-Auth-Token sessions) beside HTTP
 * basic authentication. HTTPS with a self-signed certificate, on 127.0.0.1, or on a UNIX
 * socket (`at.socketPath`) that a forwarder inside a test's namespace connects to.
 */
export async function startRedfishBmc(
  dir: string,
  backend: PowerBackend,
  creds = { username: 'root', password: 'calvin-test' },
  at: { socketPath: string } | { port: number } = { port: 0 },
): Promise<RedfishBmc> {
  const { key, cert } = selfSigned(dir);
  const bmc: RedfishBmc = {
    port: 0,
    ...creds,
    fingerprint: new X509Certificate(cert).fingerprint256.replaceAll(':', '').toLowerCase(),
    boot: { BootSourceOverrideTarget: 'None', BootSourceOverrideEnabled: 'Disabled' },
    bootsWithOverride: [],
    requests: [],
    stall: false,
    stallAfterReset: false,
    sessions: new Map(),
    close: async () => {},
  };
  const held = new Set<ServerResponse>();

  const authOf = (req: IncomingMessage): 'basic' | 'session' | null => {
    const token = req.headers['x-auth-token'];
    if (typeof token === 'string' && bmc.sessions.has(token)) return 'session';
    const m = /^Basic (.+)$/i.exec(req.headers.authorization ?? '');
    if (!m) return null;
    const [user, ...rest] = Buffer.from(m[1]!, 'base64').toString('utf8').split(':');
    return same(user ?? '', bmc.username) && same(rest.join(':'), bmc.password) ? 'basic' : null;
  };

  const system = () => ({
    '@odata.id': SYSTEM,
    '@odata.type': '#ComputerSystem.v1_13_0.ComputerSystem',
    Id: '1',
    Name: 'livery test system',
    SystemType: 'Physical',
    PowerState: backend.powerState(),
    Boot: { ...bmc.boot, 'BootSourceOverrideTarget@Redfish.AllowableValues': BOOT_TARGETS },
    Actions: { '#ComputerSystem.Reset': { target: `${SYSTEM}/Actions/ComputerSystem.Reset`, 'ResetType@Redfish.AllowableValues': [...RESET_TYPES] } },
  });

  const handle = async (req: IncomingMessage, res: ServerResponse, body: string) => {
    const path = (req.url ?? '/').split('?')[0]!.replace(/\/+$/, '') || '/';
    const method = req.method ?? 'GET';
    const open = method === 'GET' && (path === '/redfish' || path === '/redfish/v1');
    const creating = method === 'POST' && path === '/redfish/v1/SessionService/Sessions';
    const auth = authOf(req);
    bmc.requests.push({ method, path, auth: auth ?? 'none' });
    if (!open && !creating && !auth) {
      return error(res, 401, 'NoValidSession', 'There is no valid session established with the implementation.');
    }
    const json = () => {
      try {
        return JSON.parse(body) as Record<string, unknown>;
      } catch {
        return null;
      }
    };
    if (method === 'GET' && path === '/redfish') return send(res, 200, { v1: '/redfish/v1/' });
    if (method === 'GET' && path === '/redfish/v1') {
      return send(res, 200, {
        '@odata.id': '/redfish/v1/',
        '@odata.type': '#ServiceRoot.v1_5_0.ServiceRoot',
        Id: 'RootService',
        Name: 'Root Service',
        RedfishVersion: '1.6.0',
        UUID: '92384634-2938-2342-8820-489239905423',
        Systems: { '@odata.id': '/redfish/v1/Systems' },
        SessionService: { '@odata.id': '/redfish/v1/SessionService' },
        Links: { Sessions: { '@odata.id': '/redfish/v1/SessionService/Sessions' } },
      });
    }
    if (method === 'GET' && path === '/redfish/v1/Systems') {
      return send(res, 200, {
        '@odata.id': '/redfish/v1/Systems',
        '@odata.type': '#ComputerSystemCollection.ComputerSystemCollection',
        Name: 'Computer System Collection',
        'Members@odata.count': 1,
        Members: [{ '@odata.id': SYSTEM }],
      });
    }
    if (path === SYSTEM && method === 'GET') return send(res, 200, system());
    if (path === SYSTEM && method === 'PATCH') {
      const boot = json()?.Boot as Record<string, unknown> | undefined;
      if (!boot || typeof boot !== 'object') return error(res, 400, 'PropertyMissing', 'The request body must set Boot.');
      const target = boot.BootSourceOverrideTarget;
      const enabled = boot.BootSourceOverrideEnabled;
      if (target !== undefined && !BOOT_TARGETS.includes(String(target))) return error(res, 400, 'PropertyValueNotInList', `The value ${target} for the property BootSourceOverrideTarget is not in the list of acceptable values.`);
      if (enabled !== undefined && !BOOT_ENABLED.includes(String(enabled))) return error(res, 400, 'PropertyValueNotInList', `The value ${enabled} for the property BootSourceOverrideEnabled is not in the list of acceptable values.`);
      if (target !== undefined) bmc.boot.BootSourceOverrideTarget = String(target);
      if (enabled !== undefined) bmc.boot.BootSourceOverrideEnabled = String(enabled);
      return send(res, 200, system());
    }
    if (path === `${SYSTEM}/Actions/ComputerSystem.Reset` && method === 'POST') {
      const type = json()?.ResetType;
      if (!RESET_TYPES.includes(type as ResetType)) return error(res, 400, 'ActionParameterValueNotInList', `The value ${JSON.stringify(type)} for the parameter ResetType in the action ComputerSystem.Reset is not in the list of acceptable values.`);
      if (STARTS.has(type as ResetType) && bmc.boot.BootSourceOverrideEnabled !== 'Disabled') {
        bmc.bootsWithOverride.push(bmc.boot.BootSourceOverrideTarget);
        if (bmc.boot.BootSourceOverrideEnabled === 'Once') bmc.boot.BootSourceOverrideEnabled = 'Disabled';
      }
      await backend.reset(type as ResetType);
      if (bmc.stallAfterReset) return void held.add(res);
      return send(res, 204);
    }
    if (method === 'GET' && path === '/redfish/v1/SessionService') {
      return send(res, 200, {
        '@odata.id': '/redfish/v1/SessionService',
        '@odata.type': '#SessionService.v1_1_8.SessionService',
        Id: 'SessionService',
        Name: 'Session Service',
        ServiceEnabled: true,
        SessionTimeout: 600,
        Sessions: { '@odata.id': '/redfish/v1/SessionService/Sessions' },
      });
    }
    if (path === '/redfish/v1/SessionService/Sessions' && method === 'GET') {
      return send(res, 200, {
        '@odata.id': path,
        '@odata.type': '#SessionCollection.SessionCollection',
        Name: 'Session Collection',
        'Members@odata.count': bmc.sessions.size,
        Members: [...bmc.sessions.values()].map((s) => ({ '@odata.id': `${path}/${s.id}` })),
      });
    }
    if (creating) {
      const b = json();
      if (!same(String(b?.UserName ?? ''), bmc.username) || !same(String(b?.Password ?? ''), bmc.password)) {
        return error(res, 401, 'ResourceAtUriUnauthorized', 'While accessing the resource at /redfish/v1/SessionService/Sessions, the service received an authorization error.');
      }
      const token = randomBytes(24).toString('hex');
      const id = randomUUID();
      bmc.sessions.set(token, { id, user: bmc.username });
      const location = `${path}/${id}`;
      return send(res, 201, { '@odata.id': location, '@odata.type': '#Session.v1_3_0.Session', Id: id, Name: 'User Session', UserName: bmc.username }, { 'x-auth-token': token, location });
    }
    const sessionPath = /^\/redfish\/v1\/SessionService\/Sessions\/([^/]+)$/.exec(path);
    if (sessionPath && method === 'DELETE') {
      for (const [token, s] of bmc.sessions) if (s.id === sessionPath[1]) bmc.sessions.delete(token);
      return send(res, 204);
    }
    return error(res, 404, 'ResourceMissingAtURI', `The resource at the URI ${path} was not found.`);
  };

  const server: Server = createServer({ key, cert }, (req, res) => {
    let body = '';
    req.setEncoding('utf8').on('data', (d: string) => (body += d));
    req.on('end', () => {
      if (bmc.stall) {
        held.add(res);
        return;
      }
      handle(req, res, body).catch((err: Error) => error(res, 500, 'InternalError', err.message));
    });
  });
  if ('socketPath' in at) await new Promise<void>((resolve) => server.listen(at.socketPath, resolve));
  else {
    await new Promise<void>((resolve, reject) => server.once('error', reject).listen(at.port, '127.0.0.1', resolve));
    bmc.port = (server.address() as AddressInfo).port;
  }
  bmc.close = async () => {
    for (const res of held) res.socket?.destroy();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return bmc;
}
