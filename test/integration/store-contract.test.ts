import { randomBytes, randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { z } from 'zod';
import { DataError, DataErrorCode } from '../../activities/data/errors';
import { fileUri, InvalidUriError, joinUri, parseObjectUri } from '../../data-schemas/uri';
import {
  addS3Defaults,
  createObjectStore,
  FileStore,
  getJson,
  InvalidObjectError,
  ObjectNotFoundError,
  putJson,
  S3Store,
  sha256Hex,
  StoreError,
  StoreErrorCode,
  TEMP_FILE_PREFIX,
  toObjectUri,
  type ObjectInfo,
  type ObjectStore,
  type TransferProgress,
} from '../../activities/store';

const MiB = 1024 * 1024;

interface StoreFixture {
  store: ObjectStore;
  /** A fresh prefix no other test writes under. */
  rootUri: string;
  cleanup?: () => Promise<void> | void;
}

async function collect(iterable: AsyncIterable<ObjectInfo>): Promise<ObjectInfo[]> {
  const out: ObjectInfo[] = [];
  for await (const info of iterable) out.push(info);
  return out;
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks);
}

/** A stream that hands out `bytes` in 1 MiB chunks, like a file being read. */
function chunked(bytes: Buffer): Readable {
  const chunks: Buffer[] = [];
  for (let at = 0; at < bytes.length; at += MiB) chunks.push(bytes.subarray(at, at + MiB));
  return Readable.from(chunks);
}

/**
 * The behaviour every `ObjectStore` owes its callers, run unchanged against each implementation.
 */
function objectStoreContract(name: string, makeFixture: () => Promise<StoreFixture>): void {
  describe(`ObjectStore contract: ${name}`, () => {
    let fx: StoreFixture;
    const at = (...parts: string[]): string => joinUri(fx.rootUri, ...parts);

    beforeAll(async () => {
      fx = await makeFixture();
    });
    afterAll(async () => {
      await fx?.cleanup?.();
    });

    it('round-trips binary and text bodies through put/get', async () => {
      const binary = Buffer.from(Array.from({ length: 512 }, (_, i) => i % 256));
      const info = await fx.store.put(at('rt', 'all-bytes.bin'), binary);
      expect(info).toMatchObject({ uri: at('rt', 'all-bytes.bin'), bytes: 512 });
      expect(Buffer.compare(await fx.store.get(at('rt', 'all-bytes.bin')), binary)).toBe(0);

      const text = 'pick up the red block → place it in the bowl ✓\n';
      await fx.store.put(at('rt', 'note.txt'), text, { contentType: 'text/plain' });
      expect((await fx.store.get(at('rt', 'note.txt'))).toString('utf8')).toBe(text);

      // A Uint8Array view into a larger buffer stores only its own bytes.
      const backing = new Uint8Array([9, 9, 1, 2, 3, 9]);
      await fx.store.put(at('rt', 'view.bin'), backing.subarray(2, 5));
      expect([...(await fx.store.get(at('rt', 'view.bin')))]).toEqual([1, 2, 3]);

      await fx.store.put(at('rt', 'empty.bin'), new Uint8Array(0));
      expect((await fx.store.get(at('rt', 'empty.bin'))).length).toBe(0);
    });

    it('put replaces an existing object', async () => {
      await fx.store.put(at('replace', 'x.json'), '{"v":1}');
      await fx.store.put(at('replace', 'x.json'), '{"v":2,"more":true}');
      expect((await fx.store.get(at('replace', 'x.json'))).toString()).toBe('{"v":2,"more":true}');
    });

    it('head is undefined for a missing object and reports size and a version tag for a present one', async () => {
      expect(await fx.store.head(at('head', 'missing.bin'))).toBeUndefined();
      expect(await fx.store.head(at('no-such-folder', 'deeper', 'missing.bin'))).toBeUndefined();
      await fx.store.put(at('head', 'frame.png'), randomBytes(4321));
      const info = await fx.store.head(at('head', 'frame.png'));
      expect(info).toMatchObject({ uri: at('head', 'frame.png'), bytes: 4321 });
      expect(info?.etag).toBeTruthy();
      // A folder-like prefix is not an object.
      expect(await fx.store.head(at('head'))).toBeUndefined();
    });

    it('lists by prefix in URI order, including prefixes that end mid-name and nested keys', async () => {
      const keys = ['frames/000.bin', 'frames/001.bin', 'frames/010/depth.bin', 'frames-extra.bin', 'fr.json', 'other/z.bin', 'f', 'g/frames/1.bin'];
      for (const key of keys) await fx.store.put(at('ls', key), key);
      const uris = async (prefix: string): Promise<string[]> => (await collect(fx.store.list(prefix))).map((i) => i.uri);
      const expected = (pred: (key: string) => boolean): string[] =>
        keys
          .filter(pred)
          .map((k) => at('ls', k))
          .sort();

      expect(await uris(`${at('ls')}/`)).toEqual(expected(() => true));
      expect(await uris(at('ls', 'fr'))).toEqual(expected((k) => k.startsWith('fr')));
      expect(await uris(`${at('ls', 'frames')}/`)).toEqual(expected((k) => k.startsWith('frames/')));
      expect(await uris(at('ls', 'frames/0'))).toEqual(expected((k) => k.startsWith('frames/0')));
      expect(await uris(at('ls', 'frames/01'))).toEqual([at('ls', 'frames/010/depth.bin')]);
      expect(await uris(at('ls', 'fr.json'))).toEqual([at('ls', 'fr.json')]);
      expect(await uris(at('ls', 'nothing-here'))).toEqual([]);
      expect(await uris(`${at('no-such-folder')}/`)).toEqual([]);

      const listed = await collect(fx.store.list(`${at('ls')}/`));
      for (const info of listed) expect(info.bytes).toBe(Buffer.byteLength(info.uri.slice(at('ls').length + 1)));
      // Every listed URI reads back.
      expect((await fx.store.get(listed[0]!.uri)).length).toBe(listed[0]!.bytes);
    });

    it('never lists an object whose upload has not finished', async () => {
      await fx.store.put(at('inflight', 'done.bin'), 'done');
      const source = new PassThrough();
      const upload = fx.store.putStream(at('inflight', 'pending.bin'), source);
      source.write(randomBytes(64 * 1024));
      await new Promise((r) => setTimeout(r, 200));
      expect((await collect(fx.store.list(`${at('inflight')}/`))).map((i) => i.uri)).toEqual([at('inflight', 'done.bin')]);
      source.end(randomBytes(1024));
      await upload;
      expect((await collect(fx.store.list(`${at('inflight')}/`))).map((i) => i.uri)).toEqual([at('inflight', 'done.bin'), at('inflight', 'pending.bin')]);
    });

    it('delete removes an object; deleting a missing one is fine', async () => {
      await fx.store.put(at('del', 'a.bin'), 'a');
      await fx.store.put(at('del', 'b.bin'), 'b');
      await fx.store.delete(at('del', 'a.bin'));
      expect(await fx.store.head(at('del', 'a.bin'))).toBeUndefined();
      await expect(fx.store.get(at('del', 'a.bin'))).rejects.toBeInstanceOf(ObjectNotFoundError);
      expect((await collect(fx.store.list(`${at('del')}/`))).map((i) => i.uri)).toEqual([at('del', 'b.bin')]);
      await fx.store.delete(at('del', 'a.bin'));
      await fx.store.delete(at('never', 'existed', 'x.bin'));
    });

    it('round-trips streams through putStream/getStream', async () => {
      const body = randomBytes(3 * MiB + 17);
      const progress: TransferProgress[] = [];
      const result = await fx.store.putStream(at('stream', 'shard.tar'), chunked(body), { onProgress: (p) => progress.push(p) });
      expect(result.created).toBe(true);
      expect(result.info.bytes).toBe(body.length);
      expect(progress.at(-1)?.loadedBytes).toBe(body.length);
      const back = await readAll(await fx.store.getStream(at('stream', 'shard.tar')));
      expect(sha256Hex(back)).toBe(sha256Hex(body));
    });

    it("putStream fails with the caller's stream's own error (not a retryable store error) and stores nothing", async () => {
      // Small and multipart-sized bodies, plain and create-if-absent: a producer that finds bad
      // input midway (e.g. a shard's frame failing its checksum) must not look like a store fault.
      for (const [ifAbsent, size] of [
        [false, MiB + 5],
        [true, MiB + 5],
        [true, 12 * MiB],
      ] as const) {
        const uri = at('producer-fails', `shard-${ifAbsent}-${size}.tar`);
        const bad = new DataError(DataErrorCode.DatasetInvalid, 'trajectory t7: frame 3 does not match its sha256');
        const bytes = randomBytes(size);
        function* produce(): Generator<Buffer> {
          for (let offset = 0; offset < bytes.length; offset += MiB) yield bytes.subarray(offset, offset + MiB);
          throw bad;
        }
        const err = await fx.store.putStream(uri, Readable.from(produce()), { ifAbsent }).catch((e: unknown) => e);
        expect(err).toBe(bad);
        expect(await fx.store.head(uri)).toBeUndefined();
      }
      expect(await collect(fx.store.list(`${at('producer-fails')}/`))).toEqual([]);
    });

    it('getRange reads bytes [start, end) of an object, clamped to its end', async () => {
      const uri = at('range', 'blob.bin');
      const bytes = randomBytes(3 * MiB + 17);
      await fx.store.put(uri, bytes);
      expect((await fx.store.getRange(uri, 0, 10)).equals(bytes.subarray(0, 10))).toBe(true);
      expect((await fx.store.getRange(uri, MiB - 5, 2 * MiB + 5)).equals(bytes.subarray(MiB - 5, 2 * MiB + 5))).toBe(true);
      // The tail, as a parquet reader asks for its footer: past the end is clamped, not an error.
      expect((await fx.store.getRange(uri, bytes.length - 8, bytes.length + 100)).equals(bytes.subarray(bytes.length - 8))).toBe(true);
      expect(await fx.store.getRange(uri, 5, 5)).toHaveLength(0);
      await expect(fx.store.getRange(at('range', 'missing.bin'), 0, 10)).rejects.toBeInstanceOf(ObjectNotFoundError);
    });

    it('throws ObjectNotFoundError naming the URI for get and getStream of a missing object', async () => {
      const missing = at('missing', 'nothing.bin');
      const err = await fx.store.get(missing).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ObjectNotFoundError);
      expect(err).toMatchObject({ code: StoreErrorCode.NotFound, uri: missing, retryable: false });
      expect((err as Error).message).toContain(missing);
      await expect(fx.store.getStream(missing)).rejects.toBeInstanceOf(ObjectNotFoundError);
    });

    it('putIfAbsent creates once and keeps the original bytes', async () => {
      const uri = at('once', 'manifest.json');
      const first = await fx.store.putIfAbsent(uri, '{"winner":"first"}');
      expect(first.created).toBe(true);
      expect(first.info.bytes).toBe(18);
      const second = await fx.store.putIfAbsent(uri, '{"winner":"second, longer"}');
      expect(second.created).toBe(false);
      expect(second.info.bytes).toBe(18);
      expect((await fx.store.get(uri)).toString()).toBe('{"winner":"first"}');
    });

    it('many concurrent putIfAbsent of different bodies: exactly one is created and its bytes are stored', async () => {
      // Several rounds: a server that checks the condition outside a lock lets two writers win
      // only now and then.
      for (let round = 0; round < 5; round++) {
        const uri = at('race', `result-${round}.json`);
        const bodies = Array.from({ length: 24 }, (_, i) => `{"writer":${i},"pad":"${'x'.repeat(i * 97)}"}`);
        const results = await Promise.all(bodies.map((b) => fx.store.putIfAbsent(uri, b)));
        const winners = results.flatMap((r, i) => (r.created ? [i] : []));
        expect(winners).toHaveLength(1);
        const winner = bodies[winners[0]!]!;
        expect((await fx.store.get(uri)).toString()).toBe(winner);
        for (const r of results) expect(r.info.bytes).toBe(winner.length);
      }
    });

    it('puts a multipart-sized object with progress reaching the total and the bytes intact', async () => {
      const body = randomBytes(20 * MiB + 123);
      const progress: TransferProgress[] = [];
      const info = await fx.store.put(at('big', 'checkpoint.safetensors'), body, { onProgress: (p) => progress.push(p) });
      expect(info.bytes).toBe(body.length);
      expect(progress.length).toBeGreaterThan(0);
      expect(progress.at(-1)).toEqual({ loadedBytes: body.length, totalBytes: body.length });
      for (let i = 1; i < progress.length; i++) expect(progress[i]!.loadedBytes).toBeGreaterThanOrEqual(progress[i - 1]!.loadedBytes);
      expect((await fx.store.head(at('big', 'checkpoint.safetensors')))?.bytes).toBe(body.length);
      expect(sha256Hex(await fx.store.get(at('big', 'checkpoint.safetensors')))).toBe(sha256Hex(body));
    });

    it('putIfAbsent of a multipart-sized body keeps the first', async () => {
      const uri = at('big-once', 'weights.bin');
      const first = randomBytes(18 * MiB);
      expect((await fx.store.putIfAbsent(uri, first)).created).toBe(true);
      expect((await fx.store.putIfAbsent(uri, randomBytes(18 * MiB))).created).toBe(false);
      expect(sha256Hex(await fx.store.get(uri))).toBe(sha256Hex(first));
    });

    it('putStream with ifAbsent honours create-if-absent for multipart-sized streams, also when racing', async () => {
      const uri = at('stream-once', 'shard-000.tar');
      const bodies = [randomBytes(20 * MiB), randomBytes(20 * MiB)];
      const results = await Promise.all(bodies.map((b) => fx.store.putStream(uri, chunked(b), { ifAbsent: true })));
      const winners = results.flatMap((r, i) => (r.created ? [i] : []));
      expect(winners).toHaveLength(1);
      const winner = bodies[winners[0]!]!;
      expect(sha256Hex(await fx.store.get(uri))).toBe(sha256Hex(winner));

      const late = await fx.store.putStream(uri, chunked(randomBytes(20 * MiB)), { ifAbsent: true });
      expect(late).toMatchObject({ created: false, info: { bytes: winner.length } });
      expect(sha256Hex(await readAll(await fx.store.getStream(uri)))).toBe(sha256Hex(winner));
    });

    it('putJson/getJson round-trip and name the URI and fields when the schema does not match', async () => {
      const Schema = z.strictObject({ name: z.string(), steps: z.int().positive() });
      const uri = at('json', 'episode.json');
      await putJson(fx.store, uri, { name: 'pick', steps: 3 });
      expect(await getJson(fx.store, uri, Schema)).toEqual({ name: 'pick', steps: 3 });
      await putJson(fx.store, uri, { name: 7, steps: 0 });
      const err = await getJson(fx.store, uri, Schema).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(InvalidObjectError);
      expect((err as Error).message).toContain(uri);
      expect((err as Error).message).toMatch(/name: .*steps: /);
      expect((err as InvalidObjectError).retryable).toBe(false);
      await fx.store.put(uri, '{not json');
      await expect(getJson(fx.store, uri, Schema)).rejects.toThrow(/not valid JSON/);
    });
  });
}

// --- the filesystem --------------------------------------------------------------------------

objectStoreContract('FileStore', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vla-store-contract-'));
  return Promise.resolve({ store: new FileStore(), rootUri: fileUri(dir), cleanup: () => rmSync(dir, { recursive: true, force: true }) });
});

// The same contract through the store workers use, confined to the fixture's root: the root check
// must not change what a store does inside its roots.
objectStoreContract('createObjectStore confined to its root (file)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vla-store-confined-'));
  const rootUri = fileUri(dir);
  return Promise.resolve({ store: createObjectStore({ roots: { readWrite: [rootUri], readOnly: [] } }), rootUri, cleanup: () => rmSync(dir, { recursive: true, force: true }) });
});

describe('FileStore specifics', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'vla-filestore-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('skips stray temp files in listings and leaves none behind', async () => {
    const store = new FileStore();
    const root = fileUri(dir);
    await store.put(`${root}/tmp/a.bin`, 'a');
    await store.putIfAbsent(`${root}/tmp/b.bin`, 'b');
    await store.putIfAbsent(`${root}/tmp/b.bin`, 'b2');
    expect(readdirSync(join(dir, 'tmp')).sort()).toEqual(['a.bin', 'b.bin']);
    writeFileSync(join(dir, 'tmp', `${TEMP_FILE_PREFIX}crashed-writer`), 'half');
    expect((await collect(store.list(`${root}/tmp/`))).map((i) => i.uri)).toEqual([`${root}/tmp/a.bin`, `${root}/tmp/b.bin`]);
  });

  it('percent-encodes listed names so they round-trip through parseObjectUri', async () => {
    const store = new FileStore();
    await store.put(fileUri(join(dir, 'enc', 'a b%c.txt')), 'x');
    const [info] = await collect(store.list(`${fileUri(join(dir, 'enc'))}/`));
    expect(info?.uri).toBe(fileUri(join(dir, 'enc', 'a b%c.txt')));
    expect(parseObjectUri(info!.uri)).toEqual({ scheme: 'file', path: join(dir, 'enc', 'a b%c.txt') });
  });

  it('a URI naming a directory, or below a file, is a non-retryable STORE_PATH_CONFLICT naming the URI, for every kind of put', async () => {
    const store = new FileStore();
    mkdirSync(join(dir, 'conflict', 'a-dir'), { recursive: true });
    writeFileSync(join(dir, 'conflict', 'a-file'), 'x');
    const onDir = fileUri(join(dir, 'conflict', 'a-dir'));
    const belowFile = fileUri(join(dir, 'conflict', 'a-file', 'x.bin'));
    for (const uri of [onDir, belowFile]) {
      for (const put of [() => store.put(uri, 'x'), () => store.putIfAbsent(uri, 'x'), () => store.putStream(uri, Readable.from([Buffer.from('x')])), () => store.putStream(uri, Readable.from([Buffer.from('x')]), { ifAbsent: true })]) {
        const err = await put().catch((e: unknown) => e);
        expect(err, uri).toMatchObject({ code: StoreErrorCode.PathConflict, retryable: false });
        expect((err as Error).message).toContain(uri);
      }
    }
    expect(readdirSync(join(dir, 'conflict')).sort()).toEqual(['a-dir', 'a-file']);
  });

  it('delete with pruneEmptyDirsUpTo removes the directories it leaves empty, up to and including that root, and no further', async () => {
    const store = new FileStore();
    const root = fileUri(join(dir, 'prune', 'root'));
    await store.put(`${root}/frames/t1/cam/000.jpg`, 'a');
    await store.put(`${root}/frames/t1/cam/001.jpg`, 'b');
    await store.put(`${root}/trajectories/t1.json`, 'c');
    await store.delete(`${root}/frames/t1/cam/000.jpg`, { pruneEmptyDirsUpTo: root });
    expect(readdirSync(join(dir, 'prune', 'root', 'frames', 't1', 'cam'))).toEqual(['001.jpg']);
    await store.delete(`${root}/frames/t1/cam/001.jpg`, { pruneEmptyDirsUpTo: root });
    expect(readdirSync(join(dir, 'prune', 'root'))).toEqual(['trajectories']);
    await store.delete(`${root}/trajectories/t1.json`, { pruneEmptyDirsUpTo: root });
    expect(readdirSync(join(dir, 'prune'))).toEqual([]);
    // Without the option a delete leaves directories alone (what other writers may be using).
    await store.put(`${root}/x/y.bin`, 'y');
    await store.delete(`${root}/x/y.bin`);
    expect(readdirSync(join(dir, 'prune', 'root'))).toEqual(['x']);
  });

  it('reports an unwritable directory as STORE_ACCESS_DENIED', async () => {
    if (process.getuid?.() === 0) return; // root ignores permission bits
    const store = new FileStore();
    mkdirSync(join(dir, 'locked'), { mode: 0o500 });
    await expect(store.put(fileUri(join(dir, 'locked', 'x.bin')), 'x')).rejects.toMatchObject({ code: StoreErrorCode.AccessDenied });
  });
});

// --- S3 (versitygw on loopback) ---------------------------------------------------------------

const s3 = inject('s3');
const s3Credentials = { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey };

objectStoreContract('S3Store (versitygw)', () => {
  // No forcePathStyle here: the loopback endpoint must switch it on by itself.
  const store = new S3Store({ endpoint: s3.endpoint, region: s3.region, credentials: s3Credentials });
  return Promise.resolve({ store, rootUri: `s3://${s3.bucket}/contract-${randomUUID()}`, cleanup: () => store.destroy() });
});

objectStoreContract('createObjectStore confined to its root (S3)', () => {
  const rootUri = `s3://${s3.bucket}/confined-${randomUUID()}`;
  return Promise.resolve({ store: createObjectStore({ roots: { readWrite: [rootUri], readOnly: [] }, s3: { endpoint: s3.endpoint, region: s3.region, credentials: s3Credentials } }), rootUri });
});

describe('S3Store specifics', () => {
  const uri = (key: string): string => `s3://${s3.bucket}/s3-specific-${randomUUID()}/${key}`;

  it('maps a wrong secret to STORE_ACCESS_DENIED naming the endpoint, never the secret', async () => {
    const secret = 'wrong-secret-DO-NOT-LEAK-1234567890';
    const store = new S3Store({ endpoint: s3.endpoint, credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: secret } });
    for (const op of [() => store.get(uri('x')), () => store.put(uri('x'), 'x'), () => store.putIfAbsent(uri('x'), 'x')]) {
      const err = await op().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(StoreError);
      expect(err).toMatchObject({ code: StoreErrorCode.AccessDenied, retryable: false });
      const message = (err as Error).message;
      expect(message).toContain(s3.endpoint);
      expect(message).toContain('AWS_SECRET_ACCESS_KEY');
      expect(message).not.toContain(secret);
      expect((err as Error).stack ?? '').not.toContain(secret);
    }
    store.destroy();
  });

  it('maps an unknown access key id to STORE_ACCESS_DENIED, not to a missing object', async () => {
    const store = new S3Store({ endpoint: s3.endpoint, credentials: { accessKeyId: 'nobody-here', secretAccessKey: 'whatever-secret' } });
    await expect(store.get(uri('x'))).rejects.toMatchObject({ code: StoreErrorCode.AccessDenied });
    await expect(store.put(uri('x'), 'x')).rejects.toMatchObject({ code: StoreErrorCode.AccessDenied });
    store.destroy();
  });

  it('maps a missing bucket to STORE_NO_SUCH_BUCKET', async () => {
    const store = new S3Store({ endpoint: s3.endpoint, credentials: s3Credentials });
    for (const op of [() => store.get('s3://no-such-bucket-here/k'), () => store.put('s3://no-such-bucket-here/k', 'x'), () => collect(store.list('s3://no-such-bucket-here/'))]) {
      const err = await op().catch((e: unknown) => e);
      expect(err).toMatchObject({ code: StoreErrorCode.NoSuchBucket, retryable: false });
      expect((err as Error).message).toContain('no-such-bucket-here');
    }
    store.destroy();
  });

  it('maps a closed port to a retryable STORE_UNAVAILABLE', async () => {
    const store = new S3Store({ endpoint: 'http://127.0.0.1:1', credentials: s3Credentials, maxAttempts: 1 });
    const err = await store.get(uri('x')).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: StoreErrorCode.Unavailable, retryable: true });
    // A streamed put the store fails stays the store's error, though the caller's stream is then destroyed too.
    for (const ifAbsent of [false, true]) {
      await expect(store.putStream(uri('y'), chunked(randomBytes(2 * MiB)), { ifAbsent })).rejects.toMatchObject({ code: StoreErrorCode.Unavailable, retryable: true });
    }
    store.destroy();
  });

  it('uses path-style addressing for loopback endpoints and virtual-host style elsewhere', () => {
    const style = (endpoint: string): boolean => addS3Defaults({ endpoint }, {}).forcePathStyle;
    expect(style('http://127.0.0.1:9000')).toBe(true);
    expect(style('http://127.8.9.10:9000')).toBe(true);
    expect(style('http://localhost:9000')).toBe(true);
    expect(style('http://[::1]:9000')).toBe(true);
    expect(style('https://s3.eu-west-1.amazonaws.com')).toBe(false);
    expect(style('https://127.0.0.1.example.com')).toBe(false);
    expect(addS3Defaults({ endpoint: 'http://127.0.0.1:9000', forcePathStyle: false }, {}).forcePathStyle).toBe(false);
    expect(new S3Store({ endpoint: s3.endpoint, credentials: s3Credentials }).options.forcePathStyle).toBe(true);
  });

  it('fills defaults from the standard AWS variables and rejects bad options early', () => {
    expect(addS3Defaults({}, {})).toMatchObject({ endpoint: undefined, region: 'us-east-1', forcePathStyle: false, multipartThresholdBytes: 16 * MiB, partSizeBytes: 8 * MiB, queueSize: 4 });
    expect(addS3Defaults({}, { AWS_ENDPOINT_URL: 'http://127.0.0.1:1', AWS_ENDPOINT_URL_S3: 'http://127.0.0.1:2', AWS_DEFAULT_REGION: 'eu-west-3' })).toMatchObject({
      endpoint: 'http://127.0.0.1:2',
      region: 'eu-west-3',
      forcePathStyle: true,
    });
    expect(addS3Defaults({}, { AWS_ENDPOINT_URL: 'http://127.0.0.1:1', AWS_REGION: 'ap-south-1', AWS_DEFAULT_REGION: 'eu-west-3' })).toMatchObject({ endpoint: 'http://127.0.0.1:1', region: 'ap-south-1' });
    expect(addS3Defaults({ endpoint: 'http://explicit:1' }, { AWS_ENDPOINT_URL_S3: 'http://127.0.0.1:2' }).endpoint).toBe('http://explicit:1');
    expect(() => addS3Defaults({ partSizeBytes: MiB }, {})).toThrow(/at least 5 MiB/);
    expect(() => addS3Defaults({ queueSize: 0 }, {})).toThrow(/queueSize/);
    expect(() => addS3Defaults({ endpoint: 'not a url' }, {})).toThrow(/not a URL/);
  });

  it('createObjectStore routes by scheme', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vla-routing-'));
    try {
      const store = createObjectStore({ roots: 'unconfined', s3: { endpoint: s3.endpoint, credentials: s3Credentials } });
      const s3Uri = uri('routed.txt');
      const fUri = fileUri(join(dir, 'routed.txt'));
      await store.put(s3Uri, 'to s3');
      await store.put(fUri, 'to disk');
      expect((await store.get(s3Uri)).toString()).toBe('to s3');
      expect((await store.get(fUri)).toString()).toBe('to disk');
      expect(readdirSync(dir)).toEqual(['routed.txt']);
      await expect(store.get('gs://bucket/key')).rejects.toBeInstanceOf(StoreError);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// --- toObjectUri -----------------------------------------------------------------------------

describe('toObjectUri', () => {
  it('turns relative and absolute paths into file:// URIs', () => {
    expect(toObjectUri('data/d_rob')).toBe(fileUri(resolve('data/d_rob')));
    expect(toObjectUri('/srv/datasets/bridge')).toBe('file:///srv/datasets/bridge');
    expect(toObjectUri('.')).toBe(fileUri(process.cwd()));
  });

  it('percent-encodes odd characters so the URI parses back to the same path', () => {
    const uri = toObjectUri('/tmp/my runs/50%/x#1');
    expect(uri).toBe('file:///tmp/my%20runs/50%25/x%231');
    expect(parseObjectUri(uri)).toEqual({ scheme: 'file', path: '/tmp/my runs/50%/x#1' });
  });

  it('passes valid file:// and s3:// URIs through unchanged', () => {
    expect(toObjectUri('file:///abs/path')).toBe('file:///abs/path');
    expect(toObjectUri('s3://vla-data/d_lan/v1')).toBe('s3://vla-data/d_lan/v1');
  });

  it('rejects malformed URIs and other schemes with InvalidUriError', () => {
    expect(() => toObjectUri('s3://A_Bad_Bucket/key')).toThrow(InvalidUriError);
    expect(() => toObjectUri('file://relative/path')).toThrow(InvalidUriError);
    expect(() => toObjectUri('file:///bad%zzescape')).toThrow(InvalidUriError);
    expect(() => toObjectUri('gs://bucket/key')).toThrow(/unsupported scheme/);
    expect(() => toObjectUri('')).toThrow(InvalidUriError);
  });
});
