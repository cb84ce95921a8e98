import type { BmcCredentials } from '../cmdb/bmcs.js';
import type { Cmdb } from '../cmdb/index.js';
import { SecretKeyError, type SecretBox } from '../cmdb/secret-box.js';
import type { Machine } from '../cmdb/types.js';
import type { Config } from '../config/index.js';
import { IpmiDriver } from './ipmi.js';
import { RedfishDriver } from './redfish.js';
import { BmcError, BootOverrideRefused, type PowerAction, type PowerDriver, type PowerState } from './types.js';

/** What became of one machine's power action. */
export interface PowerResult {
  machine: string;
  mac: string | null;
  /** driver://user@address:port, or null when the machine has no BMC. */
  bmc: string | null;
  ok: boolean;
  /** The power state before the action (and after, for status). */
  state: PowerState | null;
  /** The requests made, retries included. */
  attempts: number;
  error: string | null;
  /**
   * What failed: the machine has no BMC, or one without credentials yet (commissioning found it),
   * the secret key file cannot open its password, or the BMC itself.
   */
  failure: 'no-bmc' | 'no-credentials' | 'secret-key' | 'bmc' | null;
  /** Why the action went ahead short of what was asked: the BMC refused the one-time network boot. */
  warning: string | null;
}

export type DriverFactory = (bmc: BmcCredentials, config: Config['power']) => PowerDriver & { close?(): Promise<void> };

export const defaultDriverFactory: DriverFactory = (bmc, config) =>
  bmc.driver === 'ipmi' ? new IpmiDriver(bmc, config) : new RedfishDriver(bmc, config);

/** A counting semaphore: at most `limit` BMC conversations at once, across every request. */
class Limit {
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  constructor(private readonly limit: number) {}

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.active++;
    try {
      return await fn();
    } finally {
      this.active--;
      this.waiting.shift()?.();
    }
  }
}

const RETRY_PAUSE_MS = 250;

/**
 * The power state a conversation with a BMC left livery knowing: the one an action the BMC
 * accepted leads to, or else the one its status read told (an action it then refused changed nothing).
 */
function knownState(action: PowerAction, r: PowerResult): PowerState | null {
  if (!r.ok || action === 'status') return r.state;
  return action === 'off' ? 'off' : 'on';
}
const label = (m: Machine) => m.hostname ?? m.macs[0] ?? `#${m.id}`;

/**
 * Power actions on machines through their BMCs. Each BMC call is bounded (power.timeoutMs) and
 * retried (power.retries) when another try may help; at most power.concurrency BMCs are busy
 * at once. Every action leaves a `power` event (the boot-event bus: SSE, the machine's trace)
 * and an audit row, whatever its outcome.
 */
export class PowerService {
  private readonly limit: Limit;

  constructor(
    private readonly cmdb: Cmdb,
    private readonly config: Config['power'],
    private readonly box: SecretBox,
    private readonly drivers: DriverFactory = defaultDriverFactory,
  ) {
    this.limit = new Limit(config.concurrency);
  }

  /** Runs `action` on every machine (concurrently, within the limit); one result per machine, in order. */
  act(machines: Machine[], action: PowerAction, actor: string): Promise<PowerResult[]> {
    return Promise.all(machines.map((m) => this.limit.run(() => this.one(m, action, actor))));
  }

  private async one(machine: Machine, action: PowerAction, actor: string): Promise<PowerResult> {
    const result: PowerResult = { machine: label(machine), mac: machine.macs[0] ?? null, bmc: null, ok: false, state: null, attempts: 0, error: null, failure: null, warning: null };
    let driver: ReturnType<DriverFactory> | null = null;
    try {
      const known = this.cmdb.bmcs.get(machine.id);
      const ref = result.mac ?? machine.id;
      if (!known) {
        result.failure = 'no-bmc';
        throw new Error(`machine ${result.machine} has no BMC (set one with livery machine set ${ref} --bmc ...)`);
      }
      const bmc = this.cmdb.bmcs.credentials(machine.id, this.box);
      if (!bmc) {
        result.bmc = `${known.driver}://${known.address}`;
        result.failure = 'no-credentials';
        throw new Error(
          `machine ${result.machine}'s BMC at ${known.address} has no credentials yet: commissioning records only its address (set them with livery machine set ${ref} --bmc ${known.driver}://USER@${known.address} --bmc-password-file FILE)`,
        );
      }
      driver = this.drivers(bmc, this.config);
      result.bmc = driver.label;
      const d = driver;
      const call = <T>(fn: () => Promise<T>) => this.retrying(result, fn);
      result.state = await call(() => d.status());
      if (action !== 'status') {
        // The machine is to boot from livery: the next boot, only, from the network.
        if (action !== 'off') await call(() => d.bootFromNetworkOnce()).catch((err: unknown) => this.goOnWithout(result, err));
        // A BMC refuses to cycle or reset a machine that is off; switching it on is the same boot.
        const effective = (action === 'cycle' || action === 'reset') && result.state === 'off' ? 'on' : action;
        // A cycle or reset the BMC may have carried out is not sent again: that would boot the machine twice.
        await this.retrying(result, () => d.power(effective), effective === 'cycle' || effective === 'reset');
      }
      result.ok = true;
    } catch (err) {
      // Each message names what failed: the BMC and its answer, the key file, or the machine.
      result.error = err instanceof Error ? err.message : String(err);
      result.failure ??= err instanceof SecretKeyError ? 'secret-key' : 'bmc';
    } finally {
      await driver?.close?.();
    }
    this.record(machine, action, actor, result);
    return result;
  }

  /** A refused boot override does not stop the power action: the machine boots by its own boot order. */
  private goOnWithout(result: PowerResult, err: unknown): void {
    if (!(err instanceof BootOverrideRefused)) throw err;
    result.warning = `${err.message}; went ahead: the machine boots by its own boot order`;
  }

  private async retrying<T>(result: PowerResult, fn: () => Promise<T>, once = false): Promise<T> {
    for (let tries = 0; ; tries++) {
      result.attempts++;
      try {
        return await fn();
      } catch (err) {
        if (!(err instanceof BmcError) || !err.retryable || tries >= this.config.retries) throw err;
        if (once && err.mayHaveActed) throw new BmcError(err.bmc, `${err.detail} (not sent again: the BMC may have carried it out)`, false, true);
        await new Promise((r) => setTimeout(r, RETRY_PAUSE_MS * (tries + 1)));
      }
    }
  }

  private record(machine: Machine, action: PowerAction, actor: string, r: PowerResult): void {
    const detail = { action, bmc: r.bmc, result: r.ok ? 'ok' : 'error', state: r.state, attempts: r.attempts, error: r.error, ...(r.warning ? { warning: r.warning } : {}), actor };
    const known = knownState(action, r);
    this.cmdb.tx(() => {
      // Before the event: a page that redraws the machine on it shows the state just learned.
      if (known) this.cmdb.bmcs.recordPower(machine.id, known);
      this.cmdb.events.add({ type: 'power', mac: r.mac, machineId: machine.id, detail });
      this.cmdb.audit.record(actor, `power.${action}`, r.mac ?? String(machine.id), detail);
    });
  }
}
