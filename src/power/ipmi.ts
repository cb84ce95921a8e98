import { spawn } from 'node:child_process';
import type { BmcCredentials } from '../cmdb/bmcs.js';
import { BmcError, BootOverrideRefused, type IpmiSettings, type PowerAction, type PowerDriver, type PowerState } from './types.js';

export const IPMI_DEFAULT_PORT = 623;

/** ipmitool's notes that precede its answer and say nothing about the outcome. */
const NOISE = /^(Unable to Get Channel Cipher Suites|Loading IANA PEN Registry\.\.\.|Running Get PICMG Properties.*|Discovered.*|Get Session Challenge command failed)\s*$/;
/**
 * ipmitool's words (with -v, which says why a session failed) for a BMC that refused the
 * credentials: trying again cannot help, and may lock the account.
 */
const AUTH_REFUSED = /RAKP|password|unauthorized name|invalid user name|insufficient privilege/i;

/**
 * IPMI over LAN (RMCP+, `-I lanplus`) through Debian's ipmitool, a well-kept client, rather
 * than a hand-written RMCP+ stack. The password reaches ipmitool through its environment
 * (`-E` reads IPMI_PASSWORD), never its argv, which any local user can read in /proc.
 */
export class IpmiDriver implements PowerDriver {
  readonly label: string;

  constructor(
    private readonly bmc: BmcCredentials,
    private readonly settings: IpmiSettings,
  ) {
    this.label = `ipmi://${bmc.username}@${bmc.address}:${bmc.port ?? IPMI_DEFAULT_PORT}`;
  }

  async status(): Promise<PowerState> {
    const { out } = await this.run(['chassis', 'power', 'status']);
    const m = /Chassis Power is (on|off)/i.exec(out);
    if (!m) throw new BmcError(this.label, `unexpected answer to power status: ${JSON.stringify(out.trim())}`, false);
    return m[1]!.toLowerCase() as PowerState;
  }

  async bootFromNetworkOnce(): Promise<void> {
    // Without options=persistent the override holds for the next boot only. A BMC that refuses
    // the boot flags (parameter 5) leaves ipmitool exiting 0: only its words tell.
    const { out, said } = await this.run(['chassis', 'bootdev', 'pxe']);
    if (!/Set Boot Device to pxe/i.test(out)) {
      // Parameter 4 (the boot info acknowledgement) may fail beside it; 5 is the one that matters.
      const failed = said.filter((l) => /failed/i.test(l));
      const refused = (failed.find((l) => /Parameter 5 /.test(l)) ?? failed.join('; ')) || `unexpected answer ${JSON.stringify(out.trim())}`;
      throw new BootOverrideRefused(this.label, `refused the one-time network boot: ${refused}`);
    }
  }

  async power(action: Exclude<PowerAction, 'status'>): Promise<void> {
    await this.run(['chassis', 'power', action]);
  }

  /**
   * One ipmitool run, killed if it outlives the limit. ipmitool's own timeout (-N, whole
   * seconds) and a single try (-R 1) keep it inside that; the kill is the backstop.
   */
  private run(command: string[]): Promise<{ out: string; said: string[] }> {
    const { address, port, username, password } = this.bmc;
    const seconds = Math.max(1, Math.floor(this.settings.timeoutMs / 1000));
    const args = ['-I', 'lanplus', '-C', String(this.settings.ipmiCipherSuite), '-H', address, '-p', String(port ?? IPMI_DEFAULT_PORT), '-U', username, '-E', '-N', String(seconds), '-R', '1', '-v', ...command];
    const [program, ...prefix] = this.settings.ipmitool.trim().split(/\s+/) as [string, ...string[]];
    return new Promise((resolve, reject) => {
      const child = spawn(program, [...prefix, ...args], {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', IPMI_PASSWORD: password },
      });
      let out = '';
      let err = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
      child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new BmcError(this.label, `no answer to ${command.join(' ')} within ${this.settings.timeoutMs} ms`, true, true));
      }, this.settings.timeoutMs);
      child.on('error', (e) => {
        clearTimeout(timer);
        reject(new BmcError(this.label, `cannot run ${program}: ${e.message} (install Debian's ipmitool, or set power.ipmitool)`, false));
      });
      child.on('close', (code) => {
        clearTimeout(timer);
        const said = err
          .split('\n')
          .map((l) => l.trim())
          .filter((l) => l !== '' && !NOISE.test(l));
        if (code === 0) return resolve({ out, said });
        const answer = said.map((l) => l.replace(/^>\s*/, '')).slice(-3).join('; ') || `exit status ${code}`;
        reject(new BmcError(this.label, `ipmitool ${command.join(' ')} failed: ${answer}`, !AUTH_REFUSED.test(answer)));
      });
    });
  }
}
