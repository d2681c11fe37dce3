import { WorkflowFailedError } from '@temporalio/client';
import { ActivityFailure, ApplicationFailure } from '@temporalio/common';
import { randomUUID } from 'node:crypto';
import * as tar from 'tar-stream';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { readManifest } from '../../activities/data';
import { createObjectStore, getJson, S3Store, sha256Hex, type ObjectInfo } from '../../activities/store';
import { DLanRecord } from '../../data-schemas/d-lan';
import { ShardManifest, ShardPlanFile, ShardSample, SHARD_MANIFEST_FILE, SHARD_PLAN_FILE, defaultShardOutput, type ShardDatasetResult } from '../../data-schemas/shard';
import { splitOf } from '../../activities/shard/plan';
import { joinUri } from '../../data-schemas/uri';
import type { relabelDataset, shardDataset } from '../../workflows';
import { INVALID_WORKFLOW_INPUT } from '../../workflows/input';
import { importBridgeSample } from '../helpers/datasets';
import { connectTestTemporal, type TemporalTestEnv } from '../helpers/temporal';
import { withCpuWorker } from '../helpers/workers';

const s3 = inject('s3');
const s3Options = { endpoint: s3.endpoint, region: s3.region, credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey } };

async function untar(bytes: Buffer): Promise<{ name: string; data: Buffer; mode?: number; mtime?: Date; uid?: number }[]> {
  const extract = tar.extract();
  const files: { name: string; data: Buffer; mode?: number; mtime?: Date; uid?: number }[] = [];
  extract.end(bytes);
  for await (const entry of extract) {
    const chunks: Buffer[] = [];
    for await (const c of entry as AsyncIterable<Buffer>) chunks.push(c);
    files.push({ name: entry.header.name, data: Buffer.concat(chunks), mode: entry.header.mode, mtime: entry.header.mtime, uid: entry.header.uid });
  }
  return files;
}

describe('shardDataset (real dev server, real S3 store)', () => {
  const store = createObjectStore({ roots: 'unconfined', s3: s3Options });
  const s3store = new S3Store(s3Options);
  const root = `s3://${s3.bucket}/shard-${randomUUID().slice(0, 8)}`;
  const bridgeUri = `${root}/bridge`;
  let dlanUri: string;
  let env: TemporalTestEnv;

  beforeAll(async () => {
    env = await connectTestTemporal();
    await importBridgeSample(store, bridgeUri);
    const relabel = await withWorker((taskQueue) =>
      env.client.workflow.execute<typeof relabelDataset>('relabelDataset', { taskQueue, workflowId: `${taskQueue}-relabel`, args: [{ datasetUri: bridgeUri }] }),
    );
    expect(relabel.counts.done).toBe(25);
    dlanUri = relabel.outputUri;
  });
  afterAll(async () => {
    await env.close();
    s3store.destroy();
  });

  const withWorker = <T>(fn: (taskQueue: string) => Promise<T>): Promise<T> => withCpuWorker(env, store, 'shard', fn);

  const shard = (input: unknown): Promise<ShardDatasetResult> =>
    withWorker((taskQueue) => env.client.workflow.execute<typeof shardDataset>('shardDataset', { taskQueue, workflowId: `${taskQueue}-shard`, args: [input] }));

  async function listShardObjects(outputUri: string): Promise<Map<string, ObjectInfo>> {
    const out = new Map<string, ObjectInfo>();
    for await (const o of store.list(`${outputUri}/`)) out.set(o.uri, o);
    return out;
  }

  const input = () => ({ datasetUri: dlanUri, validationFraction: 0.2, seed: 1, targetShardBytes: 64 * 1024 });
  const outputUri = () => defaultShardOutput(dlanUri, 1, 0.2);

  it('writes several verified shards whose counts add up, splits by trajectory, and holds the D_rob frame bytes', async () => {
    const result = await shard(input());
    expect(result.outputUri).toBe(outputUri());
    expect(result.outputUri).toMatch(/\/shards\/v2-s1-v20$/);
    expect(result.manifestUri).toBe(joinUri(outputUri(), SHARD_MANIFEST_FILE));
    expect(result.shards).toBeGreaterThan(2);
    expect(result.written).toBe(result.shards);
    expect(result.skipped).toBe(0);

    const manifest = await getJson(store, result.manifestUri, ShardManifest);
    const dlan = await readManifest(store, dlanUri);
    const steps = dlan.trajectories.reduce((n, t) => n + t.steps, 0);
    expect(manifest.counts.shards).toBe(manifest.shards.length);
    // Direction labels are on by default: a direction sample per step beside the motion plan and the action.
    expect(manifest.counts.samples).toBe(25 + 3 * steps);
    expect(manifest.counts.samples).toBe(manifest.shards.reduce((n, s) => n + s.samples, 0));
    expect(manifest.counts.bytes).toBe(manifest.shards.reduce((n, s) => n + s.bytes, 0));
    expect(manifest.counts.byStage).toEqual({ subtasks: 25, motion_plan: steps, action: steps, direction: steps });
    expect(manifest.counts.bySplit.train.trajectories + manifest.counts.bySplit.validation.trajectories).toBe(25);
    expect(manifest.counts.bySplit.validation.trajectories).toBeGreaterThan(0);
    expect(manifest.counts.bySplit.train.shards + manifest.counts.bySplit.validation.shards).toBe(manifest.shards.length);
    expect(manifest.source).toMatchObject({ dataset: dlanUri, labeler: { name: 'heuristic', version: 'h2' }, promptVersion: 'v2' });
    expect(manifest.source.datasetManifestSha256).toBe(sha256Hex(await store.get(joinUri(dlanUri, 'manifest.json'))));

    // Every trajectory in exactly one shard, so in exactly one split.
    const where = new Map<string, string>();
    for (const s of manifest.shards) {
      for (const id of s.trajectories) {
        expect(where.has(id), `${id} in ${where.get(id)} and ${s.path}`).toBe(false);
        where.set(id, s.split);
      }
    }
    expect([...where.keys()].sort()).toEqual(dlan.trajectories.map((t) => t.id).sort());
    // The split hashes each source recording's content hash, taken from the D_rob manifest.
    const plan = await getJson(store, joinUri(outputUri(), SHARD_PLAN_FILE), ShardPlanFile);
    const drobContent = new Map((await readManifest(store, bridgeUri)).trajectories.map((t) => [t.id, t.contentSha256]));
    for (const t of plan.trajectories) {
      expect(t.contentSha256, t.id).toBe(drobContent.get(t.id));
      expect(t.split, t.id).toBe(splitOf(t.contentSha256 as string, 1, 0.2));
      expect(where.get(t.id), t.id).toBe(t.split);
    }

    const records = new Map<string, DLanRecord>();
    for (const t of dlan.trajectories) records.set(t.id, await getJson(store, joinUri(dlanUri, t.record), DLanRecord));
    let samples = 0;
    for (const s of manifest.shards) {
      expect(s.path).toMatch(new RegExp(`^${s.split}/shard-\\d{6}\\.tar$`));
      const bytes = await store.get(joinUri(outputUri(), s.path));
      expect(sha256Hex(bytes)).toBe(s.sha256);
      expect(bytes.length).toBe(s.bytes);
      const files = await untar(bytes);
      expect(files.length).toBe(2 * s.samples);
      for (let i = 0; i < files.length; i += 2) {
        const json = files[i]!;
        const image = files[i + 1]!;
        expect(json.mode).toBe(0o644);
        expect(json.mtime?.getTime()).toBe(0);
        expect(json.uid).toBe(0);
        const sample = ShardSample.parse(JSON.parse(json.data.toString('utf8')));
        expect(json.name).toBe(`${sample.key}.json`);
        expect(image.name).toBe(`${sample.key}.${sample.image}`);
        expect(sample.key).not.toContain('.');
        expect(s.trajectories).toContain(sample.trajectoryId);
        const record = records.get(sample.trajectoryId)!;
        const frame = await store.get(joinUri(record.provenance.sourceDataset, record.steps[sample.step]!.keyFrame));
        expect(image.data.equals(frame)).toBe(true);
        samples++;
      }
    }
    expect(samples).toBe(manifest.counts.samples);
  });

  it('a re-run uploads nothing and returns the same manifest', async () => {
    const before = await listShardObjects(outputUri());
    const manifestBefore = await store.get(joinUri(outputUri(), SHARD_MANIFEST_FILE));
    const again = await shard(input());
    expect(again.written).toBe(0);
    expect(again.skipped).toBe(again.shards);
    const after = await listShardObjects(outputUri());
    expect([...after.keys()]).toEqual([...before.keys()]);
    for (const [uri, info] of before) {
      expect(after.get(uri)?.etag, uri).toBe(info.etag);
      expect(after.get(uri)?.lastModified?.getTime(), uri).toBe(info.lastModified?.getTime());
    }
    expect((await store.get(joinUri(outputUri(), SHARD_MANIFEST_FILE))).equals(manifestBefore)).toBe(true);
  });

  it('rewrites a deleted shard, keeps a shard whose sidecar was lost, and ends with the same manifest', async () => {
    const manifestUri = joinUri(outputUri(), SHARD_MANIFEST_FILE);
    const before = await getJson(store, manifestUri, ShardManifest);
    const [gone, sidecarLost] = before.shards;
    const keptInfo = await store.head(joinUri(outputUri(), sidecarLost!.path));
    await store.delete(manifestUri);
    await store.delete(joinUri(outputUri(), gone!.path));
    await store.delete(joinUri(outputUri(), `${sidecarLost!.path}.json`));

    const result = await shard(input());
    expect(result.written).toBe(1);
    expect(result.skipped).toBe(before.shards.length - 1);
    const after = await getJson(store, manifestUri, ShardManifest);
    expect({ ...after, createdAt: '' }).toEqual({ ...before, createdAt: '' });
    // The shard without its sidecar matched a fresh build: kept as it was, the sidecar restored.
    expect((await store.head(joinUri(outputUri(), sidecarLost!.path)))?.etag).toBe(keptInfo?.etag);
    expect(await store.head(joinUri(outputUri(), `${sidecarLost!.path}.json`))).toBeDefined();
  });

  it('a re-run re-verifies shards already written: one changed since (shards.json there or not) is detected and rewritten to its recorded bytes', async () => {
    const out = `${root}/tampered`;
    const first = await shard({ ...input(), outputUri: out });
    const manifestBytes = await store.get(first.manifestUri);
    const manifest = ShardManifest.parse(JSON.parse(manifestBytes.toString('utf8')));
    const [edited, truncated] = [manifest.shards[1]!, manifest.shards[2]!];
    const editedUri = joinUri(out, edited.path);
    const bytes = Buffer.from(await store.get(editedUri));
    // Same size, one byte changed: only the sha256 can tell.
    bytes[bytes.length - 2048] = (bytes[bytes.length - 2048]! + 1) % 256;
    await store.put(editedUri, bytes);
    const truncatedUri = joinUri(out, truncated.path);
    await store.put(truncatedUri, (await store.get(truncatedUri)).subarray(0, 1024));

    // shards.json is still there: the old code skipped both shards as complete, unread.
    const again = await shard({ ...input(), outputUri: out });
    expect(again.written).toBe(2);
    expect(again.skipped).toBe(manifest.shards.length - 2);
    expect(sha256Hex(await store.get(editedUri))).toBe(edited.sha256);
    expect(sha256Hex(await store.get(truncatedUri))).toBe(truncated.sha256);
    // The rewritten bytes are the recorded ones, so shards.json stands as it was.
    expect((await store.get(first.manifestUri)).equals(manifestBytes)).toBe(true);

    // Without shards.json (a run that stopped before finalizing) the same holds.
    await store.put(editedUri, bytes);
    await store.delete(first.manifestUri);
    const third = await shard({ ...input(), outputUri: out });
    expect(third.written).toBe(1);
    expect(sha256Hex(await store.get(editedUri))).toBe(edited.sha256);
  });

  it('fails verification naming a shard whose bytes match its sidecar but are no valid shard', async () => {
    const out = `${root}/corrupt`;
    const first = await shard({ ...input(), outputUri: out });
    const manifest = await getJson(store, first.manifestUri, ShardManifest);
    const victim = manifest.shards[1]!;
    const uri = joinUri(out, victim.path);
    // A sidecar rewritten to match: writeShard's size and sha256 check passes, the tar parse does not.
    const garbage = Buffer.alloc(4096, 0x41);
    await store.put(uri, garbage);
    await store.put(`${uri}.json`, JSON.stringify({ ...victim, sha256: sha256Hex(garbage), bytes: garbage.length }));
    await store.delete(first.manifestUri);

    const err = await shard({ ...input(), outputUri: out }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WorkflowFailedError);
    const activity = (err as WorkflowFailedError).cause as ActivityFailure;
    expect(activity).toBeInstanceOf(ActivityFailure);
    const cause = activity.cause as ApplicationFailure;
    expect(cause.type).toBe('SHARD_CORRUPT');
    expect(cause.message).toContain(uri);
    expect(await store.head(first.manifestUri)).toBeUndefined();
  });

  it('refuses to mix shard sets in one output root', async () => {
    const err = await shard({ ...input(), outputUri: outputUri(), seed: 2 }).catch((e: unknown) => e);
    const cause = ((err as WorkflowFailedError).cause as ActivityFailure).cause as ApplicationFailure;
    expect(cause.type).toBe('SHARD_OUTPUT_CONFLICT');
    expect(cause.message).toContain('choose a new outputUri');
  });

  it('rejects bad input naming the fields; a missing dataset fails fast with its URI', async () => {
    const bad = await shard({ datasetUri: 'not-a-uri', validationFraction: 0.9, targetShardBytes: 10 }).catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(WorkflowFailedError);
    const failure = (bad as WorkflowFailedError).cause as ApplicationFailure;
    expect(failure.type).toBe(INVALID_WORKFLOW_INPUT);
    for (const field of ['datasetUri', 'validationFraction', 'targetShardBytes']) expect(failure.message).toContain(field);

    const missingUri = `${root}/does-not-exist`;
    const missing = await shard({ datasetUri: missingUri }).catch((e: unknown) => e);
    const cause = ((missing as WorkflowFailedError).cause as ActivityFailure).cause as ApplicationFailure;
    expect(cause.type).toBe('DATASET_NOT_FOUND');
    expect(cause.message).toContain(missingUri);

    // A D_rob dataset is not a D_lan one.
    const drob = await shard({ datasetUri: bridgeUri }).catch((e: unknown) => e);
    const drobCause = ((drob as WorkflowFailedError).cause as ActivityFailure).cause as ApplicationFailure;
    expect(drobCause.type).toBe('DATASET_INVALID');
    expect(drobCause.message).toContain('D_lan');
  });

  it('a key frame whose bytes fail their checksum fails non-retryable, naming the trajectory and the frame, and writes no shards.json', async () => {
    const dlan = await readManifest(store, dlanUri);
    const t = dlan.trajectories[1]!;
    const record = await getJson(store, joinUri(dlanUri, t.record), DLanRecord);
    const frameUri = joinUri(record.provenance.sourceDataset, record.steps[record.steps.length - 1]!.keyFrame);
    const original = await store.get(frameUri);
    // Same size, still a JPEG by its magic bytes: only the D_rob manifest's sha256 can tell.
    const corrupted = Buffer.from(original);
    corrupted[corrupted.length - 3] = corrupted[corrupted.length - 3]! ^ 0xff;
    await store.put(frameUri, corrupted);
    try {
      const out = `${root}/corrupt-frame`;
      const err = await shard({ ...input(), outputUri: out }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(WorkflowFailedError);
      const cause = ((err as WorkflowFailedError).cause as ActivityFailure).cause as ApplicationFailure;
      expect(cause.type).toBe('DATASET_INVALID');
      expect(cause.nonRetryable).toBe(true);
      expect(cause.message).toContain(`trajectory ${t.id}`);
      expect(cause.message).toContain(frameUri);
      expect(cause.message).toContain('checksum');
      expect(await store.head(joinUri(out, SHARD_MANIFEST_FILE))).toBeUndefined();
    } finally {
      await store.put(frameUri, original);
    }
  });

  // Last: it breaks the D_rob dataset the other tests read.
  it('a D_rob frame missing from the store fails non-retryable, naming the frame, and leaves no shard behind', async () => {
    const record = await getJson(store, joinUri(dlanUri, 'records', `${(await readManifest(store, dlanUri)).trajectories[0]!.id}.json`), DLanRecord);
    const frameUri = joinUri(record.provenance.sourceDataset, record.steps[0]!.keyFrame);
    await store.delete(frameUri);
    const out = `${root}/missing-frame`;
    const err = await shard({ ...input(), outputUri: out }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WorkflowFailedError);
    const cause = ((err as WorkflowFailedError).cause as ActivityFailure).cause as ApplicationFailure;
    expect(cause.type).toBe('OBJECT_NOT_FOUND');
    expect(cause.nonRetryable).toBe(true);
    expect(cause.message).toContain(frameUri);
    // The multipart upload of the shard holding it was aborted: no object, so nothing calls it complete.
    const left = [...(await listShardObjects(out)).keys()].filter((u) => u.endsWith('.tar'));
    const plan = JSON.parse((await store.get(joinUri(out, 'shards-plan.json'))).toString('utf8')) as { trajectories: { id: string; split: string; shard: number }[] };
    const victim = plan.trajectories.find((t) => t.id === record.trajectoryId)!;
    expect(left).not.toContain(joinUri(out, `${victim.split}/shard-${String(victim.shard).padStart(6, '0')}.tar`));
    expect(await store.head(joinUri(out, SHARD_MANIFEST_FILE))).toBeUndefined();
  });
});
