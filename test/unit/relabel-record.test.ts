import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { DLanRecord } from '../../data-schemas/d-lan';
import type { DRobTrajectory } from '../../data-schemas/d-rob';
import { ChunkAggregation, type CleanedTrajectory, type SegmentLabel } from '../../data-schemas/relabel';
import { readBridgeEpisodes } from '../../activities/data';
import { simulateEpisodes, type PendingTrajectory } from '../../activities/robot/sim';
import { auxiliaryLabels } from '../../activities/relabel/auxiliary';
import { cleanTrajectory } from '../../activities/relabel/clean';
import { heuristicSegments } from '../../activities/relabel/heuristic';
import { buildDLanRecord, validateSegments, type BuildDLanRecordArgs } from '../../activities/relabel/record';
import { findSafetyViolation } from '../../activities/robot/station/safety';
import { SafetyLimits } from '../../data-schemas/station';
import { BRIDGE_SAMPLE } from '../../infra/config';

const seg = (start: number, end: number, subtask = 'Move to carrot'): SegmentLabel => ({ start, end, subtask, motionPlan: 'Move forward (about 2 cm), keeping the gripper open.' });

function args(trajectory: DRobTrajectory, overrides: Partial<BuildDLanRecordArgs> = {}): BuildDLanRecordArgs {
  const cleaned = cleanTrajectory(trajectory);
  return {
    trajectory,
    cleaned,
    segments: heuristicSegments(cleaned, trajectory.instruction),
    labeler: { name: 'heuristic', version: 'h1' },
    sourceDataset: 'file:///tmp/d-rob',
    sourceRecord: `trajectories/${trajectory.id}.json`,
    sourceRecordSha256: 'b'.repeat(64),
    labeledAt: '2026-01-01T00:00:00Z',
    aggregation: ChunkAggregation.parse({}),
    ...overrides,
  };
}

describe('validateSegments', () => {
  it('accepts a contiguous covering', () => {
    expect(validateSegments([seg(0, 3), seg(3, 4), seg(4, 10)], 10)).toEqual([]);
    expect(validateSegments([seg(0, 1)], 1)).toEqual([]);
  });

  it('names gaps at the start, between segments and at the end', () => {
    expect(validateSegments([seg(2, 5), seg(7, 9)], 10)).toEqual([
      'Steps 0 to 1 are not covered: the first segment must start at step 0.',
      'Steps 5 to 6 are not covered between segment 0 (ends at 5) and segment 1 (starts at 7); each segment must start where the previous one ends.',
      'Step 9 is not covered: the last segment must end at 10 (end is exclusive).',
    ]);
  });

  it('names overlaps, out-of-range, empty and unsorted segments', () => {
    expect(validateSegments([seg(0, 5), seg(4, 10)], 10)).toEqual([
      'Segment 1 (start 4) overlaps segment 0, which ends at 5; each segment must start exactly where the previous one ends.',
    ]);
    expect(validateSegments([seg(0, 12)], 10)).toEqual([
      "Segment 0 (start 0, end 12) ends past the trajectory's 10 steps; end is exclusive, so the last segment must end at exactly 10.",
    ]);
    expect(validateSegments([seg(0, 5), seg(5, 5), seg(5, 10)], 10)).toEqual(['Segment 1 (start 5, end 5) is empty or reversed; end is exclusive and must be greater than start.']);
    expect(validateSegments([seg(5, 10), seg(0, 5)], 10)).toEqual(['Segment 1 (start 0) is listed after segment 0 (start 5); list segments in order of their start step.']);
    expect(validateSegments([seg(-1, 10)], 10)[0]).toMatch(/starts before step 0/);
    expect(validateSegments([seg(0, 2.5), seg(2.5, 10)], 10)[0]).toMatch(/whole step numbers/);
    expect(validateSegments([{ ...seg(0, 10), subtask: ' ' }], 10)[0]).toMatch(/empty subtask/);
  });

  it('rejects no segments and no steps', () => {
    expect(validateSegments([], 10)).toEqual(['No segments were given: cover source steps 0 to 9 with contiguous [start, end) ranges (end exclusive).']);
    expect(validateSegments([seg(0, 1)], 0)).toHaveLength(1);
  });
});

describe('auxiliaryLabels', () => {
  const cleaned: CleanedTrajectory = {
    steps: 6,
    translation: [
      [0, 0, 0],
      [0.01, 0.002, 0],
      [0, -0.005, 0.001],
      [0, 0, 0.004],
      [-0.003, 0, -0.001],
      [0.001, 0.001, 0],
    ],
    gripper: [1, 1, 0, 0, 1, 1],
  };

  it('labels each source step with its dominant Bridge direction', () => {
    expect(auxiliaryLabels([seg(0, 6)], cleaned).directions.map((d) => d.direction)).toEqual(['none', 'forward', 'right', 'up', 'backward', 'none']);
  });

  it('gives one completion tuple per run of equal subtasks, the last ending one past the last step', () => {
    const segments = [seg(0, 1, 'Move to carrot'), seg(1, 2, 'Move to carrot'), seg(2, 4, 'Grasp carrot'), seg(4, 5, 'Move to plate'), seg(5, 6, 'Release carrot')];
    expect(auxiliaryLabels(segments, cleaned).subtaskCompletion).toEqual([
      { fromStep: 0, toStep: 2, subtask: 'Move to carrot' },
      { fromStep: 2, toStep: 3, subtask: 'Grasp carrot' },
      { fromStep: 3, toStep: 4, subtask: 'Move to plate' },
      { fromStep: 4, toStep: 5, subtask: 'Release carrot' },
    ]);
  });
});

describe('buildDLanRecord on simulated trajectories', () => {
  const sims: PendingTrajectory[] = [];
  beforeAll(async () => {
    for await (const p of simulateEpisodes({ tasks: ['put the carrot on the plate', 'put the eggplant in the pan then lift the fish'], n: 2, seed: 3, cameras: ['image_0', 'image_1'] })) {
      sims.push(p);
    }
  }, 60_000);

  it('conserves each segment displacement in its chunk and points key frames at real frames', () => {
    for (const { trajectory, files } of sims) {
      const a = args(trajectory);
      const record = buildDLanRecord(a);
      expect(DLanRecord.safeParse(record).success).toBe(true);
      expect(record.steps.map((s) => s.sourceSteps)).toEqual(a.segments.map((s) => [s.start, s.end]));
      for (const step of record.steps) {
        const [start, end] = step.sourceSteps;
        for (let k = 0; k < 3; k++) {
          let expected = 0;
          for (let t = start; t < end; t++) expected += a.cleaned.translation[t]![k]!;
          const got = step.actionChunk.reduce((s, c) => s + c[k]!, 0);
          expect(Math.abs(got - expected)).toBeLessThan(1e-9);
        }
        expect(step.keyFrame).toBe(trajectory.steps[start]!.frames.image_0);
        expect(files.has(step.keyFrame)).toBe(true);
        const oversized = a.cleaned.translation.slice(start, end).some((d) => Math.hypot(...d) > a.aggregation.absoluteMeters);
        if (!oversized) expect(step.actionChunk.length).toBeLessThanOrEqual(end - start);
      }
      expect(record.auxiliary.directions).toHaveLength(trajectory.steps.length);
      expect(record.provenance.sourceDataset).toBe('file:///tmp/d-rob');
    }
  });

  it('uses the requested key-frame camera and names the trajectory when it is missing', () => {
    const { trajectory } = sims[0]!;
    const record = buildDLanRecord(args(trajectory, { keyFrameCamera: 'image_1' }));
    expect(record.steps[0]!.keyFrame).toBe(trajectory.steps[0]!.frames.image_1);
    expect(() => buildDLanRecord(args(trajectory, { keyFrameCamera: 'image_3' }))).toThrow(new RegExp(`trajectory ${trajectory.id}: steps\\[0\\]\\.frames has no image_3`));
  });

  it('throws naming the trajectory and the problem for bad segments or a bad record', () => {
    const { trajectory } = sims[0]!;
    const n = trajectory.steps.length;
    expect(() => buildDLanRecord(args(trajectory, { segments: [seg(0, n - 1)] }))).toThrow(new RegExp(`trajectory ${trajectory.id}: segments: Step ${n - 1} is not covered`));
    expect(() => buildDLanRecord(args(trajectory, { labeledAt: 'yesterday' }))).toThrow(new RegExp(`trajectory ${trajectory.id}: D_lan record is invalid: provenance\\.labeledAt`));
    const cleaned = cleanTrajectory(trajectory);
    expect(() => buildDLanRecord(args(trajectory, { cleaned: { ...cleaned, steps: n - 1 } }))).toThrow(/cleaned trajectory has/);
  });
});

describe('buildDLanRecord: every chunk command passes a default station', () => {
  const limits = SafetyLimits.parse({});
  /** Only the per-step limit: the workspace box depends on where the arm is when a chunk runs. */
  const stepLimitOnly = { ...limits, bounds: { min: [-100, -100, -100] as [number, number, number], max: [100, 100, 100] as [number, number, number] } };
  const delta = fc.oneof(fc.double({ min: -0.015, max: 0.015, noNaN: true }), fc.double({ min: -0.1, max: 0.1, noNaN: true }));
  const trajectory = fc.array(fc.tuple(delta, delta, delta, fc.integer({ min: 0, max: 7 })), { minLength: 1, maxLength: 50 }).map((rows): DRobTrajectory => {
    let pos = [0.3, 0, 0.1];
    let g = 1;
    return {
      formatVersion: 1,
      id: 'prop-t',
      instruction: 'put the carrot on the plate',
      robot: 'widowx_250s',
      controlHz: 5,
      cameras: ['image_0'],
      source: { kind: 'simulator', simulatorVersion: 'prop', task: 'put the carrot on the plate', seed: 0, episodeIndex: 0, success: true },
      steps: rows.map(([dx, dy, dz, r], index) => {
        if (r === 0) g = 1 - g;
        const state = [pos[0]!, pos[1]!, pos[2]!, 0, 0, 0, g] as DRobTrajectory['steps'][number]['state'];
        pos = [pos[0]! + dx, pos[1]! + dy, pos[2]! + dz];
        return { index, frames: { image_0: `frames/${index}.jpg` }, state, action: [dx, dy, dz, 0, 0, 0, g], isFirst: index === 0, isLast: index === rows.length - 1, isTerminal: index === rows.length - 1 };
      }),
    };
  });

  it('holds for heuristic records of random trajectories, large jumps included', () => {
    fc.assert(
      fc.property(trajectory, (t) => {
        const record = buildDLanRecord(args(t));
        for (const step of record.steps) expect(findSafetyViolation(step.actionChunk, [0, 0, 0, 0, 0, 0, 1], stepLimitOnly)).toBeNull();
      }),
    );
  });
});

describe('heuristic labels of the real Bridge sample', () => {
  it('labels all 25 episodes into records that parse', async () => {
    const file = BRIDGE_SAMPLE;
    let count = 0;
    const firsts = new Set<string>();
    for await (const { trajectory, files } of readBridgeEpisodes([file])) {
      const a = args(trajectory, { sourceDataset: 'file:///tmp/bridge-debug' });
      expect(validateSegments(a.segments, trajectory.steps.length)).toEqual([]);
      const record = buildDLanRecord(a);
      expect(DLanRecord.safeParse(record).success).toBe(true);
      for (const s of record.steps) expect(files.has(s.keyFrame)).toBe(true);
      expect(record.steps[0]!.subtask).toMatch(/^Move to /);
      firsts.add(record.steps[0]!.subtask);
      count++;
    }
    expect(count).toBe(25);
    expect([...firsts].sort()).toEqual(['Move to carrot', 'Move to cup', 'Move to lever', 'Move to pot']);
  });
});
