import { execFile, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, livery } from '../helpers/cli.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

/**
 * `livery vm boot` refuses bad input and missing privileges before it touches anything. Full
 * scripted runs (a real VM) are in the end-to-end suite, test/e2e.
 */
describe('livery vm boot: arguments and privileges', () => {
  it('needs the image or MAC argument', () => {
    const r = livery(['vm', 'boot']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("missing required argument 'image-or-mac'");
  });

  it.each([
    [['--mac', 'not-a-mac'], '--mac: not a MAC address: not-a-mac'],
    [['--memory', '0'], '--memory: expected a whole number from 1 to 65536, got "0"'],
    [['--cpus', 'two'], '--cpus: expected a whole number from 1 to 64, got "two"'],
    [['--accel', 'hvf'], '--accel: expected auto, kvm or tcg, got "hvf"'],
    [['--timeout', '-5'], '--timeout: expected a whole number from 1 to 86400, got "-5"'],
  ])('rejects %j', (flags, message) => {
    const r = livery(['vm', 'boot', ...flags, 'image.tar']);
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toBe(`livery: ${message}`);
  });

  it('says clearly that it needs root', () => {
    // As root, the CLI runs in a fresh user namespace where it is uid 65534 (nobody): not root,
    // yet still able to read a checkout that only root can (a clone under /root, mode 0700),
    // which switching to uid 65534 outright could not.
    const command = process.getuid?.() === 0 ? ['unshare', '--user', process.execPath] : [process.execPath];
    const r = spawnSync(command[0]!, [...command.slice(1), CLI, 'vm', 'boot', 'image.tar'], { encoding: 'utf8', timeout: 30_000 });
    expect(r.status, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/^livery: vm boot needs root: it creates a network namespace, a bridge and a tap device/);
  });
});

describe.skipIf(process.getuid?.() !== 0)('livery vm boot: what to boot (as root)', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(() => server?.stop());

  // Asynchronous: the test server answers from this process, which a spawnSync would block.
  const boot = async (ref: string) => {
    const args = [CLI, 'vm', 'boot', '--url', server.url, '--token', server.token, ref];
    return promisify(execFile)(process.execPath, args, { timeout: 30_000 }).then(
      (r) => ({ code: 0, stderr: r.stderr }),
      (err: { code: number; stderr: string }) => ({ code: err.code, stderr: err.stderr }),
    );
  };

  it('a path that is not a file', async () => {
    expect((await boot('./missing/image.tar')).stderr.trim()).toBe('livery: ./missing/image.tar: no such bundle file');
  });

  it('an image id the server does not have', async () => {
    const r = await boot('0b7e5a4e-0000-4000-8000-000000000000');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^livery: 404 /);
  });

  it('a MAC the server would boot nothing on', async () => {
    const r = await boot('52:54:00:ab:cd:ef');
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toMatch(/^livery: 52:54:00:ab:cd:ef boots no image on http:\/\/127\.0\.0\.1:\d+: unknown MAC and no subnet matches: ignored$/);
  });
});
