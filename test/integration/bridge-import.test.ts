import { existsSync } from 'node:fs';
import { copyFile, mkdtemp, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fileUri, joinUri, MANIFEST_FILE, type DatasetManifest, type DRobTrajectory } from '../../data-schemas';
import {
  BridgeRecordError,
  DatasetExistsError,
  DatasetInvalidError,
  DatasetNotFoundError,
  DataErrorCode,
  formatIssue,
  importBridgeRlds,
  readBridgeEpisodes,
  readManifest,
  readTfRecords,
  readTrajectory,
  TfRecordError,
  trajectoryContentSha256,
  validateDataset,
  writeDataset,
  type PendingTrajectory,
} from '../../activities/data';
import { FileStore, sha256Hex, type ObjectStore } from '../../activities/store';
import { editExample, writeTfRecordFile } from '../fixtures/tfrecord-writer';
import { BRIDGE_SAMPLE } from '../../infra/config';
import { splitOf } from '../../activities/shard/plan';

const BRIDGE = BRIDGE_SAMPLE;
const INSTRUCTIONS = ['flip pot upright which is in sink', 'put carrot on plate', 'put cup from counter or drying rack into sink', 'turn lever vertical to front'];

const store = new FileStore();
let dir: string;
let rootCount = 0;
/** A fresh, not yet existing dataset root under the test's temp dir. */
const newRoot = (): string => fileUri(join(dir, `ds-${++rootCount}`));

async function listUnder(root: string): Promise<string[]> {
  const out: string[] = [];
  for await (const o of store.list(`${root}/`)) out.push(o.uri);
  return out;
}

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    if (err instanceof Error) return err;
    throw new Error(`rejected with a non-Error: ${String(err)}`);
  }
  throw new Error('expected a rejection');
}

/** The test store with some methods replaced, to inject faults. */
function wrapStore(overrides: Partial<ObjectStore>): ObjectStore {
  return {
    put: (uri, body, o) => store.put(uri, body, o),
    putIfAbsent: (uri, body, o) => store.putIfAbsent(uri, body, o),
    putStream: (uri, body, o) => store.putStream(uri, body, o),
    get: (uri) => store.get(uri),
    getStream: (uri) => store.getStream(uri),
    getRange: (uri, start, end) => store.getRange(uri, start, end),
    head: (uri) => store.head(uri),
    list: (uri) => store.list(uri),
    delete: (uri, o) => store.delete(uri, o),
    ...overrides,
  };
}

/** Width and height from the first SOF marker of a baseline or progressive JPEG. */
function jpegSize(b: Uint8Array): { width: number; height: number } {
  const buf = Buffer.from(b);
  if (buf.readUInt16BE(0) !== 0xffd8) throw new Error('no SOI marker');
  let i = 2;
  while (i + 4 <= buf.length) {
    if (buf[i] !== 0xff) throw new Error(`bad marker at ${i}`);
    const marker = buf[i + 1] as number;
    const len = buf.readUInt16BE(i + 2);
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      return { height: buf.readUInt16BE(i + 5), width: buf.readUInt16BE(i + 7) };
    }
    i += 2 + len;
  }
  throw new Error('no SOF marker');
}

/** The 25 raw records of the sample, to build crafted files from. */
const records: Buffer[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bridge-import-test-'));
  for await (const r of readTfRecords(BRIDGE)) records.push(Buffer.from(r.data));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('importBridgeRlds on the real 25-episode sample', () => {
  let root: string;
  let manifest: DatasetManifest;
  let trajectories: DRobTrajectory[];

  beforeAll(async () => {
    root = newRoot();
    const progress: number[] = [];
    manifest = await importBridgeRlds(store, { files: [BRIDGE], outUri: root, name: 'bridge-debug', license: 'MIT', onProgress: (n) => progress.push(n) });
    expect(progress.at(-1)).toBe(25);
    trajectories = await Promise.all(manifest.trajectories.map((e) => readTrajectory(store, root, e)));
  });

  it('imports 25 trajectories of 10 steps each, with the 4 real instructions', () => {
    expect(manifest.trajectories).toHaveLength(25);
    expect(trajectories.map((t) => t.steps.length)).toEqual(Array<number>(25).fill(10));
    expect([...new Set(trajectories.map((t) => t.instruction))].sort()).toEqual(INSTRUCTIONS);
    expect(trajectories.filter((t) => t.instruction === 'put carrot on plate')).toHaveLength(8);
  });

  it('keeps the raw action and state values of the record (episode 2 of put_carrot_on_plate, step 3)', () => {
    const t = trajectories[4] as DRobTrajectory;
    expect(t.instruction).toBe('put carrot on plate');
    expect(t.source).toMatchObject({ kind: 'bridge_rlds', file: BRIDGE, recordIndex: 4, episodeId: 2 });
    expect(t.source.kind === 'bridge_rlds' && t.source.originalPath).toMatch(/toysink2_bww\/put_carrot_on_plate\/val\/out\.npy$/);
    const action = t.steps[3]?.action ?? [];
    const expected = [0.0020402190275490284, -0.0006190167623572052, -0.006611454766243696, -0.008791337721049786, 0.009970762766897678, -0.003444938687607646, 1];
    expect(action).toHaveLength(7);
    expected.forEach((v, i) => expect(action[i]).toBeCloseTo(v, 9));
    expect(t.steps[3]?.state[2]).toBeCloseTo(0.1090729609131813, 9);
    // Uncleaned: the first action is the near-zero placeholder that cleaning would drop.
    expect(Math.max(...(t.steps[0]?.action.slice(0, 6) ?? []).map(Math.abs))).toBeLessThan(1e-6);
  });

  it('copies the step flags as recorded (episodes were cut to 10 steps: no last step)', () => {
    for (const t of trajectories) {
      expect(t.steps.map((s) => s.isFirst)).toEqual([true, ...Array<boolean>(9).fill(false)]);
      expect(t.steps.some((s) => s.isLast || s.isTerminal)).toBe(false);
    }
  });

  it('gives ids derived from the recording, listed with its content hash in the manifest', async () => {
    const fileSha256 = new Map(manifest.files.map((f) => [f.path, f.sha256]));
    trajectories.forEach((t, i) => {
      const contentSha256 = trajectoryContentSha256(t, (path) => fileSha256.get(path));
      expect(manifest.trajectories[i]?.contentSha256).toBe(contentSha256);
      expect(t.id).toBe(`bridge-${contentSha256.slice(0, 16)}`);
    });
    expect(new Set(trajectories.map((t) => t.id)).size).toBe(25);
    const again = await importBridgeRlds(store, { files: [BRIDGE], outUri: newRoot(), name: 'again', limit: 5 });
    expect(again.trajectories.map((e) => e.id)).toEqual(manifest.trajectories.slice(0, 5).map((e) => e.id));
    expect(again.files.filter((f) => f.path.startsWith('frames/')).map((f) => f.sha256)).toEqual(
      manifest.files.filter((f) => again.files.some((g) => g.path === f.path) && f.path.startsWith('frames/')).map((f) => f.sha256),
    );
  });

  it('writes the frames of the three real cameras as 64x64 JPEGs, byte-for-byte, and drops the all-black placeholder image_3', async () => {
    for (const t of trajectories) expect(t.cameras).toEqual(['image_0', 'image_1', 'image_2']);
    const t = trajectories[0] as DRobTrajectory;
    expect(t.steps[7]?.frames).toEqual({
      image_0: `frames/${t.id}/image_0/007.jpg`,
      image_1: `frames/${t.id}/image_1/007.jpg`,
      image_2: `frames/${t.id}/image_2/007.jpg`,
    });
    const frame = await store.get(joinUri(root, `frames/${t.id}/image_1/007.jpg`));
    expect(jpegSize(frame)).toEqual({ width: 64, height: 64 });
    // Same bytes as in the record: find them inside the raw tf.train.Example.
    expect((records[0] as Buffer).includes(frame)).toBe(true);
    const frames = manifest.files.filter((f) => f.path.startsWith('frames/'));
    expect(frames).toHaveLength(25 * 10 * 3);
    for (const f of frames.filter((_, i) => i % 37 === 0)) {
      expect(jpegSize(await store.get(joinUri(root, f.path)))).toEqual({ width: 64, height: 64 });
    }
  });

  it('writes a manifest whose counts and checksums match what is on disk', async () => {
    expect(manifest).toMatchObject({
      formatVersion: 1,
      kind: 'd_rob',
      name: 'bridge-debug',
      source: { producer: 'vla-pipelines/bridge-import', inputs: [BRIDGE], license: 'MIT' },
      counts: { trajectories: 25, steps: 250, files: 25 + 750 },
    });
    expect(manifest.counts.bytes).toBe(manifest.files.reduce((n, f) => n + f.bytes, 0));
    const onDisk = await listUnder(root);
    expect(onDisk).toHaveLength(776);
    expect(await readManifest(store, root)).toEqual(manifest);
    const report = await validateDataset(store, root);
    expect(report).toMatchObject({ ok: true, dataset: root, name: 'bridge-debug', issues: [], counts: manifest.counts });
  });

  it('refuses to import over an existing dataset and changes nothing', async () => {
    const before = await Promise.all((await listUnder(root)).map(async (uri) => [uri, (await store.head(uri))?.etag]));
    const manifestBytes = await store.get(joinUri(root, MANIFEST_FILE));
    const err = await rejection(importBridgeRlds(store, { files: [BRIDGE], outUri: root, name: 'other' }));
    expect(err).toBeInstanceOf(DatasetExistsError);
    expect(err.message).toBe(`dataset already exists at ${root}`);
    const after = await Promise.all((await listUnder(root)).map(async (uri) => [uri, (await store.head(uri))?.etag]));
    expect(after).toEqual(before);
    expect((await store.get(joinUri(root, MANIFEST_FILE))).equals(manifestBytes)).toBe(true);
  });
});

describe('one episode set in two files, in different orders', () => {
  // Public releases ship overlapping files: the same real episodes at other record indexes.
  const forward = (): string => join(dir, 'episodes-0-9.tfrecord');
  const backward = (): string => join(dir, 'episodes-9-0-and-10-12.tfrecord');
  beforeAll(async () => {
    await writeTfRecordFile(forward(), records.slice(0, 10));
    await writeTfRecordFile(backward(), [...records.slice(0, 10).reverse(), ...records.slice(10, 13)]);
  });

  it('gives every episode the same id and the same split from either file', async () => {
    const a = await importBridgeRlds(store, { files: [forward()], outUri: newRoot(), name: 'forward' });
    const b = await importBridgeRlds(store, { files: [backward()], outUri: newRoot(), name: 'backward' });
    const byId = (m: DatasetManifest): Map<string, string | undefined> => new Map(m.trajectories.map((t) => [t.id, t.contentSha256]));
    const fromB = byId(b);
    expect(a.trajectories).toHaveLength(10);
    for (const [id, contentSha256] of byId(a)) {
      expect(fromB.has(id), `${id} is not among the ids of the other file's import`).toBe(true);
      expect(fromB.get(id), id).toBe(contentSha256);
    }
    // The frames are the same objects under the same paths.
    const framesOf = (m: DatasetManifest): string[] => m.files.filter((f) => f.path.startsWith('frames/')).map((f) => `${f.path} ${f.sha256}`);
    const bFrames = new Set(framesOf(b));
    expect(framesOf(a).filter((f) => !bFrames.has(f))).toEqual([]);
    for (const seed of [0, 1, 7]) {
      for (const t of a.trajectories) expect(splitOf(fromB.get(t.id) as string, seed, 0.3)).toBe(splitOf(t.contentSha256 as string, seed, 0.3));
    }
  });

  it('imports each episode once when both files are given, and says which it skipped', async () => {
    const skipped: string[] = [];
    const both = await importBridgeRlds(store, { files: [forward(), backward()], outUri: newRoot(), name: 'both', onSkip: (r) => skipped.push(r) });
    expect(both.trajectories).toHaveLength(13);
    expect(new Set(both.trajectories.map((t) => t.contentSha256)).size).toBe(13);
    expect(skipped).toHaveLength(10);
    // Record 0 of the backward file is record 9 of the forward one.
    expect(skipped[0]).toBe(`${backward()}: record 0: same episode as ${forward()}: record 9 (trajectory id ${both.trajectories[9]?.id}), skipped`);
  });

  it('the same file twice: every episode once, each repeat reported with both places', async () => {
    const skipped: string[] = [];
    const m = await importBridgeRlds(store, { files: [BRIDGE, BRIDGE], outUri: newRoot(), name: 'twice', limit: 30, onSkip: (r) => skipped.push(r) });
    expect(m.trajectories).toHaveLength(25);
    expect(skipped).toHaveLength(25);
    expect(skipped[3]).toBe(`${BRIDGE}: record 3: same episode as ${BRIDGE}: record 3 (trajectory id ${m.trajectories[3]?.id}), skipped`);
  });
});

describe('cameras', () => {
  it('drops a camera whose frames are all empty', async () => {
    const file = join(dir, 'no-image-2.tfrecord');
    const noCam = editExample(records[0] as Buffer, (f) => {
      f.set('steps/observation/image_2', { kind: 'bytes_list', values: Array.from({ length: 10 }, () => new Uint8Array()) });
    });
    await writeTfRecordFile(file, [noCam]);
    const root = newRoot();
    const m = await importBridgeRlds(store, { files: [file], outUri: root, name: 'two-cams' });
    const t = await readTrajectory(store, root, m.trajectories[0] as DatasetManifest['trajectories'][number]);
    expect(t.cameras).toEqual(['image_0', 'image_1']);
    expect(m.counts.files).toBe(1 + 10 * 2);
    expect((await validateDataset(store, root)).ok).toBe(true);
  });
});

describe('validateDataset finds damage', () => {
  it('reports a frame the manifest names but the store lacks, and a record that no longer matches', async () => {
    const root = newRoot();
    const m = await importBridgeRlds(store, { files: [BRIDGE], outUri: root, name: 'damaged', limit: 3 });
    const id = m.trajectories[1]?.id as string;
    const frame = `frames/${id}/image_0/003.jpg`;
    await store.delete(joinUri(root, frame));

    const report = await validateDataset(store, root);
    expect(report.ok).toBe(false);
    expect(report.issues).toEqual([{ file: frame, message: 'listed in manifest.json but missing' }]);
    expect(report.issues.map(formatIssue)).toEqual([`${frame}: listed in manifest.json but missing`]);

    // A 6-D action written into a record, and a frame dropped from the manifest's list.
    const recordPath = `trajectories/${id}.json`;
    const record = JSON.parse((await store.get(joinUri(root, recordPath))).toString()) as DRobTrajectory;
    record.steps[3]?.action.pop();
    await store.put(joinUri(root, recordPath), JSON.stringify(record));
    const unlisted = `frames/${id}/image_1/005.jpg`;
    const files = m.files.filter((f) => f.path !== unlisted);
    const edited = { ...m, files, counts: { ...m.counts, files: files.length, bytes: files.reduce((n, f) => n + f.bytes, 0) } };
    await store.put(joinUri(root, MANIFEST_FILE), JSON.stringify(edited));

    const lines = (await validateDataset(store, root)).issues.map(formatIssue);
    expect(lines).toContain(`${frame}: listed in manifest.json but missing`);
    expect(lines).toContain(`${recordPath}: record ${id} step 3 field action: expected 7 numbers, got 6`);
    expect(lines.some((l) => l.startsWith(`${recordPath}: size is `))).toBe(true);
  });

  it('reports a frame reference missing from the manifest with record, step and field', async () => {
    const root = newRoot();
    const m = await importBridgeRlds(store, { files: [BRIDGE], outUri: root, name: 'unlisted', limit: 1 });
    const id = m.trajectories[0]?.id as string;
    const unlisted = `frames/${id}/image_2/009.jpg`;
    const files = m.files.filter((f) => f.path !== unlisted);
    await store.put(joinUri(root, MANIFEST_FILE), JSON.stringify({ ...m, files, counts: { ...m.counts, files: files.length, bytes: files.reduce((n, f) => n + f.bytes, 0) } }));
    const { issues } = await validateDataset(store, root);
    expect(issues).toEqual([{ file: `trajectories/${id}.json`, record: id, step: 9, field: 'frames.image_2', message: `${unlisted} is not listed in manifest.json` }]);
  });

  it('reports a record whose recording no longer hashes to the manifest\'s content hash', async () => {
    const root = newRoot();
    const m = await importBridgeRlds(store, { files: [BRIDGE], outUri: root, name: 'rehashed', limit: 1 });
    const entry = m.trajectories[0] as DatasetManifest['trajectories'][number];
    // A state edited and the record's sha256 and size updated to match: only the content hash can tell.
    const record = JSON.parse((await store.get(joinUri(root, entry.record))).toString()) as DRobTrajectory;
    (record.steps[2] as DRobTrajectory['steps'][number]).state[0] += 0.01;
    const body = Buffer.from(JSON.stringify(record) + '\n');
    await store.put(joinUri(root, entry.record), body);
    const files = m.files.map((f) => (f.path === entry.record ? { ...f, sha256: sha256Hex(body), bytes: body.length } : f));
    await store.put(joinUri(root, MANIFEST_FILE), JSON.stringify({ ...m, files, counts: { ...m.counts, bytes: files.reduce((n, f) => n + f.bytes, 0) } }));
    const fileSha256 = new Map(files.map((f) => [f.path, f.sha256]));
    const actual = trajectoryContentSha256(record, (path) => fileSha256.get(path));
    expect((await validateDataset(store, root)).issues.map(formatIssue)).toEqual([
      `${entry.record}: record ${entry.id} field contentSha256: the recording hashes to ${actual}, manifest.json says ${entry.contentSha256}`,
    ]);
  });

  it('reports a manifest that does not parse, naming the field', async () => {
    const root = newRoot();
    const m = await importBridgeRlds(store, { files: [BRIDGE], outUri: root, name: 'badcounts', limit: 1 });
    await store.put(joinUri(root, MANIFEST_FILE), JSON.stringify({ ...m, counts: { ...m.counts, steps: 11 } }));
    const report = await validateDataset(store, root);
    expect(report.issues.map(formatIssue)).toEqual(['manifest.json: field counts.steps: counts.steps is 11 but the lists give 10']);
    await expect(readManifest(store, root)).rejects.toThrow(DatasetInvalidError);
  });

  it('answers a root without a dataset with a clear error', async () => {
    const root = newRoot();
    await expect(validateDataset(store, root)).rejects.toThrow(`no dataset at ${root} (manifest.json missing)`);
    const err = await rejection(readManifest(store, root));
    expect(err).toBeInstanceOf(DatasetNotFoundError);
    expect(err.message).toBe(`no dataset at ${root} (manifest.json missing)`);
  });
});

describe('bad input leaves nothing behind', () => {
  /**
   * Imports `file` into a fresh root; returns the error and checks the root holds no object.
   * Each bad file starts with good records, so the import has written something before it fails.
   */
  async function failedImport(file: string): Promise<Error> {
    const root = newRoot();
    let puts = 0;
    const counting = wrapStore({ put: (uri, body, o) => (puts++, store.put(uri, body, o)) });
    const err = await rejection(importBridgeRlds(counting, { files: [file], outUri: root, name: 'bad' }));
    expect(puts).toBeGreaterThan(0);
    expect(await listUnder(root)).toEqual([]);
    // No empty directories either: the root itself is gone.
    expect(existsSync(fileURLToPath(root))).toBe(false);
    return err;
  }

  it('a corrupted data CRC: names file, record and byte offset', async () => {
    const file = join(dir, 'corrupt.tfrecord');
    await copyFile(BRIDGE, file);
    const bytes = await readFile(file);
    // Record 7 starts at byte 977495 (12-byte header); flip a byte well inside its data.
    bytes.writeUInt8(bytes.readUInt8(977495 + 12 + 5000) ^ 0x55, 977495 + 12 + 5000);
    await writeFile(file, bytes);
    const err = await failedImport(file);
    expect(err).toBeInstanceOf(TfRecordError);
    expect(err.message).toMatch(new RegExp(`^${file}: record 7 at byte 977495: data CRC mismatch`));
  });

  it('a truncated file: names file and record', async () => {
    const file = join(dir, 'truncated.tfrecord');
    await copyFile(BRIDGE, file);
    await truncate(file, 3340993 + 12 + 1000);
    const err = await failedImport(file);
    expect(err).toMatchObject({ code: DataErrorCode.TfRecordTruncatedData, file, recordIndex: 24 });
    expect(err.message).toContain(`${file}: record 24 at byte 3340993: truncated data`);
  });

  it('a 6-D action: names file, record and feature', async () => {
    const file = join(dir, 'six-d.tfrecord');
    const sixD = editExample(records[3] as Buffer, (f) => {
      const a = f.get('steps/action');
      if (a?.kind !== 'float_list') throw new Error('fixture: steps/action is not a float list');
      f.set('steps/action', { kind: 'float_list', values: a.values.filter((_, i) => i % 7 !== 6) });
    });
    await writeTfRecordFile(file, [records[0] as Buffer, records[1] as Buffer, sixD]);
    const err = await failedImport(file);
    expect(err).toBeInstanceOf(BridgeRecordError);
    expect(err.message).toBe(`${file}: record 2: steps/action: 60 floats is not a whole number of 7-D vectors`);
  });

  it('an action count that disagrees with the step count', async () => {
    const file = join(dir, 'short.tfrecord');
    const short = editExample(records[0] as Buffer, (f) => {
      const a = f.get('steps/action');
      if (a?.kind !== 'float_list') throw new Error('fixture: steps/action is not a float list');
      f.set('steps/action', { kind: 'float_list', values: a.values.slice(0, 63) });
    });
    await writeTfRecordFile(file, [records[5] as Buffer, short]);
    const err = await failedImport(file);
    expect(err.message).toBe(`${file}: record 1: steps/action: 9 vectors of 7 floats for 10 steps (expected 70 floats)`);
  });

  it('an unknown camera feature: names file, record and feature', async () => {
    const file = join(dir, 'image-9.tfrecord');
    const extra = editExample(records[0] as Buffer, (f) => {
      f.set('steps/observation/image_9', f.get('steps/observation/image_0') ?? { kind: 'none' });
    });
    await writeTfRecordFile(file, [records[0] as Buffer, extra]);
    const err = await failedImport(file);
    expect(err.message).toMatch(new RegExp(`^${file}: record 1: steps/observation/image_9: unknown camera feature`));
  });

  it('a gripper action outside [0, 1]: names file, record and trajectory field', async () => {
    const file = join(dir, 'gripper.tfrecord');
    const bad = editExample(records[0] as Buffer, (f) => {
      const a = f.get('steps/action');
      if (a?.kind !== 'float_list') throw new Error('fixture: steps/action is not a float list');
      f.set('steps/action', { kind: 'float_list', values: a.values.map((v, i) => (i === 7 * 4 + 6 ? 2 : v)) });
    });
    await writeTfRecordFile(file, [records[5] as Buffer, bad]);
    const err = await failedImport(file);
    expect(err.message).toBe(`${file}: record 1: steps[4].action[6]: not a valid D_rob trajectory: Too big: expected number to be <=1`);
  });

  it('a camera with empty frames at some steps only', async () => {
    const file = join(dir, 'holes.tfrecord');
    const holes = editExample(records[0] as Buffer, (f) => {
      const cam = f.get('steps/observation/image_1');
      if (cam?.kind !== 'bytes_list') throw new Error('fixture: image_1 is not a bytes list');
      f.set('steps/observation/image_1', { kind: 'bytes_list', values: cam.values.map((b, i) => (i === 2 || i === 5 ? new Uint8Array() : b)) });
    });
    await writeTfRecordFile(file, [records[5] as Buffer, holes]);
    const err = await failedImport(file);
    expect(err.message).toBe(`${file}: record 1: steps/observation/image_1: empty frame at step 2, 5 while other steps have frames`);
  });


  it('a missing input file fails before anything is written', async () => {
    const root = newRoot();
    const missing = join(dir, 'nope.tfrecord');
    await expect(importBridgeRlds(store, { files: [BRIDGE, missing], outUri: root, name: 'x' })).rejects.toThrow(`input file ${missing}: ENOENT`);
    expect(await listUnder(root)).toEqual([]);
  });
});

describe('writeDataset', () => {
  async function pending(n: number): Promise<PendingTrajectory[]> {
    const out: PendingTrajectory[] = [];
    for await (const p of readBridgeEpisodes([BRIDGE], { limit: n })) out.push(p);
    return out;
  }
  const meta = { name: 'w', kind: 'd_rob' as const, source: { producer: 'test', producerVersion: '0', inputs: [] } };

  it('rejects a trajectory whose frame is not among its files, and removes what it wrote', async () => {
    const root = newRoot();
    const [a, b] = await pending(2);
    if (!a || !b) throw new Error('fixture: need two episodes');
    const gone = b.trajectory.steps[2]?.frames.image_0 as string;
    b.files.delete(gone);
    const err = await rejection(writeDataset(store, root, meta, [a, b]));
    expect(err.message).toBe(`trajectory ${b.trajectory.id} step 2: frame image_0 -> ${gone} is not among the trajectory's files`);
    expect(await listUnder(root)).toEqual([]);
  });

  it('cleans up after a store failure part-way', async () => {
    const root = newRoot();
    let puts = 0;
    const flaky = wrapStore({
      put: async (uri, body, o) => {
        if (++puts === 40) throw new Error('disk full (simulated)');
        return store.put(uri, body, o);
      },
    });
    await expect(writeDataset(flaky, root, meta, await pending(3))).rejects.toThrow('disk full (simulated)');
    expect(puts).toBeGreaterThanOrEqual(40);
    expect(await listUnder(root)).toEqual([]);
  });

  it('loses a manifest race without deleting the winner\'s files', async () => {
    const root = newRoot();
    const racing = wrapStore({
      putIfAbsent: async (uri, body, o) => {
        await store.put(uri, '{"winner":true}');
        return store.putIfAbsent(uri, body, o);
      },
    });
    await expect(writeDataset(racing, root, meta, await pending(1))).rejects.toThrow(`dataset already exists at ${root}`);
    expect((await listUnder(root)).length).toBe(1 + 1 + 30);
  });

  it('writes a recording once: a copy under another id is skipped and reported; two recordings under one id fail', async () => {
    const [a, b] = await pending(2);
    if (!a || !b) throw new Error('fixture: need two episodes');
    const renamed = (p: PendingTrajectory, id: string): PendingTrajectory => {
      const move = (path: string): string => path.replace(`frames/${p.trajectory.id}/`, `frames/${id}/`);
      const steps = p.trajectory.steps.map((s) => ({ ...s, frames: Object.fromEntries(Object.entries(s.frames).map(([c, path]) => [c, move(path)])) }));
      return { trajectory: { ...p.trajectory, id, instruction: 'another label', steps }, files: new Map([...p.files].map(([path, body]) => [move(path), body])) };
    };
    const root = newRoot();
    const duplicates: string[] = [];
    const m = await writeDataset(store, root, meta, [a, renamed(a, 'copy-of-a'), b], { onDuplicate: (t, kept) => duplicates.push(`${t.id} = ${kept}`) });
    expect(m.trajectories.map((t) => t.id)).toEqual([a.trajectory.id, b.trajectory.id]);
    expect(duplicates).toEqual([`copy-of-a = ${a.trajectory.id}`]);
    expect((await listUnder(root)).some((uri) => uri.includes('copy-of-a'))).toBe(false);

    const clash = newRoot();
    const err = await rejection(writeDataset(store, clash, meta, [a, renamed(b, a.trajectory.id)]));
    expect(err.message).toBe(`duplicate trajectory id ${a.trajectory.id} (two different recordings)`);
    expect(await listUnder(clash)).toEqual([]);
  });

  it('rejects a bad dataset name and root before touching the store', async () => {
    await expect(writeDataset(store, newRoot(), { ...meta, name: '../x' }, [])).rejects.toThrow('dataset name "../x"');
    await expect(writeDataset(store, 'relative/dir', meta, [])).rejects.toThrow('dataset root relative/dir');
  });
});
