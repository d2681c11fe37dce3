import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { artifactDigest, findStage, sealLineage } from '../../activities/experiment/lineage';
import { FileStore, getJson, putJson } from '../../activities/store';
import { baseModelNames, ExperimentFailure, ExperimentInput, LINEAGE_FORMAT, LINEAGE_FORMAT_VERSION, stageKey, type LineageRecord } from '../../data-schemas/experiment';
import { DatasetManifest, MANIFEST_FILE } from '../../data-schemas/manifest';
import { fileUri, joinUri } from '../../data-schemas/uri';
import { simulateSample } from '../helpers/datasets';
import { applicationFailureOf } from '../helpers/failures';

const dir = mkdtempSync(join(tmpdir(), 'vla-experiment-keys-'));
const store = new FileStore();
const root = fileUri(dir);
afterAll(() => rmSync(dir, { recursive: true, force: true }));


describe('stage keys', () => {
  const material = { stage: 'train' as const, code: 'train-1', settings: { learningRate: 1e-3, lora: { rank: 16, alpha: 32 } }, inputs: { shards: 'a'.repeat(64), baseModel: 'model:tiny' } };

  it('do not depend on the order an object was built in', () => {
    const reordered = { inputs: { baseModel: 'model:tiny', shards: 'a'.repeat(64) }, settings: { lora: { alpha: 32, rank: 16 }, learningRate: 1e-3 }, code: 'train-1', stage: 'train' as const };
    expect(stageKey(reordered)).toBe(stageKey(material));
    expect(stageKey(material)).toMatch(/^[0-9a-f]{64}$/);
  });

  it('change with any setting, input hash or code version', () => {
    const key = stageKey(material);
    expect(stageKey({ ...material, code: 'train-2' })).not.toBe(key);
    expect(stageKey({ ...material, settings: { ...material.settings, learningRate: 2e-3 } })).not.toBe(key);
    expect(stageKey({ ...material, inputs: { ...material.inputs, shards: 'b'.repeat(64) } })).not.toBe(key);
  });

  it('name the sweep\'s base models base, or base-<i> when the variants have several', () => {
    expect([...baseModelNames([{ baseModel: 'm' }, { baseModel: 'm' }])]).toEqual([['m', 'base']]);
    expect([...baseModelNames([{ baseModel: 'm' }, { baseModel: 'n' }, { baseModel: 'm' }])]).toEqual([
      ['m', 'base-0'],
      ['n', 'base-1'],
    ]);
  });
});

describe('experiment input', () => {
  const valid = { name: 'x', storeUri: root, datasetUri: root, variants: [{ name: 'a', baseModel: 'm' }] };

  it('fills the defaults of each stage', () => {
    const input = ExperimentInput.parse(valid);
    expect(input.relabel.labeler).toEqual({ name: 'heuristic' });
    expect(input.shard.validationFraction).toBe(0.05);
    expect(input.variants[0]).toMatchObject({ actionRepresentation: 'language', learningRate: 5e-5, lora: { rank: 16, alpha: 32 } });
    expect(input.taskQueues).toEqual({ gemini: 'vla-gemini', gpu: 'vla-gpu' });
  });

  it('refuses reserved and duplicate variant names and a model policy given by hand', () => {
    const result = ExperimentInput.safeParse({
      ...valid,
      variants: [{ name: 'base', baseModel: 'm' }, { name: 'a', baseModel: 'm' }, { name: 'a', baseModel: 'm' }],
      campaign: { policy: { kind: 'model', model: { name: 'p', backend: 'local', baseModel: 'm' } } },
    });
    expect(result.error?.issues.map((i) => i.path.join('.'))).toEqual(['variants.0.name', 'variants.2.name', 'campaign.policy']);
  });
});

describe('content hashes of artefacts', () => {
  it('hash a dataset by its trajectories and files, not by when its manifest was written', async () => {
    const uri = joinUri(root, 'sim');
    await simulateSample(store, uri, ['pick up the eggplant'], 1, 0);
    const before = await artifactDigest(store, 'd_rob', uri);
    const manifestUri = joinUri(uri, MANIFEST_FILE);
    const manifest = await getJson(store, manifestUri, DatasetManifest);
    await putJson(store, manifestUri, { ...manifest, createdAt: '2030-01-01T00:00:00.000Z' });
    expect(await artifactDigest(store, 'd_rob', uri)).toBe(before);
    const first = manifest.files[0]!;
    await putJson(store, manifestUri, { ...manifest, files: [{ ...first, sha256: 'f'.repeat(64) }, ...manifest.files.slice(1)] });
    expect(await artifactDigest(store, 'd_rob', uri)).not.toBe(before);
  });

  it('hash a folder by every file in it, and refuse a missing one', async () => {
    const adapter = joinUri(root, 'run', 'adapter');
    await store.put(joinUri(adapter, 'adapter_config.json'), '{}');
    await store.put(joinUri(adapter, 'adapter_model.safetensors'), 'weights');
    const before = await artifactDigest(store, 'adapter', adapter);
    await store.put(joinUri(adapter, 'adapter_model.safetensors'), 'weightz');
    expect(await artifactDigest(store, 'adapter', adapter)).not.toBe(before);
    const missing = await applicationFailureOf(artifactDigest(store, 'adapter', joinUri(root, 'gone')));
    expect(missing).toMatchObject({ type: ExperimentFailure.BadArtifact, nonRetryable: true });
  });
});

describe('sealed stages', () => {
  const record = (key: string, experiment: string): LineageRecord => ({
    format: LINEAGE_FORMAT,
    formatVersion: LINEAGE_FORMAT_VERSION,
    stage: 'shard',
    key,
    artifact: { kind: 'shards', uri: `${root}/shards.json`, sha256: 'c'.repeat(64) },
    inputs: [],
    settings: {},
    code: { stage: 'shard-f1-v2', gitRevision: 'test' },
    producedBy: { experiment, workflowId: `experiment:${experiment}`, childWorkflowId: 'shard-dataset:x' },
    startedAt: '2026-12-07T00:00:00.000Z',
    finishedAt: '2026-12-07T00:01:00.000Z',
    result: { any: 'thing' },
  });

  it('are found under their key; the first seal wins; another key in the folder is refused', async () => {
    const stage = joinUri(root, 'stages', 'shard', 'k');
    const key = 'd'.repeat(64);
    expect(await findStage(store, stage, key)).toBeNull();
    expect((await sealLineage(store, stage, record(key, 'first'))).producedBy.experiment).toBe('first');
    expect((await sealLineage(store, stage, record(key, 'second'))).producedBy.experiment).toBe('first');
    expect((await findStage(store, stage, key))?.producedBy.experiment).toBe('first');
    const mismatch = await applicationFailureOf(findStage(store, stage, 'e'.repeat(64)));
    expect(mismatch).toMatchObject({ type: ExperimentFailure.LineageMismatch, nonRetryable: true });
  });
});
