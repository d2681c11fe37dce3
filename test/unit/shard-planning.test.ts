import { ApplicationFailure } from '@temporalio/common';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DatasetInvalidError } from '../../activities/data/errors';
import { buildSamples, estimateSampleBytes, splitOf } from '../../activities/shard/plan';
import { computePlan, createPlanLoader } from '../../activities/shard/planning';
import { createShardSources } from '../../activities/shard/sources';
import { FileStore, InvalidObjectError, putJson, sha256Hex } from '../../activities/store';
import { DLanRecord } from '../../data-schemas/d-lan';
import { MANIFEST_FILE, type DatasetManifest } from '../../data-schemas/manifest';
import { SHARD_PLAN_FILE, ShardFailure, ShardPlanFile, type ShardPlanKey } from '../../data-schemas/shard';
import { fileUri, joinUri } from '../../data-schemas/uri';

const dir = mkdtempSync(join(tmpdir(), 'shard-planning-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const store = new FileStore();
const drobUri = fileUri(join(dir, 'drob'));
const frame = Buffer.alloc(3000, 1);

function record(id: string, steps: number, labelerVersion = 'h1'): DLanRecord {
  return DLanRecord.parse({
    formatVersion: 1,
    trajectoryId: id,
    instruction: 'put the carrot on the plate',
    steps: Array.from({ length: steps }, (_, i) => ({ index: i, keyFrame: `frames/${id}/${i}.jpg`, sourceSteps: [i, i + 1], subtask: `Subtask ${i}`, motionPlan: `Move ${i} cm.`, actionChunk: [[0, 0, 0, 1]] })),
    auxiliary: { subtaskCompletion: [], directions: Array.from({ length: steps }, (_, i) => ({ sourceStep: i, direction: 'forward' })) },
    labeler: { name: 'heuristic', version: labelerVersion },
    provenance: { sourceDataset: drobUri, sourceRecord: `trajectories/${id}.json`, sourceRecordSha256: '0'.repeat(64), labeledAt: '2025-01-01T00:00:00.000Z' },
  });
}

const contentOf = (id: string): string => sha256Hex(`content of ${id}`);

function manifest(kind: 'd_rob' | 'd_lan', trajectories: { id: string; record: string; steps: number; contentSha256?: string }[], files: { path: string; sha256: string; bytes: number }[]): DatasetManifest {
  return {
    formatVersion: 1,
    kind,
    name: kind === 'd_rob' ? 'drob' : 'dlan',
    createdAt: '2026-01-01T00:00:00.000Z',
    source: { producer: 'test', producerVersion: '1', inputs: [] },
    counts: { trajectories: trajectories.length, steps: trajectories.reduce((n, t) => n + t.steps, 0), files: files.length, bytes: files.reduce((n, f) => n + f.bytes, 0) },
    trajectories: trajectories.map((t) => ({ ...t, instruction: 'put the carrot on the plate' })),
    files,
  };
}

/** A D_rob dataset listing the key frames of `records` (content hashes in its manifest), and a D_lan dataset of `records`. */
async function datasets(name: string, records: DLanRecord[]): Promise<{ dlanUri: string; dlan: DatasetManifest }> {
  const drobFiles = records.flatMap((r) => [{ path: `trajectories/${r.trajectoryId}.json`, sha256: '0'.repeat(64), bytes: 1 }, ...r.steps.map((s) => ({ path: s.keyFrame, sha256: sha256Hex(frame), bytes: frame.length }))]);
  await putJson(store, joinUri(drobUri, MANIFEST_FILE), manifest('d_rob', records.map((r) => ({ id: r.trajectoryId, record: `trajectories/${r.trajectoryId}.json`, steps: 3 * r.steps.length, contentSha256: contentOf(r.trajectoryId) })), drobFiles));
  const dlanUri = fileUri(join(dir, name));
  const files: { path: string; sha256: string; bytes: number }[] = [];
  for (const r of records) {
    const bytes = Buffer.from(JSON.stringify(r));
    await store.put(joinUri(dlanUri, `records/${r.trajectoryId}.json`), bytes);
    files.push({ path: `records/${r.trajectoryId}.json`, sha256: sha256Hex(bytes), bytes: bytes.length });
  }
  const dlan = manifest('d_lan', records.map((r) => ({ id: r.trajectoryId, record: `records/${r.trajectoryId}.json`, steps: r.steps.length })), files);
  return { dlanUri, dlan };
}

const key = (directionLabels: boolean): ShardPlanKey => ({ datasetManifestSha256: 'd'.repeat(64), promptVersion: 'v2', seed: 7, validationFraction: 0.3, targetShardBytes: 64 * 1024, directionLabels });
const settings = (datasetUri: string) => ({ datasetUri, seed: 7, validationFraction: 0.3, targetShardBytes: 64 * 1024 });

describe('computePlan', () => {
  it('places every record by its recording\'s content hash, with its sample count and estimated tar bytes, sorted by id', async () => {
    const records = [record('traj-b', 2), record('traj-a', 3), record('traj-c', 1)];
    const { dlanUri, dlan } = await datasets('dlan-ok', records);
    const beats: unknown[] = [];
    const plan = await computePlan(createShardSources(store), settings(dlanUri), key(true), dlan, (d) => beats.push(d));
    expect(ShardPlanFile.parse(plan)).toEqual(plan);
    expect(plan.datasetUri).toBe(dlanUri);
    expect(plan.labeler).toEqual({ name: 'heuristic', version: 'h1' });
    expect(plan.trajectories.map((t) => t.id)).toEqual(['traj-a', 'traj-b', 'traj-c']);
    for (const t of plan.trajectories) {
      const r = records.find((x) => x.trajectoryId === t.id)!;
      const samples = buildSamples(r, { directionLabels: true });
      expect(t.samples).toBe(1 + 3 * r.steps.length);
      expect(t.estimatedBytes).toBe(estimateSampleBytes(samples, () => frame.length));
      expect(t.contentSha256).toBe(contentOf(t.id));
      expect(t.split).toBe(splitOf(contentOf(t.id), 7, 0.3));
    }
  });

  it('refuses records of two labelers, naming the record', async () => {
    const { dlanUri, dlan } = await datasets('dlan-labelers', [record('traj-a', 1), record('traj-b', 1, 'h2')]);
    const err = await computePlan(createShardSources(store), settings(dlanUri), key(false), dlan, () => undefined).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(DatasetInvalidError);
    expect((err as Error).message).toMatch(/records\/traj-[ab]\.json: labeler heuristic-h[12] differs from the other records' heuristic-h[12]/);
  });

  it('refuses a dataset without trajectories', async () => {
    const { dlanUri, dlan } = await datasets('dlan-empty', []);
    await expect(computePlan(createShardSources(store), settings(dlanUri), key(false), dlan, () => undefined)).rejects.toThrow(`${dlanUri} holds no trajectories: nothing to shard`);
  });
});

describe('the plan loader', () => {
  const loadPlan = createPlanLoader(store);

  it('asks for planShards first when there is no plan, never retried', async () => {
    const out = fileUri(join(dir, 'no-plan'));
    const err = await loadPlan(out).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ApplicationFailure);
    expect((err as ApplicationFailure).type).toBe(ShardFailure.PlanMissing);
    expect((err as ApplicationFailure).nonRetryable).toBe(true);
  });

  it('reads a plan through the store\'s JSON reader: a bad one names the file, what it should be and the field', async () => {
    const out = fileUri(join(dir, 'bad-plan'));
    await putJson(store, joinUri(out, SHARD_PLAN_FILE), { formatVersion: 1, key: key(false) });
    const err = await loadPlan(out).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(InvalidObjectError);
    expect((err as Error).message).toContain(`${joinUri(out, SHARD_PLAN_FILE)}: does not match the expected schema (expected a shard plan (shards-plan.json))`);
    expect((err as Error).message).toContain('trajectories');
  });

  it('gives the plan and its non-empty shards', async () => {
    const { dlanUri, dlan } = await datasets('dlan-load', [record('traj-a', 2), record('traj-b', 1)]);
    const plan = await computePlan(createShardSources(store), settings(dlanUri), key(false), dlan, () => undefined);
    const out = fileUri(join(dir, 'good-plan'));
    await putJson(store, joinUri(out, SHARD_PLAN_FILE), plan);
    const loaded = await loadPlan(out);
    expect(loaded.plan).toEqual(plan);
    expect(loaded.shards.flatMap((s) => s.trajectories.map((t) => t.id)).sort()).toEqual(['traj-a', 'traj-b']);
  });
});
