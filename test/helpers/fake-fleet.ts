import type { Machine } from '../../src/cmdb/types.js';
import type { RolloutPower } from '../../src/rollout/power.js';

/** What a simulated machine does after a power cycle, given the image livery serves it. */
export type Behaviour = 'healthy' | 'unhealthy' | 'silent';

export interface Cycle {
  mac: string;
  at: number;
}

/**
 * What a machine's firmware asks first: its boot script, whose kernel line names the image
 * livery serves it (livery takes a phone-home only for that image). Null: nothing to boot.
 */
export async function servedImage(url: string, mac: string): Promise<string | null> {
  const res = await fetch(`${url}/boot/${mac}.ipxe`);
  if (res.status !== 200) throw new Error(`boot script for ${mac}: ${res.status} ${await res.text()}`);
  return /livery\.image=(\S+)/.exec(await res.text())?.[1] ?? null;
}

/**
 * BMCs and machines for rollout tests. A power cycle is recorded, then the "machine" boots the
 * way a real one meets livery, over real HTTP: it fetches its boot script (livery's boot
 * decision names the image it gets), phones home with that image, and reports health as
 * `behave` says for that image. Livery serves these machines with
 * http.metadataRequiresOwnAddress off, as they all come from loopback. Machines labelled bmc=none have no BMC; bmc=broken ones answer with an error.
 */
export class FakeFleet implements RolloutPower {
  readonly cycles: Cycle[] = [];
  booting = 0;
  peak = 0;
  private readonly pending = new Set<Promise<unknown>>();

  constructor(
    private readonly url: () => string,
    private readonly behave: (imageId: string, mac: string) => Behaviour,
    private readonly bootMs = 30,
  ) {}

  hasBmc(machine: Machine): boolean {
    return machine.labels.bmc !== 'none';
  }

  async cycle(machine: Machine, opts: { bootDevice: 'pxe' }): Promise<void> {
    if (opts.bootDevice !== 'pxe') throw new Error('expected a network boot');
    const mac = machine.macs[0]!;
    if (machine.labels.bmc === 'broken') throw new Error(`BMC ipmi://10.0.0.9 of ${mac}: RAKP 2 HMAC is invalid (wrong password?)`);
    this.cycles.push({ mac, at: Date.now() });
    this.booting++;
    this.peak = Math.max(this.peak, this.booting);
    const boot: Promise<unknown> = new Promise<void>((r) => setTimeout(r, this.bootMs))
      .then(() => this.boot(mac, () => this.booting--))
      .finally(() => this.pending.delete(boot));
    this.pending.add(boot);
  }

  /**
   * A machine coming up on whatever livery serves it now (also used for machines rebooted by
   * hand). `up` runs as the machine is about to report: from then on livery may count it done.
   */
  async boot(mac: string, up = () => {}): Promise<string> {
    const imageId = await servedImage(this.url(), mac);
    if (!imageId) throw new Error(`livery serves ${mac} no image`);
    const behaviour = this.behave(imageId, mac);
    if (behaviour !== 'silent') up();
    await this.post(mac, 'booted', { imageId });
    if (behaviour === 'silent') up();
    if (behaviour === 'healthy') await this.post(mac, 'health', { imageId, status: 'healthy', failing: [] });
    if (behaviour === 'unhealthy') {
      await this.post(mac, 'health', { imageId, status: 'unhealthy', failing: [{ check: 'command test -e /dev/kvm', output: 'no /dev/kvm on this host\nexit status 1' }] });
    }
    return imageId;
  }

  async settle(): Promise<void> {
    while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
  }

  private async post(mac: string, what: string, body: unknown): Promise<void> {
    const res = await fetch(`${this.url()}/v1/machines/${mac}/${what}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    if (res.status !== 204) throw new Error(`${what} for ${mac}: ${res.status} ${await res.text()}`);
  }
}
