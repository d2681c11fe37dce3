import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lineageUriOf, sealLineage } from '../../activities/experiment/lineage';
import { LineageNotFoundError, lineageTree } from '../../activities/experiment/lineage-tree';
import { createObjectStore, FileStore, InvalidObjectError, putJson, sha256Hex } from '../../activities/store';
import { formatLineageTree } from '../../cli/commands/lineage';
import { LINEAGE_FORMAT, LINEAGE_FORMAT_VERSION, LineageRecord, STAGE_CODE_VERSIONS, stageOutputUri, type LineageInput, type StageKind } from '../../data-schemas/experiment';
import { fileUri, joinUri } from '../../data-schemas/uri';

/**
 * `vla lineage`: from any artefact of a sealed stage, the chain of lineage.json files back to the
 * raw dataset, read from a real FileStore laid out as the experiment seals its stages.
 */
describe('lineageTree', () => {
  const store = new FileStore();
  let dir: string;
  let storeUri: string;
  const datasetUri = 'file:///data/bridge-debug';
  const key = (stage: string): string => sha256Hex(`key of ${stage}`);
  const hash = (what: string): string => sha256Hex(`content of ${what}`);
  const stage = (kind: StageKind): string => stageOutputUri(storeUri, kind, key(kind));

  function record(kind: StageKind, artifact: LineageRecord['artifact'], inputs: LineageInput[]): LineageRecord {
    return LineageRecord.parse({
      format: LINEAGE_FORMAT,
      formatVersion: LINEAGE_FORMAT_VERSION,
      stage: kind,
      key: key(kind),
      artifact,
      inputs,
      settings: { seed: 0 },
      code: { stage: STAGE_CODE_VERSIONS[kind], gitRevision: 'abc1234' },
      producedBy: { experiment: 'exp-a', workflowId: 'experiment:exp-a', childWorkflowId: `${kind}:child` },
      startedAt: '2026-12-07T10:00:00Z',
      finishedAt: '2026-12-07T10:05:00Z',
      result: {},
    });
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'vla-lineage-'));
    storeUri = fileUri(join(dir, 'store'));
    const relabel = stage('relabel');
    const shard = stage('shard');
    const train = stage('train');
    await sealLineage(store, relabel, record('relabel', { kind: 'd_lan', uri: relabel, sha256: hash('d_lan') }, [{ role: 'dataset', kind: 'd_rob', uri: datasetUri, sha256: hash('d_rob') }]));
    await store.put(joinUri(shard, 'shards.json'), '{}');
    await sealLineage(
      store,
      shard,
      record('shard', { kind: 'shards', uri: joinUri(shard, 'shards.json'), sha256: hash('shards') }, [
        { role: 'dataset', kind: 'd_lan', uri: relabel, sha256: hash('d_lan'), lineageUri: lineageUriOf(relabel) },
      ]),
    );
    await store.put(joinUri(train, 'adapter', 'adapter_model.safetensors'), 'weights');
    await sealLineage(
      store,
      train,
      record('train', { kind: 'adapter', uri: joinUri(train, 'adapter'), sha256: hash('adapter') }, [
        { role: 'shards', kind: 'shards', uri: joinUri(shard, 'shards.json'), sha256: hash('shards'), lineageUri: lineageUriOf(shard) },
        { role: 'baseModel', kind: 'model', uri: 'google/gemma-3-4b-it' },
      ]),
    );
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('follows each input back to the raw dataset, from a file deep inside the stage folder', async () => {
    const tree = await lineageTree(store, joinUri(stage('train'), 'adapter', 'adapter_model.safetensors'));
    expect(tree.lineageUri).toBe(lineageUriOf(stage('train')));
    expect(tree.record.stage).toBe('train');
    const [shards, base] = tree.inputs;
    expect(base).toEqual({ role: 'baseModel', kind: 'model', uri: 'google/gemma-3-4b-it' });
    expect(shards?.tree?.record.stage).toBe('shard');
    const dLan = shards?.tree?.inputs[0];
    expect(dLan?.tree?.record.stage).toBe('relabel');
    expect(dLan?.tree?.inputs).toEqual([{ role: 'dataset', kind: 'd_rob', uri: datasetUri, sha256: hash('d_rob') }]);
  });

  it('finds the same record from the stage folder, from its lineage.json, from an artefact folder, and from a file artefact', async () => {
    const train = stage('train');
    const fromFile = await lineageTree(store, joinUri(train, 'adapter', 'adapter_model.safetensors'));
    for (const uri of [train, `${train}/`, lineageUriOf(train), joinUri(train, 'adapter')]) expect(await lineageTree(store, uri)).toEqual(fromFile);
    // A file artefact: nothing can be under shards.json, so the search goes on in its folder.
    const shard = await lineageTree(store, joinUri(stage('shard'), 'shards.json'));
    expect(shard.lineageUri).toBe(lineageUriOf(stage('shard')));
  });

  it('names the URI when no lineage.json is there or above it', async () => {
    const outside = fileUri(join(dir, 'elsewhere', 'adapter'));
    const err: unknown = await lineageTree(store, outside).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LineageNotFoundError);
    expect((err as Error).message).toContain(`${outside}: no lineage.json there or in any folder above it`);
    // The stages folder itself is above every stage: nothing seals it.
    await expect(lineageTree(store, joinUri(storeUri, 'stages', 'train'))).rejects.toThrow(LineageNotFoundError);
    // A store confined to the store root looks no further up than its root, and says so the same way.
    const confined = createObjectStore({ roots: { readWrite: [], readOnly: [storeUri] } });
    const searched: unknown = await lineageTree(confined, joinUri(storeUri, 'stages', 'train')).catch((e: unknown) => e);
    expect(searched).toBeInstanceOf(LineageNotFoundError);
    expect((searched as LineageNotFoundError).searched.at(-1)).toBe(joinUri(storeUri, 'lineage.json'));
    expect((await lineageTree(confined, joinUri(stage('train'), 'adapter'))).record.stage).toBe('train');
  });

  it('refuses a lineage.json that is not a lineage record, naming it', async () => {
    const bogus = joinUri(storeUri, 'stages', 'bogus', 'x');
    await putJson(store, lineageUriOf(bogus), { format: 'something else' });
    await expect(lineageTree(store, joinUri(bogus, 'adapter'))).rejects.toThrow(InvalidObjectError);
    await expect(lineageTree(store, bogus)).rejects.toThrow(lineageUriOf(bogus));
  });

  it('marks a cycle instead of following it, and an input whose lineage is gone as missing', async () => {
    const a = joinUri(storeUri, 'cycle', 'a');
    const b = joinUri(storeUri, 'cycle', 'b');
    const gone = joinUri(storeUri, 'cycle', 'deleted');
    await sealLineage(store, a, record('shard', { kind: 'shards', uri: joinUri(a, 'shards.json'), sha256: hash('a') }, [{ role: 'dataset', kind: 'd_lan', uri: b, sha256: hash('b'), lineageUri: lineageUriOf(b) }]));
    await sealLineage(
      store,
      b,
      record('relabel', { kind: 'd_lan', uri: b, sha256: hash('b') }, [
        { role: 'dataset', kind: 'd_rob', uri: a, sha256: hash('a'), lineageUri: lineageUriOf(a) },
        { role: 'other', kind: 'd_rob', uri: gone, sha256: hash('gone'), lineageUri: lineageUriOf(gone) },
      ]),
    );
    const tree = await lineageTree(store, a);
    const inner = tree.inputs[0]?.tree;
    expect(inner?.record.stage).toBe('relabel');
    expect(inner?.inputs.map((i) => [i.role, i.unresolved, i.tree])).toEqual([
      ['dataset', 'cycle', undefined],
      ['other', 'missing', undefined],
    ]);
    expect(formatLineageTree(tree).slice(2)).toEqual([
      `  dataset: relabel -> d_lan ${b} sha256 ${hash('b').slice(0, 12)}`,
      `      code ${STAGE_CODE_VERSIONS.relabel} (git abc1234), experiment exp-a, finished 2026-12-07T10:05:00Z`,
      `    dataset: d_rob ${a} sha256 ${hash('a').slice(0, 12)} (cycle: its lineage ${lineageUriOf(a)} is one of its own ancestors)`,
      `    other: d_rob ${gone} sha256 ${hash('gone').slice(0, 12)} (its lineage ${lineageUriOf(gone)} is missing)`,
    ]);
  });

  it('prints one node per stage, two spaces deeper per level, and named inputs as leaves', async () => {
    const tree = await lineageTree(store, stage('train'));
    const made = (kind: StageKind): string => `code ${STAGE_CODE_VERSIONS[kind]} (git abc1234), experiment exp-a, finished 2026-12-07T10:05:00Z`;
    expect(formatLineageTree(tree)).toEqual([
      `train -> adapter ${joinUri(stage('train'), 'adapter')} sha256 ${hash('adapter').slice(0, 12)}`,
      `    ${made('train')}`,
      `  shards: shard -> shards ${joinUri(stage('shard'), 'shards.json')} sha256 ${hash('shards').slice(0, 12)}`,
      `      ${made('shard')}`,
      `    dataset: relabel -> d_lan ${stage('relabel')} sha256 ${hash('d_lan').slice(0, 12)}`,
      `        ${made('relabel')}`,
      `      dataset: d_rob ${datasetUri} sha256 ${hash('d_rob').slice(0, 12)}`,
      '  baseModel: model google/gemma-3-4b-it (named, not hashed)',
    ]);
  });
});
