import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createObjectStore, RootGuard, StoreError, StoreErrorCode, StoreOutsideRootsError, validateStoreRoots, type StoreRoots } from '../../activities/store';
import { fileUri } from '../../data-schemas/uri';
import { loadConfig, REPO_ROOT } from '../../infra/config';
import { ApplicationFailure } from '@temporalio/common';
import { createGeminiVerifyActivities } from '../../activities/robot/episode/verify';
import { createModelPolicyActivities } from '../../activities/robot/episode/policy-model';
import { PolicySpec } from '../../data-schemas/robot';

describe('store roots: every URI is checked against the configured roots before any I/O', () => {
  let dir: string;
  let store: string;
  let samples: string;
  let roots: StoreRoots;
  let guard: RootGuard;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'vla-roots-'));
    store = fileUri(join(dir, 'store'));
    samples = fileUri(join(dir, 'samples'));
    mkdirSync(join(dir, 'store'));
    mkdirSync(join(dir, 'samples'));
    mkdirSync(join(dir, 'outside'));
    writeFileSync(join(dir, 'outside', 'secret.txt'), 'secret');
    writeFileSync(join(dir, 'samples', 'item.json'), '{}');
    // Links that a root's owner may have made: one out of the roots, one into the read-only root.
    symlinkSync(join(dir, 'outside'), join(dir, 'store', 'escape'));
    symlinkSync(join(dir, 'samples'), join(dir, 'store', 'to-samples'));
    roots = { readWrite: [store, 's3://vla-data/runs'], readOnly: [samples, 's3://vla-ro'] };
    guard = new RootGuard(roots);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const refusal = async (uri: string, access: 'read' | 'write' = 'write'): Promise<StoreOutsideRootsError> => {
    const err = await guard.check(uri, access).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err, `${uri} should be refused`).toBeInstanceOf(StoreOutsideRootsError);
    return err as StoreOutsideRootsError;
  };

  it('lets URIs under a root through, with or without trailing slashes on the root', async () => {
    for (const uri of [`${store}/a.txt`, `${store}/deep/er/b.bin`, `${store}/`, `${store}/name%20with%20space.txt`, `${store}/..hidden`, `${store}/a..b/c`]) {
      await expect(guard.check(uri, 'write'), uri).resolves.toBeUndefined();
    }
    for (const uri of ['s3://vla-data/runs/x/y.json', 's3://vla-data/runs/', 's3://vla-ro/anything', 's3://vla-ro', `${samples}/item.json`]) {
      await expect(guard.check(uri, 'read'), uri).resolves.toBeUndefined();
    }
    const slashed = new RootGuard({ readWrite: [`${store}/`, 's3://vla-data/runs/'], readOnly: [] });
    await expect(slashed.check(`${store}/a.txt`, 'write')).resolves.toBeUndefined();
    await expect(slashed.check('s3://vla-data/runs/k', 'write')).resolves.toBeUndefined();
    await expect(slashed.check(`${fileUri(join(dir, 'store-evil'))}/x`, 'write')).rejects.toBeInstanceOf(StoreOutsideRootsError);
  });

  it('refuses "..", "." and percent-encoded dots in every spelling', async () => {
    const traversals = [
      `${store}/../outside/x.txt`,
      `${store}/a/../../outside/x.txt`,
      `${store}/./a.txt`,
      `${store}/%2e%2e/outside/x.txt`,
      `${store}/%2E%2E/outside/x.txt`,
      `${store}/%2E%2e/outside/x.txt`,
      `${store}/.%2e/outside/x.txt`,
      `${store}/%2e./outside/x.txt`,
      `${store}/%252e%252e/outside/x.txt`,
      `${store}/%25252e%25252e/outside/x.txt`,
      `${store}/a%2f..%2f..%2foutside%2fx.txt`,
      `${store}/..`,
    ];
    for (const uri of traversals) {
      const err = await refusal(uri);
      expect(err.message).toContain(uri);
      expect(err.message).toMatch(/"\.\.?" path segment/);
    }
  });

  it('refuses backslashes, NUL bytes and malformed or endlessly nested encodings', async () => {
    expect((await refusal(`${store}/..\\outside\\x.txt`)).message).toMatch(/backslash/);
    expect((await refusal(`${store}/..%5coutside`)).message).toMatch(/backslash/);
    expect((await refusal(`${store}/a\0.txt`)).message).toMatch(/NUL/);
    expect((await refusal(`${store}/a%00.txt`)).message).toMatch(/NUL/);
    expect((await refusal(`${store}/bad%zz`)).message).toMatch(/percent-encoding is malformed/);
    expect((await refusal(`${store}/%25252525252e`)).message).toMatch(/more than 4 times/);
  });

  it('refuses absolute paths outside, sibling prefixes, the root itself as a prefix, other schemes', async () => {
    for (const uri of [
      'file:///etc/passwd',
      fileUri(join(dir, 'outside', 'x.txt')),
      `${fileUri(join(dir, 'store-evil'))}/x.txt`,
      fileUri(join(dir, 'storex')),
      // Without its slash the root is also a prefix of its siblings (list would show store-evil/).
      store,
      'http://example.com/x',
    ]) {
      const err = await refusal(uri, 'read');
      expect(err.message).toContain(uri);
    }
  });

  it('refuses other buckets (bucket vla-data does not cover vla-data2) and prefix escapes on S3', async () => {
    for (const uri of [
      's3://vla-data2/runs/x',
      's3://other-bucket/runs/x',
      's3://vla-data/other/x',
      's3://vla-data/runs-evil/x',
      's3://vla-data/runs',
      's3://vla-data/runs/../other/x',
      's3://vla-data/runs/%2e%2e/other/x',
      's3://vla-data/runs%2f..%2fother/x',
      's3://vla-data',
    ]) {
      await refusal(uri, 'write');
    }
  });

  it('lets read-only roots be read, not written', async () => {
    await expect(guard.check(`${samples}/item.json`, 'read')).resolves.toBeUndefined();
    expect((await refusal(`${samples}/item.json`, 'write')).message).toMatch(/read-only root/);
    expect((await refusal('s3://vla-ro/k', 'write')).message).toMatch(/read-only root/);
  });

  it('follows symbolic links: one out of the roots is refused, one into a read-only root only reads', async () => {
    const escape = await refusal(`${store}/escape/secret.txt`, 'read');
    expect(escape.message).toMatch(/symbolic link leads it to .*outside/);
    await refusal(`${store}/escape/new.txt`, 'write');
    await refusal(`${store}/escape/`, 'read');
    await expect(guard.check(`${store}/to-samples/item.json`, 'read')).resolves.toBeUndefined();
    await refusal(`${store}/to-samples/new.json`, 'write');
  });

  it('names the URI and every root in a non-retryable STORE_OUTSIDE_ROOTS error', async () => {
    const uri = 'file:///var/tmp/vla-owned.txt';
    const err = await refusal(uri);
    expect(err).toBeInstanceOf(StoreError);
    expect(err.code).toBe(StoreErrorCode.OutsideRoots);
    expect(err.code).toBe('STORE_OUTSIDE_ROOTS');
    expect(err.retryable).toBe(false);
    expect(err.uri).toBe(uri);
    for (const root of [...roots.readWrite, ...roots.readOnly]) expect(err.message).toContain(root);
  });

  it('a confined store refuses every operation before touching the disk', async () => {
    const confined = createObjectStore({ roots });
    const outside = join(dir, 'outside');
    const before = readdirSync(outside).sort();
    const target = `${store}/%2e%2e/outside/owned.txt`;
    const ops: [string, () => Promise<unknown>][] = [
      ['put', () => confined.put(target, 'x')],
      ['putIfAbsent', () => confined.putIfAbsent(target, 'x')],
      ['putStream', async () => confined.putStream(target, (await import('node:stream')).Readable.from(['x']))],
      ['get', () => confined.get(fileUri(join(outside, 'secret.txt')))],
      ['getStream', () => confined.getStream(fileUri(join(outside, 'secret.txt')))],
      ['head', () => confined.head(fileUri(join(outside, 'secret.txt')))],
      ['list', async () => { for await (const _ of confined.list(`${fileUri(outside)}/`)) void _; }],
      ['delete', () => confined.delete(fileUri(join(outside, 'secret.txt')))],
    ];
    for (const [name, op] of ops) {
      await expect(op(), name).rejects.toMatchObject({ code: StoreErrorCode.OutsideRoots });
    }
    expect(readdirSync(outside).sort()).toEqual(before);
    // Inside still works, through the same store.
    await confined.put(`${store}/ok/inside.txt`, 'fine');
    expect((await confined.get(`${store}/ok/inside.txt`)).toString()).toBe('fine');
  });

  it('the activities that read frames fail non-retryable on a frame outside the roots', async () => {
    const confined = createObjectStore({ roots });
    const frameUri = fileUri(join(dir, 'outside', 'secret.txt'));
    const observation = { frameUri, state: [0, 0, 0, 0, 0, 0, 0] as [number, number, number, number, number, number, number], step: 0, timestamp: '2026-01-01T00:00:00Z' };
    // A key so the clients can be built; no request is made, the frame read is refused first.
    const refusals = [
      () =>
        createGeminiVerifyActivities({ store: confined, gemini: { apiKey: 'never-sent' } }).verifyGemini({
          episodeId: 'e1', cycle: 0, instruction: 'pick up the eggplant', subtasks: ['grab it'], subtaskIndex: 0, before: observation, after: observation, model: 'gemini-2.5-flash',
        }),
      () =>
        createModelPolicyActivities({ store: confined, env: { geminiApiKey: 'never-sent' } }, 'gemini').policyStage({
          episodeId: 'e1', cycle: 0, stage: 'subtasks', instruction: 'pick up the eggplant', subtasks: [], subtaskIndex: 0, frameUri, inDistribution: true, maxRepairs: 0,
          policy: PolicySpec.parse({ kind: 'model', model: { name: 'g', backend: 'gemini', model: 'gemini-2.5-flash' } }),
        }),
    ];
    for (const refusal of refusals) {
      const err = await refusal().then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(ApplicationFailure);
      expect(err).toMatchObject({ type: StoreErrorCode.OutsideRoots, nonRetryable: true });
      expect((err as Error).message).toContain(frameUri);
    }
  });

  it('rejects a root that is not a plain root', () => {
    expect(() => validateStoreRoots({ readWrite: ['file:///srv/store/../etc'], readOnly: [] })).toThrow(/store root file:\/\/\/srv\/store\/\.\.\/etc is not usable/);
    expect(() => validateStoreRoots({ readWrite: ['s3://vla-data/%2e%2e'], readOnly: [] })).toThrow(/not usable/);
    expect(() => validateStoreRoots({ readWrite: [], readOnly: ['file://relative'] })).toThrow(/absolute path/);
  });
});

describe('store roots configuration (VLA_STORE_ROOTS, VLA_STORE_READ_ROOTS)', () => {
  it('defaults to the store URI, and the bundled samples read-only', () => {
    const config = loadConfig({ VLA_STATE_DIR: '/srv/vla-state' });
    expect(config.storeRoots).toEqual({ readWrite: ['file:///srv/vla-state/store'], readOnly: [fileUri(join(REPO_ROOT, 'data', 'samples'))] });
    const s3 = loadConfig({ VLA_STORE_URI: 's3://vla-data/store' });
    expect(s3.storeRoots.readWrite).toEqual(['s3://vla-data/store']);
  });

  it('reads comma- or whitespace-separated roots', () => {
    const config = loadConfig({ VLA_STORE_URI: 's3://vla-data/store', VLA_STORE_ROOTS: 's3://vla-data, file:///srv/scratch\n file:///srv/more', VLA_STORE_READ_ROOTS: '' });
    expect(config.storeRoots).toEqual({ readWrite: ['s3://vla-data', 'file:///srv/scratch', 'file:///srv/more'], readOnly: [] });
  });

  it('names a bad root, and a store URI that no read-write root covers', () => {
    expect(() => loadConfig({ VLA_STORE_ROOTS: 'file:///srv/store, gs://elsewhere' })).toThrow(/VLA_STORE_ROOTS: gs:\/\/elsewhere: expected file:\/\/\/abs\/path/);
    expect(() => loadConfig({ VLA_STORE_ROOTS: 'file:///srv/store/%2e%2e' })).toThrow(/VLA_STORE_ROOTS.*not usable: it has a "\.\." path segment/);
    expect(() => loadConfig({ VLA_STORE_URI: 'file:///srv/store', VLA_STORE_ROOTS: 'file:///srv/store-other' })).toThrow(/VLA_STORE_URI: file:\/\/\/srv\/store is not under a read-write store root/);
    expect(() => loadConfig({ VLA_STORE_URI: 'file:///srv/store', VLA_STORE_ROOTS: 'file:///srv', VLA_STORE_READ_ROOTS: 'file:///srv/store' })).not.toThrow();
  });
});
