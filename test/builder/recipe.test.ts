import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseRecipe, RecipeError } from '../../src/builder/recipe.js';

const FIXTURES = resolve('test/fixtures/builder');
const scratch = mkdtempSync(join(tmpdir(), 'livery-recipe-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

let counter = 0;
/** Writes a recipe (and optional neighbours) into its own folder; returns the recipe path. */
function recipe(text: string, files: Record<string, string> = {}): string {
  const dir = join(scratch, `r${++counter}`);
  mkdirSync(dir);
  for (const [name, content] of Object.entries(files)) {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), content);
  }
  writeFileSync(join(dir, 'recipe'), text);
  return join(dir, 'recipe');
}

function errorOf(path: string): RecipeError {
  try {
    parseRecipe(path);
  } catch (err) {
    if (err instanceof RecipeError) return err;
    throw err;
  }
  throw new Error(`expected ${path} to be rejected`);
}

const HEAD = 'name t\nbase debian bookworm amd64\n';

describe('recipe parser: every directive', () => {
  const path = join(FIXTURES, 'full/recipe');
  const r = parseRecipe(path);

  it('reads name, version, base with components and mirror', () => {
    expect(r.file).toBe(path);
    expect(r.name).toBe('full-test');
    expect(r.version).toBe('1.2.3');
    expect(r.base).toEqual({ distribution: 'debian', suite: 'bookworm', arch: 'amd64', components: ['main', 'non-free-firmware'] });
    expect(r.mirror).toBe('http://mirror.invalid/debian');
  });

  it('collects packages, several per line, with -pkg removals applied in order', () => {
    expect(r.packages).toEqual(['curl', 'nano', 'vim-tiny']);
    expect(r.removedPackages).toEqual(['less']);
  });

  it('reads users with ssh keys (a # inside a quoted key is not a comment), sudo, groups, uid, password, shell', () => {
    expect(r.users.map(({ origin, ...u }) => u)).toEqual([
      { name: 'ops', sshKeys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGxpdmVyeXRlc3RrZXk ops@laptop #1'], sudo: true, groups: ['adm', 'sudo'], shell: '/bin/bash' },
      { name: 'app', sshKeys: [], sudo: false, passwordHash: '$6$salt$hash', uid: 1500, groups: [], shell: '/bin/sh' },
    ]);
    expect(r.users[1]!.origin).toEqual({ file: path, line: 16 });
  });

  it('reads rootpw, timezone, locale, services, firewall and kernel-args', () => {
    expect(r.rootPassword).toEqual({ locked: false, hash: '$6$rootsalt$roothash' });
    expect(r.timezone).toBe('Europe/Berlin');
    expect(r.locale).toBe('en_US.UTF-8');
    expect(r.services).toEqual({ enable: ['ssh', 'nftables', 'cron.service'], disable: ['apt-daily.timer'] });
    expect(r.firewall).toEqual({
      allow: [
        { protocol: 'tcp', fromPort: 22, toPort: 22 },
        { protocol: 'udp', fromPort: 53, toPort: 53 },
        { protocol: 'tcp', fromPort: 8000, toPort: 8100 },
      ],
    });
    expect(r.kernelArgs).toBe('quiet loglevel=3 extra=1');
  });

  it('resolves file and overlay sources against the recipe folder', () => {
    expect(r.files).toEqual([{ source: join(FIXTURES, 'full/files/hello.conf'), dest: '/etc/hello/hello.conf', mode: 0o600, owner: 'root', group: 'adm', origin: { file: path, line: 24 } }]);
    expect(r.overlays).toEqual([{ source: join(FIXTURES, 'full/overlay'), origin: { file: path, line: 25 } }]);
  });

  it('keeps %post bodies verbatim, with their interpreter', () => {
    expect(r.post.map((p) => [p.interpreter, p.body, p.origin.line])).toEqual([
      ['/bin/sh', 'echo "# not a comment inside %post" > /etc/hi\n', 29],
      ['/bin/bash', 'echo "$BASH_VERSION"\n', 33],
    ]);
  });

  it('defaults: root locked, UTC, C.UTF-8, no firewall, no kernel args', () => {
    const d = parseRecipe(recipe(HEAD));
    expect(d.rootPassword).toEqual({ locked: true });
    expect([d.timezone, d.locale, d.kernelArgs, d.version, d.mirror]).toEqual(['UTC', 'C.UTF-8', '', undefined, undefined]);
    expect(d.firewall).toEqual({ allow: [] });
    expect(parseRecipe(recipe(`${HEAD}rootpw --lock\n`)).rootPassword).toEqual({ locked: true });
  });

  it('reads health checks in order, with the timeout; none by default', () => {
    const h = parseRecipe(recipe(`${HEAD}health unit sshd.service\nhealth command "test -e /dev/kvm && grep -q 'ok' /run/x"\nhealth timeout 300\nhealth unit libvirtd\n`)).health;
    expect(h).toEqual({
      timeoutSeconds: 300,
      checks: [
        { kind: 'unit', value: 'sshd.service' },
        { kind: 'command', value: "test -e /dev/kvm && grep -q 'ok' /run/x" },
        { kind: 'unit', value: 'libvirtd' },
      ],
    });
    expect(parseRecipe(recipe(HEAD)).health).toEqual({ timeoutSeconds: 120, checks: [] });
  });

  it('health checks of an included recipe come first; the includer sets the timeout', () => {
    const dir = join(scratch, `inc${++counter}`);
    mkdirSync(dir);
    writeFileSync(join(dir, 'base'), `${HEAD}health unit ssh.service\nhealth timeout 60\n`);
    writeFileSync(join(dir, 'recipe'), `%include base\nname top\nhealth command true\nhealth timeout 90\n`);
    expect(parseRecipe(join(dir, 'recipe')).health).toEqual({ timeoutSeconds: 90, checks: [{ kind: 'unit', value: 'ssh.service' }, { kind: 'command', value: 'true' }] });
  });

  it('takes a %firewall ruleset verbatim', () => {
    const body = 'table inet filter {\n  chain input { type filter hook input priority 0; }\n}\n';
    expect(parseRecipe(recipe(`${HEAD}%firewall\n${body}%end\n`)).firewall).toEqual({ allow: [], ruleset: body });
  });
});

describe('recipe parser: includes', () => {
  const derived = join(FIXTURES, 'include/sub/derived.recipe');
  const r = parseRecipe(derived);

  it('merges the included recipe first; the includer overrides single values', () => {
    expect(r.name).toBe('derived');
    expect(r.base.suite).toBe('bookworm');
    expect(r.timezone).toBe('Europe/Paris');
    expect(r.packages).toEqual(['aaa', 'ccc']);
    expect(r.removedPackages).toEqual(['bbb']);
    expect(r.kernelArgs).toBe('a=1 b=2');
    expect(r.services.enable).toEqual(['one']);
    expect(r.post.map((p) => p.body)).toEqual(['echo base\n', 'echo derived\n']);
  });

  it('resolves each file against the folder of the recipe that names it', () => {
    expect(r.files.map((f) => [f.source, f.origin.file])).toEqual([
      [join(FIXTURES, 'include/files/a.txt'), join(FIXTURES, 'include/base.recipe')],
      [join(FIXTURES, 'include/sub/files/b.txt'), derived],
    ]);
  });

  it('flattens the text with the included recipe in place', () => {
    expect(r.text).toContain('# >>> %include ../base.recipe\nname base\n');
    expect(r.text).toContain('# <<< end of ../base.recipe\ntimezone Europe/Paris');
    expect(r.text).not.toMatch(/^%include/m);
  });

  it('reports include cycles with the chain', () => {
    const a = join(FIXTURES, 'cycle/a.recipe');
    const b = join(FIXTURES, 'cycle/b.recipe');
    expect(errorOf(a).message).toBe(`${b}:3: include cycle: ${a} -> ${b} -> ${a}`);
    const self = join(FIXTURES, 'cycle/self.recipe');
    expect(errorOf(self).message).toBe(`${self}:2: include cycle: ${self} -> ${self}`);
  });

  it('reports a missing included file at the include line', () => {
    const p = recipe(`${HEAD}%include nowhere.recipe\n`);
    expect(errorOf(p).message).toBe(`${p}:3: cannot read included recipe 'nowhere.recipe' (ENOENT)`);
  });
});

describe('recipe parser: errors name file, line and what was expected', () => {
  const cases: [string, string, number, string][] = [
    ['unknown directive', `${HEAD}hostname node1\n`, 3, "unknown directive 'hostname' (expected one of name, version, base, mirror, user, rootpw, timezone, locale, services, firewall, file, overlay, kernel-args, health, %include, %packages, %post, %firewall)"],
    ['missing name', 'base debian bookworm amd64\n', 1, "missing 'name' directive (expected e.g. 'name minimal')"],
    ['missing base', 'name t\n', 1, "missing 'base' directive (expected e.g. 'base debian bookworm amd64')"],
    ['bad name', 'name Big_Name\n', 1, "expected an image name of lower-case letters, digits, '.', '_' or '-' (got 'Big_Name')"],
    ['name twice', `${HEAD}name u\n`, 3, "'name' already set at line 1"],
    ['name without value', 'name\n', 1, "'name' expects 1 argument, got 0 (usage: name IMAGE-NAME)"],
    ['other distribution', 'name t\nbase fedora 40 x86_64\n', 2, "expected distribution 'debian' (the only one supported so far), got 'fedora'"],
    ['base arity', 'name t\nbase debian bookworm\n', 2, "'base' expects 3 arguments, got 2 (usage: base debian SUITE ARCH [--components main,...])"],
    ['unterminated quote', `${HEAD}kernel-args "quiet\n`, 3, 'unterminated " quote (expected a closing ")'],
    ['livery parameter in kernel-args', `${HEAD}kernel-args quiet livery.rootfs=http://evil/r\n`, 3, "'kernel-args' livery.rootfs: livery sets BOOTIF, initrd= and livery.* itself; remove them"],
    ['${ in kernel-args', `${HEAD}kernel-args 'ip=\${net0/ip}'\n`, 3, `'kernel-args' must not contain "\${" (iPXE would expand it; kernel arguments are passed literally)`],
    ['unclosed %post', `${HEAD}%post\necho hi\n`, 3, '%post section is not closed (expected %end before the end of the file)'],
    ['stray %end', `${HEAD}%end\n`, 3, "'%end' without an open %packages, %post or %firewall section"],
    ['bad package', `${HEAD}%packages\nok Bad_Pkg\n%end\n`, 4, "expected a Debian package name (got 'Bad_Pkg')"],
    ['bad ssh key', `${HEAD}user ops --ssh-key "not a key"\n`, 3, `expected an OpenSSH public key such as "ssh-ed25519 AAAA... comment" (got 'not a key')`],
    ['user root', `${HEAD}user root\n`, 3, "expected a user other than root (use 'rootpw' for root)"],
    ['user twice', `${HEAD}user ops\nuser ops\n`, 4, "user 'ops' already declared at <recipe>:3"],
    ['unknown option', `${HEAD}user ops --admin\n`, 3, "unknown option '--admin' for 'user' (expected --ssh-key, --sudo, --password, --uid, --groups, --shell)"],
    ['option without value', `${HEAD}user ops --uid\n`, 3, "option '--uid' of 'user' expects a value"],
    ['low uid', `${HEAD}user ops --uid 0\n`, 3, "expected a uid between 1000 and 59999 (got '0')"],
    ['bad password hash', `${HEAD}user ops --password secret\n`, 3, "expected a crypt(3) password hash such as '$6$salt$...' (got 'secret')"],
    ['rootpw both', `${HEAD}rootpw --lock --hash '$6$a$b'\n`, 3, "'rootpw' expects exactly one of --lock or --hash (usage: rootpw --lock | rootpw --hash HASH)"],
    ['bad timezone', `${HEAD}timezone ../etc/passwd\n`, 3, "expected a time zone such as 'Europe/Berlin' or 'UTC' (got '../etc/passwd')"],
    ['bad locale', `${HEAD}locale english\n`, 3, "expected a locale such as 'C.UTF-8' or 'en_US.UTF-8' (got 'english')"],
    ['services without options', `${HEAD}services\n`, 3, "'services' expects --enable or --disable (usage: services [--enable a,b] [--disable c])"],
    ['bad unit', `${HEAD}services --enable 'a b'\n`, 3, "expected comma-separated systemd unit names such as 'ssh,nftables' (got 'a b')"],
    ['bad port', `${HEAD}firewall --allow tcp/70000\n`, 3, "expected protocol/port such as tcp/22, udp/53 or tcp/8000-8100 (got 'tcp/70000')"],
    ['bad protocol', `${HEAD}firewall --allow icmp/1\n`, 3, "expected protocol/port such as tcp/22, udp/53 or tcp/8000-8100 (got 'icmp/1')"],
    ['firewall without allow', `${HEAD}firewall\n`, 3, "'firewall' expects --allow (usage: firewall --allow tcp/22[,udp/53...])"],
    ['ruleset and allow', `${HEAD}firewall --allow tcp/22\n%firewall\nflush ruleset\n%end\n`, 4, "a %firewall ruleset cannot be combined with 'firewall --allow' (use one or the other)"],
    ['bad mirror', `${HEAD}mirror ftp://mirror/debian\n`, 3, "expected an http:// or https:// mirror URL (got 'ftp://mirror/debian')"],
    ['file escaping the folder', `${HEAD}file ../secret /etc/secret\n`, 3, "'../secret' escapes the recipe's folder (expected a path inside <folder>)"],
    ['file missing', `${HEAD}file nothere /etc/x\n`, 3, "file 'nothere' not found next to the recipe"],
    ['file absolute source', `${HEAD}file /etc/passwd /etc/x\n`, 3, "expected a path relative to the recipe's folder, got absolute '/etc/passwd'"],
    ['file relative dest', `${HEAD}file recipe etc/x\n`, 3, "expected an absolute destination path inside the image without '..' (got 'etc/x')"],
    ['file dest with ..', `${HEAD}file recipe /etc/../x\n`, 3, "expected an absolute destination path inside the image without '..' (got '/etc/../x')"],
    ['file bad mode', `${HEAD}file recipe /etc/x --mode 999\n`, 3, "expected an octal file mode such as 0644 (got '999')"],
    ['file bad owner', `${HEAD}file recipe /etc/x --owner root\n`, 3, "expected an owner in the form user:group such as root:root (got 'root')"],
    ['overlay on a file', `${HEAD}overlay recipe\n`, 3, "expected 'recipe' to be a directory"],
    ['bad interpreter', `${HEAD}%post --interpreter bash\n%end\n`, 3, "expected an absolute interpreter path such as /bin/bash (got 'bash')"],
    ['health without a kind', `${HEAD}health sshd.service\n`, 3, "'health' expects 2 arguments, got 1 (usage: health unit UNIT | health command \"SHELL COMMAND\" | health timeout SECONDS)"],
    ['health of an unknown kind', `${HEAD}health ping 10.0.0.1\n`, 3, "expected 'health unit', 'health command' or 'health timeout', got 'health ping' (usage: health unit UNIT | health command \"SHELL COMMAND\" | health timeout SECONDS)"],
    ['health unit list', `${HEAD}health unit a,b\n`, 3, "'health unit' expects one unit name (got 'a,b'; give each unit its own line)"],
    ['health unit bad name', `${HEAD}health unit 'a b'\n`, 3, "expected comma-separated systemd unit names such as 'ssh,nftables' (got 'a b')"],
    ['health command unquoted', `${HEAD}health command test -e /dev/kvm\n`, 3, "'health' expects 2 arguments, got 4 (usage: health unit UNIT | health command \"SHELL COMMAND\" | health timeout SECONDS)"],
    ['health command empty', `${HEAD}health command " "\n`, 3, `expected a one-line shell command of at most 1024 printable characters such as "test -e /dev/kvm" (got ' ')`],
    ['health command with a tab', `${HEAD}health command "a\tb"\n`, 3, `expected a one-line shell command of at most 1024 printable characters such as "test -e /dev/kvm" (got 'a\tb')`],
    ['health timeout zero', `${HEAD}health timeout 0\n`, 3, "expected a health timeout in seconds between 1 and 3600 (got '0')"],
    ['health timeout twice', `${HEAD}health timeout 10\nhealth timeout 20\n`, 4, "'health timeout' already set at line 3"],
    ['%packages with arguments', `${HEAD}%packages --nobase\n%end\n`, 3, "unknown option '--nobase' for '%packages' (it takes no options)"],
  ];

  for (const [what, text, line, reason] of cases) {
    it(what, () => {
      const path = recipe(text);
      const folder = join(path, '..');
      const err = errorOf(path);
      const expected = reason.replace('<recipe>', path).replace('<folder>', folder);
      expect(err.message).toBe(`${path}:${line}: ${expected}`);
      expect([err.file, err.line, err.reason]).toEqual([path, line, expected]);
    });
  }

  it('refuses a symlink that leads out of the recipe folder', () => {
    const path = recipe(`${HEAD}overlay sneaky\n`);
    symlinkSync('/etc', join(path, '..', 'sneaky'));
    expect(errorOf(path).message).toBe(`${path}:3: 'sneaky' escapes the recipe's folder (expected a path inside ${join(path, '..')})`);
  });

  it('names an unreadable top-level recipe', () => {
    const path = join(scratch, 'absent.recipe');
    expect(errorOf(path).message).toBe(`${path}:0: cannot read recipe (ENOENT)`);
  });
});

describe('shipped recipes', () => {
  it('an image folder stands for the recipe inside it', () => {
    expect(parseRecipe('images/minimal')).toEqual(parseRecipe('images/minimal/recipe'));
  });

  it('minimal parses and kvm-host extends it', () => {
    const minimal = parseRecipe('images/minimal/recipe');
    const kvm = parseRecipe('images/kvm-host/recipe');
    expect(minimal.name).toBe('minimal');
    expect(kvm.name).toBe('kvm-host');
    expect(kvm.base).toEqual(minimal.base);
    for (const p of minimal.packages) expect(kvm.packages).toContain(p);
    expect(kvm.packages).toEqual(expect.arrayContaining(['qemu-system-x86', 'libvirt-daemon-system', 'openvswitch-switch', 'cfengine3', 'openssh-server']));
    expect(kvm.kernelArgs.startsWith(minimal.kernelArgs)).toBe(true);
    expect(kvm.text).toContain(minimal.text);
  });

  it('health: minimal waits for its network; kvm-host adds sshd, its services and CPU virtualization, with a longer timeout; every unit is enabled', () => {
    const minimal = parseRecipe('images/minimal/recipe');
    const kvm = parseRecipe('images/kvm-host/recipe');
    expect(minimal.health).toEqual({ timeoutSeconds: 60, checks: [{ kind: 'unit', value: 'systemd-networkd.service' }] });
    expect(kvm.health).toEqual({
      timeoutSeconds: 300,
      checks: [
        { kind: 'unit', value: 'systemd-networkd.service' },
        { kind: 'unit', value: 'ssh.service' },
        { kind: 'unit', value: 'libvirtd.service' },
        { kind: 'unit', value: 'openvswitch-switch.service' },
        { kind: 'command', value: "grep -qwE 'vmx|svm' /proc/cpuinfo" },
      ],
    });
    // A unit checked but never enabled would fail every boot (networkd is enabled by the builder for every image).
    for (const r of [minimal, kvm]) {
      const enabled = r.services.enable.map((u) => `${u.replace(/\.service$/, '')}.service`);
      for (const c of r.health.checks) if (c.kind === 'unit' && c.value !== 'systemd-networkd.service') expect(enabled).toContain(c.value);
    }
  });
});
