import { ApplicationFailure } from '@temporalio/common';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { classifyActivityError } from '../../activities/failures';
import { createObjectStore, StoreError, StoreErrorCode } from '../../activities/store';
import { fileUrisIn, MULTI_HOST_NEEDS_S3 } from '../../data-schemas/config';
import { fileUri } from '../../data-schemas/uri';
import { loadConfig, refuseLocalStore } from '../../infra/config';

const dir = mkdtempSync(join(tmpdir(), 'vla-multi-host-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('VLA_MULTI_HOST: a file:// store is local to one host', () => {
  it('parses to a boolean, off by default', () => {
    expect(loadConfig({}).env.VLA_MULTI_HOST).toBe(false);
    expect(loadConfig({ VLA_MULTI_HOST: '1', VLA_STORE_URI: 's3://vla-data/store' }).env.VLA_MULTI_HOST).toBe(true);
    expect(() => loadConfig({ VLA_MULTI_HOST: 'yes' })).toThrow(/VLA_MULTI_HOST/);
  });

  it('a worker refuses to start with the default (file://) store, naming the setting', () => {
    const config = loadConfig({ VLA_MULTI_HOST: '1', VLA_STATE_DIR: '/srv/state' });
    expect(() => refuseLocalStore(config)).toThrow(MULTI_HOST_NEEDS_S3);
    expect(() => refuseLocalStore(config)).toThrow('VLA_STORE_URI=file:///srv/state/store (the default)');
  });

  it('a worker refuses a file:// root next to an s3:// store, read-write or read-only', () => {
    const rw = loadConfig({ VLA_MULTI_HOST: '1', VLA_STORE_URI: 's3://vla-data/store', VLA_STORE_ROOTS: 's3://vla-data, file:///srv/scratch' });
    expect(() => refuseLocalStore(rw)).toThrow(/workers on several hosts need an s3:\/\/ store.*VLA_STORE_ROOTS: file:\/\/\/srv\/scratch/);
    const ro = loadConfig({ VLA_MULTI_HOST: '1', VLA_STORE_URI: 's3://vla-data/store', VLA_STORE_READ_ROOTS: 'file:///srv/samples' });
    expect(() => refuseLocalStore(ro)).toThrow(/VLA_STORE_READ_ROOTS: file:\/\/\/srv\/samples/);
  });

  it('an s3:// store passes, and the bundled file:// samples are no default read root on several hosts', () => {
    const config = loadConfig({ VLA_MULTI_HOST: '1', VLA_STORE_URI: 's3://vla-data/store' });
    expect(() => refuseLocalStore(config)).not.toThrow();
    expect(config.storeRoots).toEqual({ readWrite: ['s3://vla-data/store'], readOnly: [] });
    // One host: unchanged.
    expect(() => refuseLocalStore(loadConfig({ VLA_STATE_DIR: '/srv/state' }))).not.toThrow();
    expect(loadConfig({}).storeRoots.readOnly[0]).toMatch(/^file:\/\/.*data\/samples$/);
  });

  it('the store of a multi-host worker refuses every file:// URI before any I/O, non-retryably', async () => {
    const target = join(dir, 'would-be-written.txt');
    const store = createObjectStore({ roots: 'unconfined', multiHost: true });
    const err = await store.put(fileUri(target), 'x').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreError);
    expect(err).toMatchObject({ code: StoreErrorCode.NotShared, retryable: false });
    expect((err as Error).message).toContain(MULTI_HOST_NEEDS_S3);
    expect(existsSync(target)).toBe(false);
    await expect(store.get(fileUri(target))).rejects.toMatchObject({ code: StoreErrorCode.NotShared });
    const failure = classifyActivityError(err);
    expect(failure).toBeInstanceOf(ApplicationFailure);
    expect(failure).toMatchObject({ type: 'STORE_NOT_SHARED', nonRetryable: true });
    // A one-host store still writes file:// URIs.
    await createObjectStore({ roots: 'unconfined' }).put(fileUri(target), 'x');
    expect(existsSync(target)).toBe(true);
  });

  it('finds the file:// URIs anywhere in a workflow input (what the CLI refuses)', () => {
    expect(fileUrisIn({ datasetUri: 'file:///d', labeler: { name: 'heuristic' }, outputs: ['s3://b/o', 'file:///o'], n: 3 })).toEqual(['file:///d', 'file:///o']);
    expect(fileUrisIn({ datasetUri: 's3://b/d' })).toEqual([]);
  });
});
