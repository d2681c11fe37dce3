import fc from 'fast-check';
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  STAGE_ORDER,
  assignShards,
  buildSamples,
  estimateSampleBytes,
  plannedShards,
  sampleKey,
  shardCount,
  splitOf,
  tarEntryBytes,
} from '../../activities/shard/plan';
import { DLanRecord } from '../../data-schemas/d-lan';
import { actionPrompt, directionPrompt, formatActionChunk, formatSubtaskList, motionPlanPrompt, subtasksPrompt } from '../../data-schemas/prompts';
import { ShardSample, defaultShardOutput, shardPath } from '../../data-schemas/shard';

const safeId = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._-]{0,40}$/);

function record(id: string, steps: number): DLanRecord {
  return DLanRecord.parse({
    formatVersion: 1,
    trajectoryId: id,
    instruction: 'put the carrot on the plate',
    steps: Array.from({ length: steps }, (_, i) => ({
      index: i,
      keyFrame: `frames/${id}/image_0/${String(i * 3).padStart(3, '0')}.${i % 2 ? 'png' : 'jpg'}`,
      sourceSteps: [i * 3, i * 3 + 3],
      subtask: i === 0 ? 'Move to the carrot' : `Subtask ${i}`,
      motionPlan: `Move forward ${i} cm with the gripper open.`,
      actionChunk: [
        [0.012 * i, -0.0031, 0, 1],
        [0, 0, -0.00001, 0],
      ],
    })),
    auxiliary: { subtaskCompletion: [], directions: [] },
    labeler: { name: 'heuristic', version: 'h1' },
    provenance: {
      sourceDataset: 'file:///data/bridge',
      sourceRecord: `trajectories/${id}.json`,
      sourceRecordSha256: '0'.repeat(64),
      labeledAt: '2025-01-01T00:00:00.000Z',
    },
  });
}

describe('sample keys', () => {
  it('have no dots, match the ShardSample key pattern, and are unique across ids, stages and steps', () => {
    fc.assert(
      fc.property(fc.uniqueArray(safeId, { minLength: 1, maxLength: 20 }), fc.integer({ min: 1, max: 12 }), (ids, steps) => {
        const keys = new Set<string>();
        for (const id of ids) {
          for (const stage of STAGE_ORDER) {
            for (let s = 0; s < steps; s++) {
              const key = sampleKey(id, stage, s);
              expect(key).not.toContain('.');
              expect(key).toMatch(/^[A-Za-z0-9_-]+$/);
              keys.add(key);
            }
          }
        }
        expect(keys.size).toBe(ids.length * STAGE_ORDER.length * steps);
      }),
    );
  });

  it('keeps ids differing only in "." vs "_" apart', () => {
    expect(sampleKey('a.b', 'action', 1)).not.toBe(sampleKey('a_b', 'action', 1));
    expect(sampleKey('a.b', 'action', 1)).toMatch(/^a_b__[0-9a-f]{8}__action__001$/);
  });
});

describe('split and shard assignment', () => {
  const contentOf = (key: string): string => createHash('sha256').update(key).digest('hex');
  const trajectories = fc.uniqueArray(safeId, { minLength: 1, maxLength: 200 }).map((ids) =>
    ids.map((id, i) => ({ id, record: `records/${id}.json`, recordSha256: 'a'.repeat(64), contentSha256: contentOf(id), samples: 1 + 2 * ((i % 5) + 1), estimatedBytes: 10_000 + (i % 7) * 5_000 })),
  );
  const options = fc.record({ seed: fc.integer({ min: 0, max: 1000 }), validationFraction: fc.double({ min: 0, max: 0.5, noNaN: true }), targetShardBytes: fc.integer({ min: 65_536, max: 2_000_000 }) });

  it('puts every trajectory in exactly one split and one shard (zero leakage), whole trajectories per shard', () => {
    fc.assert(
      fc.property(trajectories, options, (ts, opts) => {
        const { trajectories: planned, shardsPerSplit } = assignShards(ts, opts);
        expect(planned.map((t) => t.id).sort()).toEqual(ts.map((t) => t.id).sort());
        const shards = plannedShards(planned);
        const seen = new Map<string, string>();
        for (const s of shards) {
          expect(s.trajectories.length).toBeGreaterThan(0);
          expect(s.index).toBeLessThan(shardsPerSplit[s.split]);
          for (const t of s.trajectories) {
            expect(seen.has(t.id), `${t.id} in two shards`).toBe(false);
            seen.set(t.id, s.split);
            expect(t.split).toBe(s.split);
            expect(t.split).toBe(splitOf(t.contentSha256 as string, opts.seed, opts.validationFraction));
          }
        }
        expect(seen.size).toBe(ts.length);
        const train = new Set(planned.filter((t) => t.split === 'train').map((t) => t.id));
        expect(planned.filter((t) => t.split === 'validation').some((t) => train.has(t.id))).toBe(false);
      }),
    );
  });

  it('splits by recording: copies of one episode under different ids share one split and one shard', () => {
    const recordings = 40;
    const copies = ['a', 'b', 'c'];
    const ts = Array.from({ length: recordings }, (_, r) =>
      copies.map((c) => ({ id: `import-${c}-${r}`, record: `r/${c}${r}.json`, recordSha256: 'a'.repeat(64), contentSha256: contentOf(`recording ${r}`), samples: 3, estimatedBytes: 1000 })),
    ).flat();
    fc.assert(
      fc.property(options, (opts) => {
        const { trajectories: planned } = assignShards(ts, { ...opts, validationFraction: Math.max(opts.validationFraction, 0.2) });
        const placeOf = new Map<string, Set<string>>();
        for (const t of planned) {
          const places = placeOf.get(t.contentSha256 as string) ?? new Set<string>();
          places.add(`${t.split}/${t.shard}`);
          placeOf.set(t.contentSha256 as string, places);
        }
        expect(placeOf.size).toBe(recordings);
        for (const places of placeOf.values()) expect([...places]).toHaveLength(1);
      }),
    );
  });

  it('is stable across runs and independent of manifest order', () => {
    fc.assert(
      fc.property(trajectories, options, fc.infiniteStream(fc.nat()), (ts, opts, rnd) => {
        const shuffled = [...ts].map((t) => ({ t, r: rnd.next().value as number })).sort((a, b) => a.r - b.r).map((x) => x.t);
        expect(assignShards(shuffled, opts)).toEqual(assignShards(ts, opts));
      }),
    );
  });

  it('sizes each split by its estimated bytes', () => {
    expect(shardCount(0, 100)).toBe(1);
    expect(shardCount(250, 100)).toBe(3);
    const ts = Array.from({ length: 400 }, (_, i) => ({ id: `t${i}`, record: `r/t${i}.json`, recordSha256: 'a'.repeat(64), contentSha256: contentOf(`t${i}`), samples: 3, estimatedBytes: 1000 }));
    const { shardsPerSplit, trajectories: planned } = assignShards(ts, { seed: 3, validationFraction: 0.25, targetShardBytes: 20_000 });
    const val = planned.filter((t) => t.split === 'validation').length;
    expect(val).toBeGreaterThan(60);
    expect(val).toBeLessThan(140);
    expect(shardsPerSplit).toEqual({ train: Math.ceil(((400 - val) * 1000) / 20_000), validation: Math.ceil((val * 1000) / 20_000) });
    expect(assignShards(ts, { seed: 3, validationFraction: 0, targetShardBytes: 20_000 }).shardsPerSplit.validation).toBe(0);
  });

  it('validation fraction of about the requested share', () => {
    const contents = Array.from({ length: 5000 }, (_, i) => contentOf(`traj-${i}`));
    const share = contents.filter((c) => splitOf(c, 0, 0.1) === 'validation').length / contents.length;
    expect(share).toBeGreaterThan(0.085);
    expect(share).toBeLessThan(0.115);
  });
});

describe('samples of a D_lan record', () => {
  it('gives 1 + 2 * steps valid samples in (stage, step) order with the prompts and targets of data-schemas/prompts', () => {
    fc.assert(
      fc.property(safeId, fc.integer({ min: 1, max: 15 }), (id, steps) => {
        const r = record(id, steps);
        const samples = buildSamples(r);
        expect(samples).toHaveLength(1 + 2 * steps);
        expect(samples.map((s) => `${s.sample.stage}:${s.sample.step}`)).toEqual([
          'subtasks:0',
          ...r.steps.map((s) => `motion_plan:${s.index}`),
          ...r.steps.map((s) => `action:${s.index}`),
        ]);
        for (const s of samples) {
          expect(ShardSample.parse(JSON.parse(s.json.toString('utf8')))).toEqual(s.sample);
          expect(s.sample.image).toBe(s.framePath.endsWith('.png') ? 'png' : 'jpg');
        }
        const [first] = samples;
        expect(first!.sample.messages[0].content[1].text).toBe(subtasksPrompt(r.instruction));
        expect(first!.sample.messages[1].content[0].text).toBe(formatSubtaskList(r.steps.map((s) => s.subtask)));
        expect(first!.framePath).toBe(r.steps[0]!.keyFrame);
        for (const step of r.steps) {
          const mp = samples.find((s) => s.sample.stage === 'motion_plan' && s.sample.step === step.index)!;
          expect(mp.sample.messages[0].content[1].text).toBe(motionPlanPrompt(step.subtask));
          expect(mp.sample.messages[1].content[0].text).toBe(step.motionPlan);
          const act = samples.find((s) => s.sample.stage === 'action' && s.sample.step === step.index)!;
          expect(act.framePath).toBe(step.keyFrame);
          expect(act.sample.messages[0].content[1].text).toBe(actionPrompt(step.subtask, step.motionPlan));
          expect(act.sample.messages[1].content[0].text).toBe(formatActionChunk(step.actionChunk));
        }
      }),
    );
  });

  it('lists a subtask spread over consecutive steps once in the stage-1 target, as an episode walks it', () => {
    const r = record('t-runs', 6);
    const names = ['Move to carrot', 'Move to carrot', 'Grasp carrot', 'Move to plate', 'Move to plate', 'Move to carrot'];
    const withRuns = DLanRecord.parse({ ...r, steps: r.steps.map((s, i) => ({ ...s, subtask: names[i] })) });
    const samples = buildSamples(withRuns);
    const target = samples[0]!.sample.messages[1].content[0].text;
    expect(target).toBe(formatSubtaskList(['Move to carrot', 'Grasp carrot', 'Move to plate', 'Move to carrot']));
    // The per-step stages keep every step: a subtask still gets one motion plan and chunk per step.
    expect(samples.filter((s) => s.sample.stage === 'motion_plan').map((s) => s.sample.messages[0].content[1].text)).toEqual(names.map((n) => motionPlanPrompt(n)));
  });

  it('with direction labels, adds one direction sample per step: its key frame and subtask -> the label of each source step', () => {
    const r = record('t-dir', 3);
    const words = ['none', 'forward', 'left', 'up', 'down', 'right', 'backward', 'forward', 'none'] as const;
    const withDirections = DLanRecord.parse({ ...r, auxiliary: { subtaskCompletion: [], directions: words.map((direction, sourceStep) => ({ sourceStep, direction })) } });
    expect(buildSamples(withDirections)).toHaveLength(1 + 2 * 3);
    const samples = buildSamples(withDirections, { directionLabels: true });
    expect(samples).toHaveLength(1 + 3 * 3);
    const direction = samples.filter((s) => s.sample.stage === 'direction');
    expect(direction.map((s) => s.sample.step)).toEqual([0, 1, 2]);
    direction.forEach((s, i) => {
      const step = withDirections.steps[i]!;
      expect(s.framePath).toBe(step.keyFrame);
      expect(s.sample.key).toBe(sampleKey('t-dir', 'direction', i));
      expect(s.sample.messages[0].content[1].text).toBe(directionPrompt(step.subtask, 3));
      expect(s.sample.messages[1].content[0].text).toBe(words.slice(3 * i, 3 * i + 3).join(', '));
    });
    // A record whose labels do not cover its steps is named, not trained on half-labelled.
    const short = DLanRecord.parse({ ...withDirections, auxiliary: { subtaskCompletion: [], directions: withDirections.auxiliary.directions.slice(0, 7) } });
    expect(() => buildSamples(short, { directionLabels: true })).toThrow('trajectory t-dir: auxiliary.directions has no label for source step 7 (step 2)');
  });

  it('renders the action chunk as the model sees it', () => {
    const act = buildSamples(record('t1', 2)).find((s) => s.sample.stage === 'action' && s.sample.step === 1)!;
    expect(act.sample.messages[1].content[0].text).toBe('[[0.012, -0.003, 0.000, 1], [0.000, 0.000, 0.000, 0]]');
  });

  it('rejects a key frame that is neither jpg nor png', () => {
    const r = record('t1', 1);
    r.steps[0]!.keyFrame = 'frames/t1/image_0/000.webp';
    expect(() => buildSamples(r)).toThrow(/000\.webp is neither/);
  });

  it('estimates tar bytes from the frame sizes', () => {
    const samples = buildSamples(record('t1', 1));
    const est = estimateSampleBytes(samples, () => 1000);
    expect(est).toBe(samples.reduce((n, s) => n + tarEntryBytes(`${s.sample.key}.json`, s.json.length) + 512 + 1024, 0));
    expect(tarEntryBytes('x'.repeat(101), 1)).toBe(512 + 512 + 512 + 512);
  });
});

describe('paths', () => {
  it('names shards and the default output root', () => {
    expect(shardPath('train', 3)).toBe('train/shard-000003.tar');
    expect(defaultShardOutput('s3://b/d_lan', 7, 0.05)).toBe('s3://b/d_lan/shards/v2-s7-v5');
  });
});
