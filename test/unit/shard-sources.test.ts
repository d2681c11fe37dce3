import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DatasetInvalidError, DatasetNotFoundError } from '../../activities/data/errors';
import { createShardSources, samplesOf } from '../../activities/shard/sources';
import { FileStore, putJson, sha256Hex } from '../../activities/store';
import { DLanRecord } from '../../data-schemas/d-lan';
import { MANIFEST_FILE, type DatasetManifest } from '../../data-schemas/manifest';
import { fileUri, joinUri } from '../../data-schemas/uri';

const dir = mkdtempSync(join(tmpdir(), 'shard-sources-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const store = new FileStore();
const root = (name: string): string => fileUri(join(dir, name));

function manifest(kind: 'd_rob' | 'd_lan', files: { path: string; sha256: string; bytes: number }[]): DatasetManifest {
  return {
    formatVersion: 1,
    kind,
    name: 'sample',
    createdAt: '2026-01-01T00:00:00.000Z',
    source: { producer: 'test', producerVersion: '1', inputs: [] },
    counts: { trajectories: 0, steps: 0, files: files.length, bytes: files.reduce((n, f) => n + f.bytes, 0) },
    trajectories: [],
    files,
  };
}

const record = DLanRecord.parse({
  formatVersion: 1,
  trajectoryId: 'traj-a',
  instruction: 'put the carrot on the plate',
  steps: [{ index: 0, keyFrame: 'frames/traj-a/0.jpg', sourceSteps: [0, 1], subtask: 'Move to the carrot', motionPlan: 'Move forward 2 cm.', actionChunk: [[0, 0, 0, 1]] }],
  auxiliary: { subtaskCompletion: [], directions: [] },
  labeler: { name: 'heuristic', version: 'h1' },
  provenance: { sourceDataset: 'file:///data/bridge', sourceRecord: 'trajectories/traj-a.json', sourceRecordSha256: '0'.repeat(64), labeledAt: '2025-01-01T00:00:00.000Z' },
});

async function rejection(promise: Promise<unknown>): Promise<Error> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(Error);
  return err as Error;
}

describe('the D_lan manifest', () => {
  const sources = createShardSources(store);

  it('is read with the sha256 of its bytes', async () => {
    const uri = root('dlan-ok');
    await putJson(store, joinUri(uri, MANIFEST_FILE), manifest('d_lan', []));
    const { manifest: read, sha256 } = await sources.dlanManifest(uri);
    expect(read.kind).toBe('d_lan');
    expect(sha256).toBe(sha256Hex(await store.get(joinUri(uri, MANIFEST_FILE))));
  });

  it('missing is a dataset not found', async () => {
    expect(await rejection(sources.dlanManifest(root('nothing')))).toBeInstanceOf(DatasetNotFoundError);
  });

  it('not JSON or not a manifest is an invalid dataset naming the file, what it should be and the field', async () => {
    const notJson = root('dlan-not-json');
    await store.put(joinUri(notJson, MANIFEST_FILE), '{"formatVersion": 1,');
    const err = await rejection(sources.dlanManifest(notJson));
    expect(err).toBeInstanceOf(DatasetInvalidError);
    expect(err.message).toMatch(new RegExp(`^${joinUri(notJson, MANIFEST_FILE)}: not valid JSON \\(expected a dataset manifest \\(manifest.json\\)\\)`));

    const wrong = root('dlan-wrong');
    await putJson(store, joinUri(wrong, MANIFEST_FILE), { ...manifest('d_lan', []), counts: { trajectories: 0, steps: 0, files: 0 } });
    const invalid = await rejection(sources.dlanManifest(wrong));
    expect(invalid).toBeInstanceOf(DatasetInvalidError);
    expect(invalid.message).toContain(`${joinUri(wrong, MANIFEST_FILE)}: does not match the expected schema (expected a dataset manifest (manifest.json))`);
    expect(invalid.message).toContain('counts.bytes');
  });

  it('of a D_rob dataset is refused: shardDataset takes D_lan', async () => {
    const uri = root('drob-given');
    await putJson(store, joinUri(uri, MANIFEST_FILE), manifest('d_rob', []));
    const err = await rejection(sources.dlanManifest(uri));
    expect(err).toBeInstanceOf(DatasetInvalidError);
    expect(err.message).toContain('is a d_rob dataset; shardDataset takes a D_lan dataset');
  });
});

describe('D_lan records', () => {
  const sources = createShardSources(store);
  const dataset = root('records');

  it('are read when their bytes have the sha256 the manifest lists', async () => {
    const bytes = Buffer.from(JSON.stringify(record));
    await store.put(joinUri(dataset, 'records/traj-a.json'), bytes);
    expect(await sources.record(dataset, 'records/traj-a.json', sha256Hex(bytes))).toEqual(record);
  });

  it('changed since the manifest are refused', async () => {
    await store.put(joinUri(dataset, 'records/changed.json'), JSON.stringify(record));
    const err = await rejection(sources.record(dataset, 'records/changed.json', 'a'.repeat(64)));
    expect(err).toBeInstanceOf(DatasetInvalidError);
    expect(err.message).toContain(`${joinUri(dataset, 'records/changed.json')} changed after its dataset's manifest was written`);
  });

  it('that are not D_lan records name the record and the field', async () => {
    const bytes = Buffer.from(JSON.stringify({ ...record, labeler: { name: 'heuristic' } }));
    await store.put(joinUri(dataset, 'records/bad.json'), bytes);
    const err = await rejection(sources.record(dataset, 'records/bad.json', sha256Hex(bytes)));
    expect(err).toBeInstanceOf(DatasetInvalidError);
    expect(err.message).toContain(`${joinUri(dataset, 'records/bad.json')}: does not match the expected schema (expected a D_lan record)`);
    expect(err.message).toContain('labeler.version');
  });

  it('already validated when planning are not parsed twice, but still read through the store\'s reader', async () => {
    const loose = Buffer.from(JSON.stringify({ ...record, labeler: { name: 'heuristic' } }));
    await store.put(joinUri(dataset, 'records/planned.json'), loose);
    expect(await sources.record(dataset, 'records/planned.json', sha256Hex(loose), true)).toEqual({ ...record, labeler: { name: 'heuristic' } });
    const cut = Buffer.from('{"formatVersion": 1,');
    await store.put(joinUri(dataset, 'records/cut.json'), cut);
    const err = await rejection(sources.record(dataset, 'records/cut.json', sha256Hex(cut), true));
    expect(err).toBeInstanceOf(DatasetInvalidError);
    expect(err.message).toMatch(new RegExp(`^${joinUri(dataset, 'records/cut.json')}: not valid JSON \\(expected a D_lan record\\)`));
  });

  it('whose samples cannot be built name the record', () => {
    const gif = { ...record, steps: [{ ...record.steps[0]!, keyFrame: 'frames/traj-a/0.gif' }] };
    expect(() => samplesOf(gif, 'file:///dlan/records/traj-a.json', false)).toThrow(DatasetInvalidError);
    expect(() => samplesOf(gif, 'file:///dlan/records/traj-a.json', false)).toThrow(/^file:\/\/\/dlan\/records\/traj-a\.json: trajectory traj-a: key frame frames\/traj-a\/0\.gif is neither/);
  });
});

describe('key frames', () => {
  const sources = createShardSources(store);
  const drob = root('drob');
  const frame = Buffer.from([0xff, 0xd8, 0xff, 0xe0, 9, 9]);

  it('are read when their D_rob manifest lists them with their sha256 and size, refused otherwise', async () => {
    await store.put(joinUri(drob, 'frames/a/0.jpg'), frame);
    await store.put(joinUri(drob, 'frames/a/1.jpg'), frame);
    await putJson(
      store,
      joinUri(drob, MANIFEST_FILE),
      manifest('d_rob', [
        { path: 'frames/a/0.jpg', sha256: sha256Hex(frame), bytes: frame.length },
        { path: 'frames/a/1.jpg', sha256: 'b'.repeat(64), bytes: frame.length },
      ]),
    );
    expect(await sources.frame('a', drob, 'frames/a/0.jpg')).toEqual(frame);

    const bad = await rejection(sources.frame('a', drob, 'frames/a/1.jpg'));
    expect(bad).toBeInstanceOf(DatasetInvalidError);
    expect(bad.message).toContain(`trajectory a: key frame ${joinUri(drob, 'frames/a/1.jpg')} fails its checksum`);

    const unlisted = await rejection(sources.frame('a', drob, 'frames/a/2.jpg'));
    expect(unlisted).toBeInstanceOf(DatasetInvalidError);
    expect(unlisted.message).toContain(`key frame ${joinUri(drob, 'frames/a/2.jpg')} is missing from its D_rob dataset`);
  });
});
