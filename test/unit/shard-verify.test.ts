import { ApplicationFailure } from '@temporalio/common';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tar from 'tar-stream';
import { afterAll, describe, expect, it } from 'vitest';
import { shardEntryOf } from '../../activities/shard/manifest';
import { buildSamples } from '../../activities/shard/plan';
import { ShardContentCheck, verifyShard, type TarMember } from '../../activities/shard/verify';
import { FileStore, putJson, sha256Hex } from '../../activities/store';
import { DLanRecord } from '../../data-schemas/d-lan';
import { ShardFailure, shardPath, shardSidecarPath, type PlannedTrajectory, type ShardEntry } from '../../data-schemas/shard';
import { fileUri, joinUri } from '../../data-schemas/uri';

const JPEG = Buffer.from([0xff, 0xd8, 0xff, 0xe0, 1, 2, 3]);
const PNG = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a]);

function record(id: string, steps: number): DLanRecord {
  return DLanRecord.parse({
    formatVersion: 1,
    trajectoryId: id,
    instruction: 'put the carrot on the plate',
    steps: Array.from({ length: steps }, (_, i) => ({
      index: i,
      keyFrame: `frames/${id}/${i}.${i % 2 ? 'png' : 'jpg'}`,
      sourceSteps: [i, i + 1],
      subtask: `Subtask ${i}`,
      motionPlan: `Move forward ${i} cm.`,
      actionChunk: [[0, 0, 0, 1]],
    })),
    auxiliary: { subtaskCompletion: [], directions: [] },
    labeler: { name: 'heuristic', version: 'h1' },
    provenance: { sourceDataset: 'file:///data/bridge', sourceRecord: `trajectories/${id}.json`, sourceRecordSha256: '0'.repeat(64), labeledAt: '2025-01-01T00:00:00.000Z' },
  });
}

/** A shard's members in tar order, as the writer lays them out: per sample `<key>.json` then its image. */
function membersOf(...records: DLanRecord[]): TarMember[] {
  return records.flatMap((r) =>
    buildSamples(r).flatMap((s) => [
      { name: `${s.sample.key}.json`, type: 'file', data: s.json },
      { name: `${s.sample.key}.${s.sample.image}`, type: 'file', data: s.sample.image === 'jpg' ? JPEG : PNG },
    ]),
  );
}

async function tarOf(members: readonly TarMember[]): Promise<Buffer> {
  const pack = tar.pack();
  for (const m of members) pack.entry({ name: m.name, size: m.data.length, mtime: new Date(0) }, m.data);
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks);
}

const planned = (r: DLanRecord): PlannedTrajectory => ({ id: r.trajectoryId, record: `records/${r.trajectoryId}.json`, recordSha256: 'a'.repeat(64), split: 'train', shard: 0, samples: 1 + 2 * r.steps.length, estimatedBytes: 1 });

/** Feeds members to a check until the first problem, then finishes it against the sidecar, as verifyShard does. */
function problemOf(members: readonly TarMember[], entry: ShardEntry, read = { sha256: entry.sha256, bytes: entry.bytes }): string | undefined {
  const check = new ShardContentCheck();
  for (const m of members) {
    const problem = check.add(m);
    if (problem !== undefined) return problem;
  }
  return check.finish(entry, read);
}

describe('the checks on a shard\'s members', () => {
  const a = record('traj-a', 2);
  const b = record('traj-b', 1);
  const members = membersOf(a, b);
  const entry = shardEntryOf({ split: 'train', index: 0 }, [planned(a), planned(b)], { sha256: 'e'.repeat(64), bytes: 4096 });

  it('pass a shard of json + image pairs that matches its sidecar', () => {
    expect(members).toHaveLength(2 * (5 + 3));
    expect(problemOf(members, entry)).toBeUndefined();
  });

  it('name a member that is not JSON, through the store\'s JSON reader', () => {
    const broken = members.map((m, i) => (i === 0 ? { ...m, data: Buffer.from('{"key":') } : m));
    expect(problemOf(broken, entry)).toMatch(new RegExp(`^${members[0]!.name}: not valid JSON \\(expected a shard sample\\)`));
  });

  it('name a member that is not a ShardSample and the field that is wrong', () => {
    const sample = JSON.parse(members[0]!.data.toString('utf8')) as Record<string, unknown>;
    const broken = members.map((m, i) => (i === 0 ? { ...m, data: Buffer.from(JSON.stringify({ ...sample, stage: 'planning' })) } : m));
    const problem = problemOf(broken, entry);
    expect(problem).toContain(`${members[0]!.name}: does not match the expected schema (expected a shard sample)`);
    expect(problem).toContain('stage');
  });

  it('refuse a sample whose json names another key', () => {
    const broken = members.map((m, i) => (i === 0 ? { ...m, name: `other.json` } : m));
    expect(problemOf(broken, entry)).toMatch(/^other\.json has key traj-a__/);
  });

  it('refuse an image without its magic bytes, an entry that is not a file, and an unknown extension', () => {
    expect(problemOf(members.map((m, i) => (i === 1 ? { ...m, data: Buffer.from('GIF89a') } : m)), entry)).toBe(`${members[1]!.name} is not a jpg image`);
    expect(problemOf([{ name: 'frames', type: 'directory', data: Buffer.alloc(0) }, ...members], entry)).toBe('unexpected entry "frames"');
    expect(problemOf([...members, { name: 'notes.txt', type: 'file', data: Buffer.from('x') }], entry)).toBe('unexpected entry "notes.txt"');
  });

  it('refuse a sample missing its image or its json', () => {
    const key = members[0]!.name.replace(/\.json$/, '');
    expect(problemOf(members.filter((_, i) => i !== 1), entry)).toBe(`sample ${key} has no .jpg image`);
    expect(problemOf(members.filter((_, i) => i !== 0), entry)).toBe(`sample ${key} has no .json`);
  });

  it('compare the bytes read, the sample count and the trajectories with the sidecar', () => {
    expect(problemOf(members, entry, { sha256: 'f'.repeat(64), bytes: 4096 })).toBe(`sha256 ${'f'.repeat(64)} (4096 bytes) but train/shard-000000.tar.json records ${'e'.repeat(64)} (4096 bytes)`);
    expect(problemOf(members, { ...entry, samples: 9 })).toBe('8 samples but the sidecar records 9');
    expect(problemOf(members, { ...entry, trajectories: ['traj-a', 'traj-c'] })).toBe('its trajectories differ from the sidecar\'s');
  });
});

describe('verifyShard', () => {
  const dir = mkdtempSync(join(tmpdir(), 'shard-verify-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const store = new FileStore();
  const hooks = { heartbeat: (): void => undefined };
  const a = record('traj-a', 3);

  async function writeShard(outputUri: string, bytes: Buffer, sidecarBytes = bytes): Promise<ShardEntry> {
    const entry = shardEntryOf({ split: 'train', index: 0 }, [planned(a)], { sha256: sha256Hex(sidecarBytes), bytes: sidecarBytes.length });
    await store.put(joinUri(outputUri, shardPath('train', 0)), bytes);
    await putJson(store, joinUri(outputUri, shardSidecarPath('train', 0)), entry);
    return entry;
  }

  async function corruption(promise: Promise<unknown>): Promise<ApplicationFailure> {
    const err = await promise.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ApplicationFailure);
    const failure = err as ApplicationFailure;
    expect(failure.type).toBe(ShardFailure.Corrupt);
    expect(failure.nonRetryable).toBe(true);
    return failure;
  }

  it('returns the sidecar of a shard that reads back as written', async () => {
    const out = fileUri(join(dir, 'good'));
    const entry = await writeShard(out, await tarOf(membersOf(a)));
    expect(await verifyShard(store, out, { split: 'train', index: 0 }, hooks)).toEqual(entry);
  });

  it('fails a truncated shard, naming it', async () => {
    const out = fileUri(join(dir, 'truncated'));
    const bytes = await tarOf(membersOf(a));
    await writeShard(out, bytes.subarray(0, 1024), bytes);
    const failure = await corruption(verifyShard(store, out, { split: 'train', index: 0 }, hooks));
    expect(failure.message).toContain(joinUri(out, 'train/shard-000000.tar'));
  });

  it('fails a shard whose sidecar is missing or not a ShardEntry, naming the sidecar and the field', async () => {
    const out = fileUri(join(dir, 'sidecar'));
    await store.put(joinUri(out, shardPath('train', 0)), await tarOf(membersOf(a)));
    expect((await corruption(verifyShard(store, out, { split: 'train', index: 0 }, hooks))).message).toContain(`its sidecar ${joinUri(out, 'train/shard-000000.tar.json')} is missing`);
    await store.put(joinUri(out, shardSidecarPath('train', 0)), JSON.stringify({ path: 'train/shard-000000.tar' }));
    const message = (await corruption(verifyShard(store, out, { split: 'train', index: 0 }, hooks))).message;
    expect(message).toContain(`its sidecar is invalid: ${joinUri(out, 'train/shard-000000.tar.json')}: does not match the expected schema (expected a shard sidecar)`);
    expect(message).toContain('sha256');
  });

  it('fails a shard with a corrupt sample before reading on', async () => {
    const out = fileUri(join(dir, 'image'));
    const members = membersOf(a).map((m, i) => (i === 5 ? { ...m, data: JPEG } : m));
    await writeShard(out, await tarOf(members));
    expect((await corruption(verifyShard(store, out, { split: 'train', index: 0 }, hooks))).message).toContain(`${members[5]!.name} is not a png image`);
  });
});
