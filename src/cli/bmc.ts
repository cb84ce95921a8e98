import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import type { Command } from 'commander';
import { parseBmcUrl, type Bmc, type BmcInput } from '../cmdb/bmcs.js';
import type { ApiClient } from './client.js';
import { CliError } from './client.js';

export interface BmcFlags {
  bmc?: string;
  bmcPasswordFile?: string;
  bmcVerify?: boolean;
  bmcFingerprint?: string;
}

/** The BMC options of `machine add` and `machine set`. There is no password option: it would sit in shell history and `ps`. */
export function bmcOptions(cmd: Command): Command {
  return cmd
    .option('--bmc <url>', 'BMC: ipmi://user@address[:port] or redfish://user@address[:port][/redfish/v1/Systems/ID]')
    .option('--bmc-password-file <file>', "file holding the BMC password (first line); without it, it is asked for on the terminal")
    .option('--no-bmc-verify', "Redfish: do not verify the BMC's certificate (prefer --bmc-fingerprint)")
    .option('--bmc-fingerprint <sha256>', "Redfish: accept exactly this certificate (sha256 fingerprint, e.g. from openssl x509 -fingerprint -sha256)");
}

/** Reads a line from the terminal without echoing it. */
async function promptHidden(question: string): Promise<string> {
  if (!process.stdin.isTTY) throw new CliError('the BMC password: give --bmc-password-file (no terminal to ask on)');
  let muted = false;
  const output = new Writable({
    write(chunk, _enc, done) {
      if (!muted) process.stderr.write(chunk);
      done();
    },
  });
  const rl = createInterface({ input: process.stdin, output, terminal: true });
  const answer = new Promise<string>((resolve) => rl.question(question, resolve));
  muted = true;
  const password = await answer;
  rl.close();
  process.stderr.write('\n');
  return password;
}

/** The BMC the flags describe, or null when --bmc was not given. */
export async function bmcFromFlags(f: BmcFlags): Promise<BmcInput | null> {
  if (f.bmc === undefined) {
    if (f.bmcPasswordFile || f.bmcFingerprint || f.bmcVerify === false) throw new CliError('--bmc-password-file, --bmc-fingerprint and --no-bmc-verify go with --bmc');
    return null;
  }
  const input = parseBmcUrl(f.bmc, '--bmc');
  if (f.bmcPasswordFile) input.password = readFileSync(f.bmcPasswordFile, 'utf8').split(/\r?\n/)[0]!;
  else input.password = await promptHidden(`password for ${f.bmc}: `);
  if (f.bmcVerify === false) input.verify = false;
  if (f.bmcFingerprint) input.fingerprint = f.bmcFingerprint;
  return input;
}

export function putBmc(client: ApiClient, ref: string, input: BmcInput): Promise<Bmc> {
  return client.request<Bmc>('PUT', `/v1/machines/${encodeURIComponent(ref)}/bmc`, input);
}

/**
 * driver://user@address:port, as shown by `machine show` (the password only as set or not); a
 * BMC commissioning found shows its address and that its credentials are the operator's to set.
 */
export const formatBmc = (b: Bmc, machineRef: string) =>
  b.username === null
    ? `${b.driver}://${b.address} (found by commissioning; credentials not set: livery machine set ${machineRef} --bmc ${b.driver}://USER@${b.address} --bmc-password-file FILE)`
    : `${b.driver}://${b.username}@${b.address}${b.port ? `:${b.port}` : ''}${b.systemPath ?? ''} (password ${b.passwordSet ? 'set' : 'not set'}${b.fingerprint ? `, pinned ${b.fingerprint.slice(0, 16)}...` : b.driver === 'redfish' && !b.verify ? ', certificate not verified' : ''})`;
