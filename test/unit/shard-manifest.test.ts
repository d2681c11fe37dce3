import { describe, expect, it } from 'vitest';
import { buildShardManifest, sameShardSet, shardEntryOf, sidecarDescribes, sidecarMismatch } from '../../activities/shard/manifest';
import { planKeyConflict, plannedShards, trajectoriesPerSplit } from '../../activities/shard/plan';
import { ShardManifest, ShardPlanFile, type PlannedTrajectory, type ShardPlanKey } from '../../data-schemas/shard';

const key: ShardPlanKey = {
  datasetManifestSha256: 'd'.repeat(64),
  promptVersion: 'v2',
  seed: 3,
  validationFraction: 0.2,
  targetShardBytes: 1 << 20,
  directionLabels: false,
};

function trajectory(id: string, split: 'train' | 'validation', shard: number, steps: number, perStep: number): PlannedTrajectory {
  return { id, record: `records/${id}.json`, recordSha256: 'a'.repeat(64), contentSha256: 'c'.repeat(64), split, shard, samples: 1 + perStep * steps, estimatedBytes: 1000 };
}

function planOf(directionLabels: boolean): ShardPlanFile {
  const perStep = directionLabels ? 3 : 2;
  return ShardPlanFile.parse({
    formatVersion: 1,
    key: { ...key, directionLabels },
    datasetUri: 'file:///data/dlan',
    datasetName: 'bridge-dlan',
    labeler: { name: 'heuristic', version: 'h2' },
    plannedAt: '2026-01-01T00:00:00.000Z',
    shardsPerSplit: { train: 2, validation: 1 },
    trajectories: [trajectory('t1', 'train', 0, 2, perStep), trajectory('t2', 'train', 1, 4, perStep), trajectory('t3', 'train', 0, 1, perStep), trajectory('v1', 'validation', 0, 3, perStep)],
  });
}

/** The sidecars of every planned shard, as writeShard would leave them. */
function sidecarsOf(plan: ShardPlanFile) {
  return plannedShards(plan.trajectories).map((s, i) => shardEntryOf(s, s.trajectories, { sha256: String(i).repeat(64), bytes: 10_240 * (i + 1) }));
}

describe('shard sidecars', () => {
  const plan = planOf(false);
  const [first] = plannedShards(plan.trajectories);

  it('record the shard path, its samples summed over its trajectories and the trajectory ids in plan order', () => {
    const entry = shardEntryOf(first!, first!.trajectories, { sha256: 'e'.repeat(64), bytes: 2048 });
    expect(entry).toEqual({ path: 'train/shard-000000.tar', split: 'train', index: 0, sha256: 'e'.repeat(64), bytes: 2048, samples: 5 + 3, trajectories: ['t1', 't3'] });
  });

  it('describe their planned shard only with its path and its trajectories in order', () => {
    const entry = shardEntryOf(first!, first!.trajectories, { sha256: 'e'.repeat(64), bytes: 2048 });
    expect(sidecarDescribes(entry, first!)).toBe(true);
    expect(sidecarDescribes({ ...entry, trajectories: ['t3', 't1'] }, first!)).toBe(false);
    expect(sidecarDescribes({ ...entry, path: 'train/shard-000001.tar' }, first!)).toBe(false);
  });

  it('name what changed in a written shard: other trajectories, then another size', () => {
    const entry = shardEntryOf(first!, first!.trajectories, { sha256: 'e'.repeat(64), bytes: 2048 });
    const shard = { uri: 'file:///out/train/shard-000000.tar', bytes: 2048 };
    expect(sidecarMismatch(entry, ['t1', 't3'], 'file:///out/train/shard-000000.tar.json', shard)).toBeUndefined();
    expect(sidecarMismatch(entry, ['t1'], 'file:///out/train/shard-000000.tar.json', shard)).toBe('its sidecar file:///out/train/shard-000000.tar.json lists other trajectories than the plan');
    expect(sidecarMismatch(entry, ['t1', 't3'], 'file:///out/train/shard-000000.tar.json', { ...shard, bytes: 1024 })).toBe('file:///out/train/shard-000000.tar is 1024 bytes but its sidecar records 2048');
  });
});

describe('shards.json', () => {
  it('counts trajectories, samples and shards per split and samples per policy stage', () => {
    const plan = planOf(false);
    const entries = sidecarsOf(plan);
    const manifest = buildShardManifest(plan, entries, '2026-02-02T00:00:00.000Z');
    expect(ShardManifest.parse(manifest)).toEqual(manifest);
    expect(manifest.source).toEqual({ dataset: 'file:///data/dlan', datasetManifestSha256: 'd'.repeat(64), labeler: { name: 'heuristic', version: 'h2' }, promptVersion: 'v2' });
    expect(manifest.split).toEqual({ validationFraction: 0.2, seed: 3 });
    expect(manifest.counts.bySplit).toEqual({ train: { trajectories: 3, samples: 5 + 9 + 3, shards: 2 }, validation: { trajectories: 1, samples: 7, shards: 1 } });
    // 10 steps over four trajectories: one subtasks sample per trajectory, one motion_plan and one action per step.
    expect(manifest.counts.byStage).toEqual({ subtasks: 4, motion_plan: 10, action: 10 });
    expect(manifest.counts.shards).toBe(3);
    expect(manifest.counts.samples).toBe(24);
    expect(manifest.counts.bytes).toBe(10_240 * (1 + 2 + 3));
    expect(manifest.shards.map((s) => s.path)).toEqual(['train/shard-000000.tar', 'train/shard-000001.tar', 'validation/shard-000000.tar']);
  });

  it('counts direction samples only in a shard set made with direction labels', () => {
    const plan = planOf(true);
    const manifest = buildShardManifest(plan, sidecarsOf(plan), '2026-02-02T00:00:00.000Z');
    expect(manifest.counts.byStage).toEqual({ subtasks: 4, motion_plan: 10, action: 10, direction: 10 });
    expect(manifest.counts.samples).toBe(4 + 30);
  });

  it('is the same shard set when only createdAt differs', () => {
    const plan = planOf(false);
    const a = buildShardManifest(plan, sidecarsOf(plan), '2026-02-02T00:00:00.000Z');
    const b = buildShardManifest(plan, sidecarsOf(plan), '2026-03-03T00:00:00.000Z');
    expect(sameShardSet(a, b)).toBe(true);
    const otherBytes = sidecarsOf(plan).map((e, i) => (i === 0 ? { ...e, sha256: 'f'.repeat(64) } : e));
    expect(sameShardSet(a, buildShardManifest(plan, otherBytes, '2026-02-02T00:00:00.000Z'))).toBe(false);
  });
});

describe('the plan key', () => {
  const planUri = 'file:///out/shards-plan.json';

  it('lets a run with the same key use the plan', () => {
    expect(planKeyConflict(planUri, key, { ...key })).toBeUndefined();
  });

  it.each([
    ['datasetManifestSha256', { datasetManifestSha256: 'e'.repeat(64) }, 'sha256 ' + 'e'.repeat(64)],
    ['seed', { seed: 4 }, 'seed 4'],
    ['validationFraction', { validationFraction: 0.1 }, 'validationFraction 0.1'],
    ['targetShardBytes', { targetShardBytes: 2 << 20 }, `targetShardBytes ${2 << 20}`],
    ['promptVersion', { promptVersion: 'v3' }, 'prompts v3'],
    ['directionLabels', { directionLabels: true }, 'directionLabels true'],
  ])('refuses a run with another %s, naming the plan and both values', (_field, change, named) => {
    const message = planKeyConflict(planUri, key, { ...key, ...change });
    expect(message).toContain(planUri);
    expect(message).toContain(named);
    expect(message).toContain('choose a new outputUri');
  });

  it('counts trajectories per split', () => {
    expect(trajectoriesPerSplit(planOf(false).trajectories)).toEqual({ train: 3, validation: 1 });
    expect(trajectoriesPerSplit([])).toEqual({ train: 0, validation: 0 });
  });
});
