import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { ImageManifest } from '../../src/catalog/manifest.js';
import { manifestProblems } from '../../src/catalog/manifest.js';
import { describeArtifact, writeBundle } from '../../src/builder/bundle.js';
import { BuildError, StepRunner, type StepEvent } from '../../src/builder/steps.js';

const scratch = mkdtempSync(join(tmpdir(), 'livery-steps-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 }));

describe('build steps and log', () => {
  it('times steps, logs every command, and fails with the step name and the last 30 log lines', async () => {
    const log = join(scratch, 'build.log');
    writeFileSync(log, '');
    const events: StepEvent[] = [];
    const runner = new StepRunner(log, (e) => events.push(e));
    const out = await runner.step('first', () => runner.run('sh', ['-c', 'echo hello; echo to-stderr >&2'], { capture: true }));
    expect(out).toBe('hello\n');
    const err = await runner.step('second', () => runner.run('sh', ['-c', 'for i in $(seq 1 50); do echo line $i; done; exit 2'])).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BuildError);
    const b = err as BuildError;
    expect(b.step).toBe('second');
    expect(b.logTail).toHaveLength(30);
    expect(b.logTail.at(-1)).toBe('!!! second failed after ' + events.at(-1)!.elapsedMs + ' ms: sh exited with status 2');
    expect(b.logTail).toContain('line 50');
    expect(b.logTail).not.toContain('hello');
    expect(b.message.split('\n')[0]).toBe("build step 'second' failed: sh exited with status 2");
    expect(events.map((e) => `${e.step}:${e.state}`)).toEqual(['first:start', 'first:done', 'second:start', 'second:failed']);
    expect(Object.keys(runner.timings)).toEqual(['first']);
    const text = readFileSync(log, 'utf8');
    for (const expected of ['==> first', "$ sh -c 'echo hello; echo to-stderr >&2'", 'to-stderr', 'line 1\n', '!!! second failed']) expect(text).toContain(expected);
  });

  it('stops before the next step once aborted', async () => {
    const controller = new AbortController();
    const runner = new StepRunner(join(scratch, 'abort.log'), undefined, controller.signal);
    const pending = runner.step('long', () => runner.run('sleep', ['30']));
    controller.abort();
    await expect(pending).rejects.toThrow(/build step 'long' failed/);
    await expect(runner.step('next', async () => 1)).rejects.toThrow(/abort/i);
  });
});

describe('bundle writer', () => {
  it('streams manifest.json first, then the artifacts, readable by GNU tar with fixed owner, mode and mtime', async () => {
    const files = { vmlinuz: 'kernel bytes', 'initrd.img': 'initrd bytes', 'rootfs.squashfs': 'x'.repeat(70_000) };
    for (const [name, content] of Object.entries(files)) writeFileSync(join(scratch, name), content);
    const manifest: ImageManifest = {
      schema: 1,
      name: 't',
      version: '1',
      os: 'debian-bookworm',
      arch: 'amd64',
      createdAt: '2026-11-23T00:00:00.000Z',
      kernelArgs: '',
      artifacts: [
        await describeArtifact(join(scratch, 'vmlinuz'), 'kernel'),
        await describeArtifact(join(scratch, 'initrd.img'), 'initrd'),
        await describeArtifact(join(scratch, 'rootfs.squashfs'), 'rootfs'),
      ],
      recipe: '',
      packages: [],
    };
    expect(manifestProblems(manifest)).toEqual([]);
    expect(manifest.artifacts[2]!.size).toBe(70_000);
    const bundle = join(scratch, 'b.tar');
    await writeBundle(bundle, manifest, new Map(Object.keys(files).map((n) => [n, join(scratch, n)])), 1735689600);
    const listing = execFileSync('tar', ['--numeric-owner', '--full-time', '-tvf', bundle], { encoding: 'utf8' }).trim().split('\n');
    expect(listing.map((l) => l.split(/\s+/).at(-1))).toEqual(['manifest.json', 'vmlinuz', 'initrd.img', 'rootfs.squashfs']);
    for (const l of listing) expect(l).toMatch(/^-rw-r--r-- 0\/0 +\d+ 2025-01-01 00:00:00 /);
    expect(JSON.parse(execFileSync('tar', ['-xOf', bundle, 'manifest.json'], { encoding: 'utf8' }))).toEqual(manifest);
    expect(execFileSync('tar', ['-xOf', bundle, 'rootfs.squashfs'], { encoding: 'utf8' })).toBe(files['rootfs.squashfs']);
  });

  it('refuses a manifest naming an artifact it has no file for', async () => {
    const manifest = { artifacts: [{ name: 'vmlinuz', role: 'kernel', size: 1, sha256: '0'.repeat(64) }] } as unknown as ImageManifest;
    const bad = join(scratch, 'bad.tar');
    await expect(writeBundle(bad, manifest, new Map(), 0)).rejects.toThrow('no file for artifact vmlinuz');
    // It settles only once its file is closed: a caller's cleanup is not undone by a late open.
    rmSync(bad, { force: true });
    await new Promise((r) => setTimeout(r, 100));
    expect(existsSync(bad)).toBe(false);
  });
});
