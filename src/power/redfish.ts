import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { Agent, fetch, type Dispatcher } from 'undici';
import type { BmcCredentials } from '../cmdb/bmcs.js';
import { BmcError, type DriverLimits, type PowerAction, type PowerDriver, type PowerState } from './types.js';

export const REDFISH_DEFAULT_PORT = 443;

/** livery's actions as DMTF ResetType values (Redfish schema ComputerSystem.Reset). */
const RESET_TYPE: Record<Exclude<PowerAction, 'status'>, string> = {
  on: 'On',
  off: 'ForceOff',
  cycle: 'PowerCycle',
  reset: 'ForceRestart',
};

interface ComputerSystem {
  PowerState?: string;
  Actions?: Record<string, { target?: string; 'ResetType@Redfish.AllowableValues'?: string[] }>;
}

/**
 * How the BMC's certificate is checked. verify (the default): against the system's CAs and its
 * name. A pinned sha256 fingerprint: exactly that certificate, self-signed or not, checked
 * before a byte of the request (and its credentials) is sent. Neither: no check at all, the
 * operator's explicit choice.
 */
function dispatcherFor(bmc: BmcCredentials, label: string, timeoutMs: number): Dispatcher {
  const base = { connectTimeout: timeoutMs, headersTimeout: timeoutMs, bodyTimeout: timeoutMs, keepAliveTimeout: 1000 };
  if (!bmc.fingerprint) return new Agent({ ...base, connect: { rejectUnauthorized: bmc.verify, timeout: timeoutMs } });
  const pinned = bmc.fingerprint;
  return new Agent({
    ...base,
    connect: (opts, callback) => {
      // undici hands over the URL's port, which is '' when it is HTTPS's own 443.
      const socket: TLSSocket = tlsConnect({ host: opts.hostname, port: Number(opts.port) || 443, servername: opts.servername ?? undefined, rejectUnauthorized: false });
      const timer = setTimeout(() => socket.destroy(new BmcError(label, `TLS handshake not done within ${timeoutMs} ms`, true)), timeoutMs);
      socket.once('secureConnect', () => {
        clearTimeout(timer);
        const seen = socket.getPeerCertificate().fingerprint256?.replaceAll(':', '').toLowerCase() ?? '';
        if (seen !== pinned) {
          socket.destroy();
          return callback(new BmcError(label, `certificate fingerprint ${seen} is not the pinned ${pinned}`, false), null);
        }
        callback(null, socket);
      });
      socket.once('error', (err) => {
        clearTimeout(timer);
        callback(err, null);
      });
      return socket;
    },
  });
}

/**
 * Redfish (DMTF DSP0266) over HTTPS with undici: HTTP basic authentication on each request
 * (stateless: no session left behind on the BMC when livery stops mid-way), the system found
 * by discovery when its path is not set, the boot override and ComputerSystem.Reset.
 */
export class RedfishDriver implements PowerDriver {
  readonly label: string;
  private readonly base: string;
  private readonly dispatcher: Dispatcher;
  private systemPath: string | null;

  constructor(
    private readonly bmc: BmcCredentials,
    private readonly limits: DriverLimits,
  ) {
    const host = bmc.address.includes(':') ? `[${bmc.address}]` : bmc.address;
    const port = bmc.port ?? REDFISH_DEFAULT_PORT;
    this.label = `redfish://${bmc.username}@${bmc.address}:${port}`;
    this.base = `https://${host}:${port}`;
    this.systemPath = bmc.systemPath;
    this.dispatcher = dispatcherFor(bmc, this.label, limits.timeoutMs);
  }

  async status(): Promise<PowerState> {
    const system = (await this.request('GET', await this.system())) as ComputerSystem;
    // PoweringOn counts as on and PoweringOff as off: the state the machine is heading to.
    if (system.PowerState === 'On' || system.PowerState === 'PoweringOn') return 'on';
    if (system.PowerState === 'Off' || system.PowerState === 'PoweringOff') return 'off';
    throw new BmcError(this.label, `unexpected PowerState ${JSON.stringify(system.PowerState)}`, false);
  }

  async bootFromNetworkOnce(): Promise<void> {
    await this.request('PATCH', await this.system(), { Boot: { BootSourceOverrideTarget: 'Pxe', BootSourceOverrideEnabled: 'Once' } });
  }

  async power(action: Exclude<PowerAction, 'status'>): Promise<void> {
    const path = await this.system();
    const system = (await this.request('GET', path)) as ComputerSystem;
    const reset = system.Actions?.['#ComputerSystem.Reset'];
    if (!reset?.target) throw new BmcError(this.label, `system ${path} offers no #ComputerSystem.Reset action`, false);
    const allowed = reset['ResetType@Redfish.AllowableValues'];
    const type = RESET_TYPE[action];
    if (action === 'cycle' && allowed && !allowed.includes(type)) {
      // Not every BMC offers PowerCycle: off, then on, is the same thing in two steps.
      await this.request('POST', reset.target, { ResetType: 'ForceOff' });
      await this.request('POST', reset.target, { ResetType: 'On' });
      return;
    }
    if (allowed && !allowed.includes(type)) throw new BmcError(this.label, `ResetType ${type} is not offered (allowed: ${allowed.join(', ')})`, false);
    await this.request('POST', reset.target, { ResetType: type });
  }

  close(): Promise<void> {
    return this.dispatcher.close();
  }

  /** The ComputerSystem's path: as configured, or the one member of the Systems collection. */
  private async system(): Promise<string> {
    if (this.systemPath) return this.systemPath;
    const systems = (await this.request('GET', '/redfish/v1/Systems')) as { Members?: { '@odata.id'?: string }[] };
    const members = (systems.Members ?? []).map((m) => m['@odata.id']).filter((p): p is string => typeof p === 'string');
    if (members.length !== 1) {
      throw new BmcError(this.label, `found ${members.length} systems (${members.join(', ') || 'none'}): set the BMC's system path`, false);
    }
    return (this.systemPath = members[0]!);
  }

  private async request(method: string, path: string, body?: unknown): Promise<unknown> {
    const headers: Record<string, string> = {
      authorization: `Basic ${Buffer.from(`${this.bmc.username}:${this.bmc.password}`).toString('base64')}`,
      accept: 'application/json',
      'odata-version': '4.0',
    };
    if (body !== undefined) headers['content-type'] = 'application/json';
    let res;
    try {
      res = await fetch(this.base + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        dispatcher: this.dispatcher,
        signal: AbortSignal.timeout(this.limits.timeoutMs),
        redirect: 'error',
      });
    } catch (err) {
      throw this.unreachable(method, path, err as Error);
    }
    const text = await res.text().catch(() => '');
    if (!res.ok) {
      const retryable = res.status >= 500 || res.status === 429;
      throw new BmcError(this.label, `${method} ${path} answered ${res.status} ${res.statusText}${redfishMessage(text)}`, retryable, res.status >= 500);
    }
    if (text === '') return {};
    try {
      return JSON.parse(text);
    } catch {
      throw new BmcError(this.label, `${method} ${path} answered ${res.status} with a body that is not JSON`, false);
    }
  }

  private unreachable(method: string, path: string, err: Error): BmcError {
    if (err instanceof BmcError) return err;
    const cause: unknown = (err as { cause?: unknown }).cause;
    if (cause instanceof BmcError) return cause;
    const c = cause as { code?: string; message?: string } | undefined;
    // The request's own deadline, or one of undici's (connect, headers, body): the BMC went quiet.
    if (err.name === 'TimeoutError' || err.name === 'AbortError' || /^UND_ERR_(CONNECT|HEADERS|BODY)_TIMEOUT$/.test(c?.code ?? '')) {
      // Only a connection that was never made is sure not to have delivered the request.
      return new BmcError(this.label, `no answer to ${method} ${path} within ${this.limits.timeoutMs} ms`, true, c?.code !== 'UND_ERR_CONNECT_TIMEOUT');
    }
    const why = c?.code ?? c?.message ?? err.message;
    // A certificate the system's CAs do not vouch for will not become trusted by asking again.
    const tls = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS/.test(why);
    return new BmcError(
      this.label,
      tls ? `TLS: ${why} (pin the certificate's sha256 fingerprint, or turn verify off)` : `cannot reach it for ${method} ${path}: ${why}`,
      !tls,
    );
  }
}

/** The DMTF error body's message, when the BMC sent one. */
function redfishMessage(text: string): string {
  try {
    const e = (JSON.parse(text) as { error?: { message?: string; '@Message.ExtendedInfo'?: { Message?: string }[] } }).error;
    const detail = e?.['@Message.ExtendedInfo']?.[0]?.Message ?? e?.message;
    return detail ? `: ${detail}` : '';
  } catch {
    return '';
  }
}
