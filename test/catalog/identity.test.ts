/**
 * An image keeps its id, and its manifest's identity, wherever it is mirrored: two real livery
 * servers (separate data dirs, HTTP on loopback), bundles exported by one and published to the
 * other as `livery image pull` streams them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { manifestBytes, manifestSha256 } from '../../src/catalog/manifest.js';
import { fileEntry, makeBundle, manifestFor, packEntries, publishBundle, randomArtifacts, type RawEntry } from '../helpers/bundle.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

let a: TestServer;
let b: TestServer;
beforeAll(async () => {
  [a, b] = await Promise.all([startTestServer(), startTestServer()]);
});
afterAll(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
});

interface Answer {
  id: string;
  name: string;
  version: string;
  manifestSha256: string;
  artifacts: { name: string; sha256: string }[];
  alreadyPresent?: boolean;
  error?: string;
  field?: string;
}

async function publishNew(s: TestServer, name: string, version: string): Promise<Answer> {
  const res = await publishBundle(s, (await makeBundle(name, version)).tar);
  expect(res.status).toBe(201);
  return (await res.json()) as Answer;
}

async function exported(s: TestServer, id: string): Promise<Buffer> {
  const res = await s.api(`/v1/images/${id}/bundle`);
  expect(res.status).toBe(200);
  return Buffer.from(await res.arrayBuffer());
}

const send = async (s: TestServer, tar: Buffer) => {
  const res = await publishBundle(s, tar);
  return { status: res.status, body: (await res.json()) as Answer };
};

const identityEntry = (value: unknown): RawEntry => ({ header: { name: '.livery-image.json' }, content: Buffer.from(JSON.stringify(value)) });

describe('an image keeps its id wherever it is mirrored', () => {
  it('a copy gets the same id, name, version, manifest sha256 and artifacts; sending it again is an idempotent success', async () => {
    const original = await publishNew(a, 'mirror', '1.0');
    const bundle = await exported(a, original.id);

    const first = await send(b, bundle);
    expect(first.status).toBe(201);
    expect(first.body).toMatchObject({ id: original.id, name: 'mirror', version: '1.0', manifestSha256: original.manifestSha256, artifacts: original.artifacts });
    expect(first.body.alreadyPresent).toBeUndefined();

    const again = await send(b, bundle);
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ id: original.id, manifestSha256: original.manifestSha256, alreadyPresent: true });
    const listed = (await (await b.api('/v1/images?name=mirror')).json()) as { items: Answer[] };
    expect(listed.items.map((i) => i.id)).toEqual([original.id]);

    // And back: B's export of the copy is byte for byte A's export of the original.
    expect((await exported(b, original.id)).equals(bundle)).toBe(true);
  });

  it('a local publish mints a new id, even of the same name:version on another server', async () => {
    const onA = await publishNew(a, 'minted', '1.0');
    const onB = await publishNew(b, 'minted', '1.0');
    expect(onB.id).not.toBe(onA.id);

    // That name:version under another id is refused: a reference never resolves to another object.
    const pulled = await send(b, await exported(a, onA.id));
    expect(pulled.status).toBe(409);
    expect(pulled.body.field).toBe('version');
    expect(pulled.body.error).toContain(`image minted:1.0 is already in the catalog as minted:1.0 (id ${onB.id}`);
    expect(pulled.body.error).toContain(`the bundle's is minted:1.0 (id ${onA.id}`);
    expect(((await (await b.api(`/v1/images/${onA.id}`)).json()) as Answer).error).toMatch(/not found/);
  });

  it('the same id with another manifest is refused with a 409 naming both images', async () => {
    const original = await publishNew(a, 'ident', '1.0');
    expect((await send(b, await exported(a, original.id))).status).toBe(201);

    // A well-formed bundle that claims the id for a different image (its identity matches its own manifest).
    const artifacts = randomArtifacts();
    const other = manifestFor('ident', '2.0', artifacts);
    const forged = await packEntries([
      { header: { name: 'manifest.json' }, content: manifestBytes(other) },
      identityEntry({ id: original.id, manifestSha256: manifestSha256(other) }),
      ...artifacts.map(fileEntry),
    ]);
    const refused = await send(b, forged);
    expect(refused.status).toBe(409);
    expect(refused.body.field).toBe('id');
    expect(refused.body.error).toBe(
      `image id ${original.id} is already in the catalog as ident:1.0 (id ${original.id}, manifest sha256 ${original.manifestSha256.slice(0, 12)}…); ` +
        `the bundle's image is ident:2.0 (id ${original.id}, manifest sha256 ${manifestSha256(other).slice(0, 12)}…): one id names one image, so the bundle is refused`,
    );
    expect(((await (await b.api('/v1/images/ident:2.0')).json()) as Answer).error).toMatch(/not found/);
  });

  it('an identity that does not fit its manifest, or sits elsewhere, or is malformed, is a 400 naming the entry', async () => {
    const artifacts = randomArtifacts();
    const manifest = manifestFor('badid', '1.0', artifacts);
    const id = '0e4b6c1a-6f1e-4c36-9d0a-2b1f3c4d5e6f';
    const cases: [RawEntry[], RegExp][] = [
      [[identityEntry({ id, manifestSha256: 'a'.repeat(64) })], /^entry "\.livery-image\.json": manifestSha256 aaaaaaaaaaaa… does not match manifest\.json/],
      [[identityEntry({ id: 'not-a-uuid', manifestSha256: manifestSha256(manifest) })], /^entry "\.livery-image\.json": \/id: must be a lowercase UUID v4$/],
      [[identityEntry({ id, manifestSha256: manifestSha256(manifest), site: 'x' })], /^entry "\.livery-image\.json": unknown field site; allowed: id, manifestSha256$/],
      [[{ header: { name: '.livery-image.json' }, content: Buffer.from('{') }], /^entry "\.livery-image\.json": invalid JSON/],
    ];
    for (const [identity, message] of cases) {
      const { status, body } = await send(b, await packEntries([{ header: { name: 'manifest.json' }, content: manifestBytes(manifest) }, ...identity, ...artifacts.map(fileEntry)]));
      expect(status).toBe(400);
      expect(body.error).toMatch(message);
    }
    const late = await packEntries([
      { header: { name: 'manifest.json' }, content: manifestBytes(manifest) },
      fileEntry(artifacts[0]!),
      identityEntry({ id, manifestSha256: manifestSha256(manifest) }),
      ...artifacts.slice(1).map(fileEntry),
    ]);
    const { status, body } = await send(b, late);
    expect(status).toBe(400);
    expect(body.error).toBe('entry ".livery-image.json": must directly follow manifest.json, once');
    expect(((await (await b.api('/v1/images/badid:1.0')).json()) as Answer).error).toMatch(/not found/);
  });

  it('a bundle may leave out blobs the receiver has (omit): only the rest travels, each still verified', async () => {
    const shared = randomArtifacts();
    const v1 = await makeBundle('thin', '1.0', shared);
    const v2Artifacts = [shared[0]!, shared[1]!, randomArtifacts()[2]!];
    const v2 = await makeBundle('thin', '2.0', v2Artifacts);
    const [one, two] = [await publishBundle(a, v1.tar), await publishBundle(a, v2.tar)];
    const [id1, id2] = [((await one.json()) as Answer).id, ((await two.json()) as Answer).id];
    expect((await send(b, await exported(a, id1))).status).toBe(201);

    const omit = v2.manifest.artifacts.slice(0, 2).map((x) => x.sha256);
    const full = await exported(a, id2);
    const thinRes = await a.api(`/v1/images/${id2}/bundle?omit=${omit.join(',')}`);
    const thin = Buffer.from(await thinRes.arrayBuffer());
    expect(Number(thinRes.headers.get('content-length'))).toBe(thin.length);
    expect(full.length - thin.length).toBeGreaterThanOrEqual(shared[0]!.content.length + shared[1]!.content.length);
    const pulled = await send(b, thin);
    expect(pulled.status).toBe(201);
    expect(pulled.body).toMatchObject({ id: id2, artifacts: v2.manifest.artifacts });
    for (const art of v2Artifacts) {
      const served = Buffer.from(await (await fetch(`${b.url}/images/${id2}/${art.name}`)).arrayBuffer());
      expect(served.equals(art.content)).toBe(true);
    }

    // Left out but not here: refused, naming the artifact; nothing is kept.
    const v3 = await makeBundle('thin', '3.0');
    const id3 = ((await (await publishBundle(a, v3.tar)).json()) as Answer).id;
    const missing = await send(b, Buffer.from(await (await a.api(`/v1/images/${id3}/bundle?omit=${v3.manifest.artifacts[2]!.sha256}`)).arrayBuffer()));
    expect(missing.status).toBe(400);
    expect(missing.body.error).toBe("entry rootfs.squashfs: listed in manifest.json but neither in the bundle nor in this server's blob store");
    expect((await b.api(`/v1/images/${id3}`)).status).toBe(404);

    const bad = await a.api(`/v1/images/${id3}/bundle?omit=xyz`);
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as Answer).error).toMatch(/omit/);
  });

  it('a pull cut off mid-stream leaves no image; the next one completes under the same id', async () => {
    const original = await publishNew(a, 'cut', '1.0');
    const bundle = await exported(a, original.id);
    // Half the bundle, then the stream fails, as when the source or the network goes away.
    const half = bundle.subarray(0, Math.floor(bundle.length / 2));
    const cut = await b
      .api('/v1/images', {
        method: 'POST',
        headers: { 'content-type': 'application/x-tar' },
        body: new ReadableStream<Uint8Array>({
          start(controller) {
            controller.enqueue(new Uint8Array(half));
            setTimeout(() => controller.error(new Error('source went away')), 200);
          },
        }),
        duplex: 'half',
      } as RequestInit)
      .catch((err: Error) => err);
    if (!(cut instanceof Error)) expect(cut.status).toBeGreaterThanOrEqual(400);
    expect((await b.api(`/v1/images/${original.id}`)).status).toBe(404);
    expect((await b.api('/v1/images/cut:1.0')).status).toBe(404);

    const rerun = await send(b, bundle);
    expect(rerun.status).toBe(201);
    expect(rerun.body).toMatchObject({ id: original.id, manifestSha256: original.manifestSha256 });
  });
});
