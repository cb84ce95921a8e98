import type { SqlDb } from './sql.js';
import { invalid, notFound } from './errors.js';
import type { SecretBox } from './secret-box.js';
import { checkHostname, checkIp, checkText } from './validate.js';
import { iso } from './util.js';

export type BmcDriver = 'ipmi' | 'redfish';
export const BMC_DRIVERS: readonly BmcDriver[] = ['ipmi', 'redfish'];

/**
 * A machine's BMC as the API shows it: the password is write-only (only whether one is set). A
 * BMC that commissioning found has an address but no username or password until the operator
 * sets them: power actions refuse it until then.
 */
export interface Bmc {
  driver: BmcDriver;
  address: string;
  /** null: the driver's default (623 for IPMI, 443 for Redfish). */
  port: number | null;
  /** null: not set yet (a BMC commissioning found). */
  username: string | null;
  passwordSet: boolean;
  /** Redfish: the ComputerSystem's path; null: found by discovery (the only member of Systems). */
  systemPath: string | null;
  /** Redfish: verify the BMC's certificate against the system's CAs. */
  verify: boolean;
  /** Redfish: the certificate's sha256 fingerprint (hex), accepted even when it is self-signed. */
  fingerprint: string | null;
  updatedAt: string;
  /** The machine's power as livery last learned it from this BMC (an action or a status read); null: never learned. */
  power: { state: BmcPowerState; at: string } | null;
}

export type BmcPowerState = 'on' | 'off';

/** What the power drivers get: the BMC with its password opened. Never leaves the process. */
export interface BmcCredentials extends Omit<Bmc, 'passwordSet' | 'updatedAt' | 'power' | 'username'> {
  username: string;
  password: string;
}

/** Whether power actions can use this BMC: the operator has set its username and password. */
export const hasCredentials = (b: Pick<Bmc, 'username' | 'passwordSet'>): boolean => b.username !== null && b.passwordSet;

export interface BmcInput {
  driver?: BmcDriver;
  address?: string;
  port?: number | null;
  username?: string;
  /** Omitted: keep the stored one. */
  password?: string;
  systemPath?: string | null;
  verify?: boolean;
  fingerprint?: string | null;
}

/** A BMC record checked and ready to write, its password sealed. */
export interface CheckedBmc {
  driver: BmcDriver;
  address: string;
  port: number | null;
  username: string;
  sealed: string;
  systemPath: string | null;
  verify: boolean;
  fingerprint: string | null;
}

interface BmcRow {
  machine_id: number;
  driver: BmcDriver;
  address: string;
  port: number | null;
  /** '' for a BMC commissioning found (the column is NOT NULL since migration 4): no username yet. */
  username: string;
  password_sealed: string | null;
  system_path: string | null;
  verify: number;
  fingerprint: string | null;
  updated_at: number;
  power_state: BmcPowerState | null;
  power_state_at: number | null;
}

const toBmc = (r: BmcRow): Bmc => ({
  driver: r.driver,
  address: r.address,
  port: r.port,
  username: r.username === '' ? null : r.username,
  passwordSet: r.password_sealed !== null,
  systemPath: r.system_path,
  verify: r.verify === 1,
  fingerprint: r.fingerprint,
  updatedAt: iso(r.updated_at),
  power: r.power_state && r.power_state_at !== null ? { state: r.power_state, at: iso(r.power_state_at) } : null,
});

/**
 * `ipmi://user@10.0.0.5:623` or `redfish://admin@bmc1.example/redfish/v1/Systems/1`: the
 * compact form the CLI and CSV import take. A password in the URL is refused: it would sit in
 * shell history and process lists.
 */
export function parseBmcUrl(text: string, field = 'bmc'): BmcInput {
  const m = /^(ipmi|redfish):\/\/([^@/:\s]+)(?::([^@/\s]*))?@([^/:\s]+|\[[0-9a-fA-F:]+\])(?::([0-9]+))?(\/\S*)?$/.exec(text.trim());
  if (!m) throw invalid(field, `expected ipmi://user@address[:port] or redfish://user@address[:port][/redfish/v1/Systems/ID], got ${JSON.stringify(text)}`);
  if (m[3] !== undefined) throw invalid(field, 'a password does not go in the URL: give it with --bmc-password-file, the prompt, or the bmc_password column');
  const driver = m[1] as BmcDriver;
  if (driver === 'ipmi' && m[6] && m[6] !== '/') throw invalid(field, 'an IPMI BMC has no path');
  return {
    driver,
    username: decodeURIComponent(m[2]!),
    address: m[4]!,
    port: m[5] ? Number(m[5]) : null,
    systemPath: driver === 'redfish' && m[6] !== undefined && m[6] !== '/' ? m[6] : null,
  };
}

const FINGERPRINT = /^[0-9a-f]{64}$/;
const SYSTEM_PATH = /^\/redfish\/v1\/Systems\/[A-Za-z0-9._~%-]+$/;

/** Machines' BMCs (migration 4). Passwords go in sealed by the SecretBox and come out only via credentials(). */
export class SqlBmcStore {
  constructor(private readonly db: SqlDb) {}

  get(machineId: number): Bmc | null {
    const row = this.row(machineId);
    return row ? toBmc(row) : null;
  }

  /** Creates or replaces a machine's BMC; the password is kept when the input leaves it out. */
  set(machineId: number, input: BmcInput, box: SecretBox): Bmc {
    this.write(machineId, this.check(machineId, input, box));
    return this.get(machineId)!;
  }

  /**
   * The row set() would write for `input` (a machine without one yet: null), checked and its
   * password sealed; throws naming the field. Import checks every row's BMC this way before it
   * writes anything.
   */
  check(machineId: number | null, input: BmcInput, box: SecretBox): CheckedBmc {
    const old = machineId === null ? undefined : this.row(machineId);
    const driver = input.driver ?? old?.driver;
    if (!driver || !BMC_DRIVERS.includes(driver)) throw invalid('bmc.driver', `must be one of ${BMC_DRIVERS.join(', ')}`);
    const rawAddress = input.address ?? old?.address;
    if (typeof rawAddress !== 'string' || rawAddress === '') throw invalid('bmc.address', 'is required (IPv4 address or host name)');
    const address = /^[0-9.]+$/.test(rawAddress) ? checkIp('bmc.address', rawAddress)! : checkHostname('bmc.address', rawAddress)!;
    const port = input.port !== undefined ? input.port : (old?.port ?? null);
    if (port !== null && (!Number.isInteger(port) || port < 1 || port > 65535)) throw invalid('bmc.port', 'must be a whole number from 1 to 65535');
    const username = checkText('bmc.username', input.username ?? old?.username, 64);
    if (!username) throw invalid('bmc.username', 'is required');
    let sealed = old?.password_sealed ?? null;
    if (input.password !== undefined) {
      if (typeof input.password !== 'string' || input.password.length > 256 || /[\n\r\0]/.test(input.password)) {
        throw invalid('bmc.password', 'must be one line of at most 256 characters');
      }
      sealed = box.seal(input.password);
    }
    if (sealed === null) throw invalid('bmc.password', old ? 'is required: none is stored yet (a BMC commissioning found)' : 'is required for a new BMC');
    const systemPath = input.systemPath !== undefined ? input.systemPath : (old?.system_path ?? null);
    if (systemPath !== null && (driver !== 'redfish' || !SYSTEM_PATH.test(systemPath))) {
      throw invalid('bmc.systemPath', driver === 'redfish' ? 'must look like /redfish/v1/Systems/<id>' : 'applies to Redfish BMCs only');
    }
    const verify = input.verify ?? (old ? old.verify === 1 : true);
    if (typeof verify !== 'boolean') throw invalid('bmc.verify', 'must be true or false');
    const rawFp = input.fingerprint !== undefined ? input.fingerprint : (old?.fingerprint ?? null);
    const fingerprint = rawFp === null || rawFp === '' ? null : String(rawFp).replaceAll(':', '').toLowerCase();
    if (fingerprint !== null && !FINGERPRINT.test(fingerprint)) throw invalid('bmc.fingerprint', 'must be a sha256 fingerprint: 64 hex digits (colons allowed)');
    if (fingerprint !== null && driver !== 'redfish') throw invalid('bmc.fingerprint', 'applies to Redfish BMCs only');
    return { driver, address, port, username, sealed, systemPath, verify, fingerprint };
  }

  write(machineId: number, b: CheckedBmc): void {
    this.db
      .prepare(
        `INSERT INTO machine_bmcs (machine_id, driver, address, port, username, password_sealed, system_path, verify, fingerprint, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (machine_id) DO UPDATE SET driver = excluded.driver, address = excluded.address, port = excluded.port,
           username = excluded.username, password_sealed = excluded.password_sealed, system_path = excluded.system_path,
           verify = excluded.verify, fingerprint = excluded.fingerprint, updated_at = excluded.updated_at`,
      )
      .run(machineId, b.driver, b.address, b.port, b.username, b.sealed, b.systemPath, b.verify ? 1 : 0, b.fingerprint, Date.now());
  }

  /**
   * Records the IPMI BMC a commissioning report found at `address`, without credentials (they
   * are the operator's to set), when the machine has no BMC yet; one the operator set is never
   * replaced. Returns whether it recorded one.
   */
  recordFound(machineId: number, address: string): boolean {
    const ip = checkIp('bmc.address', address)!;
    const inserted = this.db
      .prepare(`INSERT INTO machine_bmcs (machine_id, driver, address, port, username, password_sealed, verify, updated_at) VALUES (?, 'ipmi', ?, NULL, '', NULL, 1, ?) ON CONFLICT (machine_id) DO NOTHING`)
      .run(machineId, ip, Date.now());
    return inserted.changes > 0;
  }

  remove(machineId: number): void {
    if (this.db.prepare('DELETE FROM machine_bmcs WHERE machine_id = ?').run(machineId).changes === 0) throw notFound(`BMC of machine ${machineId}`);
  }

  /**
   * The BMC with its password opened, for a driver (null: no BMC, or one without credentials
   * yet); throws SecretKeyError naming the key file if it cannot be opened.
   */
  credentials(machineId: number, box: SecretBox): BmcCredentials | null {
    const row = this.row(machineId);
    if (!row || row.username === '' || row.password_sealed === null) return null;
    const { passwordSet: _set, updatedAt: _at, power: _power, username: _user, ...bmc } = toBmc(row);
    return { ...bmc, username: row.username, password: box.open(row.password_sealed) };
  }

  /** Records the power state a BMC just told (or was just told to reach); a machine without a BMC has none to record. */
  recordPower(machineId: number, state: BmcPowerState, at = Date.now()): void {
    this.db.prepare('UPDATE machine_bmcs SET power_state = ?, power_state_at = ? WHERE machine_id = ?').run(state, at, machineId);
  }

  /** The key ids the stored passwords were sealed with (a start with a new key file checks these). */
  keyIds(): string[] {
    const rows = this.db.prepare("SELECT DISTINCT substr(password_sealed, 4, 8) AS id FROM machine_bmcs WHERE password_sealed LIKE 'v1:%'").all() as { id: string }[];
    return rows.map((r) => r.id);
  }

  private row(machineId: number): BmcRow | null {
    return (this.db.prepare('SELECT * FROM machine_bmcs WHERE machine_id = ?').get(machineId) as BmcRow | undefined) ?? null;
  }
}
