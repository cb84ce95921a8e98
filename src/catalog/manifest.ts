import { createHash } from 'node:crypto';
import { Type, type Static } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { kernelArgsProblem } from '../cmdb/kernel-args.js';
import { MAX_HEALTH_TIMEOUT_SECONDS } from '../health/spec.js';

/**
 * The manifest.json at the head of every image bundle. The builder writes it, the catalog
 * verifies every artifact against it, and the boot scripts read kernel/initrd/rootfs from it.
 */
export const ArtifactRole = Type.Union([
  Type.Literal('kernel'),
  Type.Literal('initrd'),
  Type.Literal('rootfs'),
  Type.Literal('extra'),
]);

export const ManifestArtifact = Type.Object({
  /** File name inside the bundle and under /images/<id>/: a single path segment. */
  name: Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$' }),
  role: ArtifactRole,
  size: Type.Integer({ minimum: 0 }),
  sha256: Type.String({ pattern: '^[0-9a-f]{64}$' }),
});

/** What the image's agent checks after boot (see src/health/spec.ts); absent in bundles made before health checks. */
export const ManifestHealth = Type.Object({
  timeoutSeconds: Type.Integer({ minimum: 1, maximum: MAX_HEALTH_TIMEOUT_SECONDS }),
  checks: Type.Array(
    Type.Object({ kind: Type.Union([Type.Literal('unit'), Type.Literal('command')]), value: Type.String({ minLength: 1, maxLength: 1024 }) }),
    { maxItems: 64 },
  ),
});

export const ImageManifest = Type.Object({
  schema: Type.Literal(1),
  name: Type.String({ pattern: '^[a-z0-9][a-z0-9._-]{0,63}$' }),
  version: Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._+~-]{0,63}$' }),
  os: Type.String({ minLength: 1, maxLength: 64 }),
  arch: Type.String({ pattern: '^[a-z0-9_]{1,16}$' }),
  createdAt: Type.String({ pattern: '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z$' }),
  /** Default kernel arguments; the machine's own extras are appended at boot. */
  kernelArgs: Type.String({ maxLength: 4096 }),
  artifacts: Type.Array(ManifestArtifact, { minItems: 1, maxItems: 64 }),
  /** The flattened recipe (includes resolved) the image was built from; empty for hand-made bundles. */
  recipe: Type.String({ maxLength: 1_000_000 }),
  packages: Type.Array(Type.Object({ name: Type.String(), version: Type.String() }), { maxItems: 100_000 }),
  health: Type.Optional(ManifestHealth),
  /**
   * Whether the kernel carries an Authenticode signature (the builder asks `sbverify --list`),
   * which firmware enforcing Secure Boot requires; absent: not known (hand-made or older bundles).
   */
  kernelSigned: Type.Optional(Type.Boolean()),
});

export type ImageManifest = Static<typeof ImageManifest>;
export type ManifestArtifact = Static<typeof ManifestArtifact>;
export type ArtifactRole = Static<typeof ArtifactRole>;

const checker = TypeCompiler.Compile(ImageManifest);

/** Validates a parsed manifest; returns the first problems as readable strings (empty when valid). */
export function manifestProblems(value: unknown): string[] {
  const problems = [...checker.Errors(value)].slice(0, 10).map((e) => `${e.path || '/'}: ${e.message}`);
  if (problems.length > 0) return problems;
  const m = value as ImageManifest;
  const seen = new Set<string>();
  for (const a of m.artifacts) {
    if (seen.has(a.name)) problems.push(`/artifacts: duplicate artifact name ${a.name}`);
    seen.add(a.name);
  }
  for (const role of ['kernel', 'initrd'] as const) {
    const n = m.artifacts.filter((a) => a.role === role).length;
    if (n !== 1) problems.push(`/artifacts: expected exactly one ${role}, found ${n}`);
  }
  if (m.artifacts.filter((a) => a.role === 'rootfs').length > 1) problems.push('/artifacts: more than one rootfs');
  const kernelArgs = kernelArgsProblem(m.kernelArgs);
  if (kernelArgs) problems.push(`/kernelArgs: ${kernelArgs}`);
  return problems;
}

/**
 * manifest.json as livery writes it (export, and so every mirror): one canonical form, so the
 * same manifest has the same bytes, and the same sha256, on every server that holds the image.
 */
export const manifestBytes = (m: ImageManifest): Buffer => Buffer.from(JSON.stringify(m, null, 2) + '\n');

/** The manifest's identity: the sha256 of its canonical bytes (what `sha256sum manifest.json` of an export prints). */
export const manifestSha256 = (m: ImageManifest): string => createHash('sha256').update(manifestBytes(m)).digest('hex');
