import { beforeAll, describe, expect, it } from 'vitest';
import type { CleanedTrajectory, SegmentLabel } from '../../data-schemas/relabel';
import { ChunkAggregation, SegmentLabel as SegmentLabelSchema } from '../../data-schemas/relabel';
import { simulateEpisodes, type PendingTrajectory } from '../../activities/robot/sim';
import { cleanTrajectory } from '../../activities/relabel/clean';
import { describeMotion, GENERIC_SUBTASKS, heuristicSegments, parseInstruction, type ParsedInstruction } from '../../activities/relabel/heuristic';
import { buildDLanRecord, validateSegments } from '../../activities/relabel/record';

type V3 = [number, number, number];

/** A synthetic cleaned trajectory: phases of `n` identical steps. */
function synth(...phases: [n: number, d: V3, g: 0 | 1][]): CleanedTrajectory {
  const translation: V3[] = [];
  const gripper: (0 | 1)[] = [];
  for (const [n, d, g] of phases) {
    for (let i = 0; i < n; i++) {
      translation.push([...d]);
      gripper.push(g);
    }
  }
  return { steps: translation.length, translation, gripper };
}

const STILL: V3 = [0, 0, 0];
const pickPlace = (): CleanedTrajectory =>
  synth(
    [1, STILL, 1], // resting first step
    [6, [0.01, 0, 0], 1], // forward over the carrot
    [5, [0, 0, -0.01], 1], // down to it
    [3, STILL, 0], // close
    [5, [0, 0, 0.01], 0], // lift
    [8, [0, 0.012, 0], 0], // carry left
    [4, [0, 0, -0.01], 0], // lower
    [2, STILL, 1], // open
    [5, [0, 0, 0.01], 1], // retreat up
  );

function expectCovering(segments: readonly SegmentLabel[], steps: number): void {
  expect(validateSegments(segments, steps)).toEqual([]);
  expect(segments[0]!.start).toBe(0);
  expect(segments[segments.length - 1]!.end).toBe(steps);
  for (const s of segments) expect(s.end).toBeGreaterThan(s.start);
}

/** Consecutive repeats removed. */
const runs = (xs: readonly string[]): string[] => xs.filter((x, i) => i === 0 || x !== xs[i - 1]);

describe('parseInstruction', () => {
  const table: [string, ParsedInstruction][] = [
    ['put carrot on plate', { kind: 'task', steps: [{ kind: 'pick_place', object: 'carrot', target: 'plate', relation: 'on', stack: false }] }],
    ['Put the carrot on the plate.', { kind: 'task', steps: [{ kind: 'pick_place', object: 'carrot', target: 'plate', relation: 'on', stack: false }] }],
    ['flip pot upright which is in sink', { kind: 'task', steps: [{ kind: 'flip', object: 'pot', orientation: 'upright', location: 'sink' }] }],
    [
      'put cup from counter or drying rack into sink',
      { kind: 'task', steps: [{ kind: 'pick_place', object: 'cup', target: 'sink', relation: 'into', from: 'counter or drying rack', stack: false }] },
    ],
    ['turn lever vertical to front', { kind: 'task', steps: [{ kind: 'turn', object: 'lever', goal: 'vertical to front' }] }],
    ['place the spoon onto the towel', { kind: 'task', steps: [{ kind: 'pick_place', object: 'spoon', target: 'towel', relation: 'onto', stack: false }] }],
    ['move the eggplant into the basket', { kind: 'task', steps: [{ kind: 'pick_place', object: 'eggplant', target: 'basket', relation: 'into', stack: false }] }],
    ['pick up the eggplant', { kind: 'task', steps: [{ kind: 'pick_up', object: 'eggplant' }] }],
    ['pick the aubergine up', { kind: 'task', steps: [{ kind: 'pick_up', object: 'aubergine' }] }],
    ['lift the fish', { kind: 'task', steps: [{ kind: 'pick_up', object: 'fish' }] }],
    ['take the spoon out of the pot', { kind: 'task', steps: [{ kind: 'pick_up', object: 'spoon', from: 'pot' }] }],
    ['stack the green block on top of the yellow block', { kind: 'task', steps: [{ kind: 'pick_place', object: 'green block', target: 'yellow block', relation: 'on', stack: true }] }],
    ['open the drawer', { kind: 'task', steps: [{ kind: 'open', object: 'drawer' }] }],
    ['Close the microwave', { kind: 'task', steps: [{ kind: 'close', object: 'microwave' }] }],
    ['turn on the faucet', { kind: 'task', steps: [{ kind: 'turn', object: 'faucet', goal: 'on' }] }],
    [
      'Put the eggplant into the pan, then lift the fish.',
      {
        kind: 'task',
        steps: [
          { kind: 'pick_place', object: 'eggplant', target: 'pan', relation: 'into', stack: false },
          { kind: 'pick_up', object: 'fish' },
        ],
      },
    ],
    [
      'pick up the carrot and put it in the bowl',
      {
        kind: 'task',
        steps: [
          { kind: 'pick_up', object: 'carrot' },
          { kind: 'pick_place', object: 'carrot', target: 'bowl', relation: 'in', stack: false },
        ],
      },
    ],
    ['move the pot to the left', { kind: 'unknown', text: 'move the pot to the left' }],
    ['sweep the beans into a pile', { kind: 'unknown', text: 'sweep the beans into a pile' }],
    ['', { kind: 'unknown', text: '' }],
  ];
  it.each(table)('%j', (text, expected) => {
    expect(parseInstruction(text)).toEqual(expected);
  });
});

describe('describeMotion', () => {
  it('names the Bridge axes: +x forward, +y left, -z down', () => {
    expect(describeMotion([0.06, 0, 0], { from: 1, to: 1 })).toBe('Move forward (about 6 cm), keeping the gripper open.');
    expect(describeMotion([0, 0.04, 0], { from: 1, to: 1 })).toBe('Move left (about 4 cm), keeping the gripper open.');
    expect(describeMotion([0, 0, -0.03], { from: 0, to: 0 })).toBe('Move down (about 3 cm), keeping the gripper closed.');
    expect(describeMotion([-0.02, -0.05, 0.08], { from: 0, to: 0 })).toBe(
      'Move primarily up (about 8 cm), moderately right (about 5 cm) and slightly backward (about 2 cm), keeping the gripper closed.',
    );
  });

  it('grades secondary axes slightly / moderately / a lot and ignores sub-5 mm axes', () => {
    expect(describeMotion([0.06, 0.012, 0.003], { from: 1, to: 1 })).toBe('Move primarily forward (about 6 cm) and slightly left (about 1 cm), keeping the gripper open.');
    expect(describeMotion([0.12, -0.09, 0], { from: 1, to: 1 })).toBe('Move primarily forward (about 12 cm) and right a lot (about 9 cm), keeping the gripper open.');
  });

  it('says when the gripper closes or opens, and holds position without motion', () => {
    expect(describeMotion([0.001, 0, -0.002], { from: 1, to: 0 })).toBe('Close the gripper and hold position.');
    expect(describeMotion([0, 0, 0.02], { from: 0, to: 1 })).toBe('Open the gripper, then move up (about 2 cm).');
    expect(describeMotion([0.002, 0.001, 0], { from: 1, to: 1 })).toBe('Hold position with the gripper open.');
  });
});

describe('heuristicSegments on synthetic trajectories', () => {
  it('maps pick-and-place phases onto segments split by gripper and direction', () => {
    const c = pickPlace();
    const segs = heuristicSegments(c, 'put the carrot on the plate');
    expectCovering(segs, c.steps);
    expect(segs.map((s) => [s.start, s.end, s.subtask])).toEqual([
      [0, 7, 'Move to carrot'],
      [7, 12, 'Move to carrot'],
      [12, 15, 'Grasp carrot'],
      [15, 20, 'Move to plate'],
      [20, 28, 'Move to plate'],
      [28, 32, 'Move to plate'],
      [32, 34, 'Release carrot'],
      [34, 39, 'Move away from plate'],
    ]);
    expect(segs[0]!.motionPlan).toBe('Move forward (about 6 cm), keeping the gripper open.');
    expect(segs[1]!.motionPlan).toBe('Move down (about 5 cm), keeping the gripper open.');
    expect(segs[2]!.motionPlan).toBe('Close the gripper and hold position.');
    expect(segs[4]!.motionPlan).toBe('Move left (about 10 cm), keeping the gripper closed.');
    expect(segs[6]!.motionPlan).toBe('Open the gripper and hold position.');
  });

  it('starts every gripper change on a segment boundary', () => {
    const c = pickPlace();
    const starts = new Set(heuristicSegments(c, 'put carrot on plate').map((s) => s.start));
    c.gripper.forEach((g, t) => {
      if (t > 0 && g !== c.gripper[t - 1]) expect(starts.has(t)).toBe(true);
    });
  });

  it('lifts for "pick up" and chains subtasks across "then"', () => {
    const c = synth([6, [0, 0, -0.01], 1], [2, STILL, 0], [6, [0, 0, 0.01], 0]);
    expect(runs(heuristicSegments(c, 'pick up the eggplant').map((s) => s.subtask))).toEqual(['Move to eggplant', 'Grasp eggplant', 'Lift eggplant']);

    const chain = synth(
      [6, [0.01, 0, 0], 1],
      [2, STILL, 0],
      [6, [0, 0.01, 0], 0],
      [2, STILL, 1],
      [6, [0, -0.01, 0], 1],
      [2, STILL, 0],
      [6, [0, 0, 0.01], 0],
    );
    expect(runs(heuristicSegments(chain, 'put the eggplant in the pan then lift the fish').map((s) => s.subtask))).toEqual([
      'Move to eggplant',
      'Grasp eggplant',
      'Move to pan',
      'Release eggplant',
      'Move to fish',
      'Grasp fish',
      'Lift fish',
    ]);
  });

  it('treats a close-then-open that carried nothing as a failed grasp and approaches again', () => {
    const c = synth([6, [0.01, 0, 0], 1], [3, STILL, 0], [2, STILL, 1], [4, [0.005, 0, 0], 1], [2, STILL, 0], [6, [0, 0.01, 0], 0], [2, STILL, 1]);
    expect(runs(heuristicSegments(c, 'put carrot on plate').map((s) => s.subtask))).toEqual([
      'Move to carrot',
      'Grasp carrot',
      'Release carrot',
      'Move to carrot',
      'Grasp carrot',
      'Move to plate',
      'Release carrot',
    ]);
  });

  it('degrades to generic subtasks for unknown instructions', () => {
    const c = pickPlace();
    const subtasks = runs(heuristicSegments(c, 'sweep the beans into a pile').map((s) => s.subtask));
    expect(subtasks).toEqual([GENERIC_SUBTASKS.approach, GENERIC_SUBTASKS.grasp, GENERIC_SUBTASKS.carry, GENERIC_SUBTASKS.release, GENERIC_SUBTASKS.retreat]);
    expect(subtasks[0]).toMatch(/^Move to /);
  });

  it('merges direction wobbles shorter than 3 steps and never yields empty segments', () => {
    const c = synth([5, [0.01, 0, 0], 1], [1, [0, 0.02, 0], 1], [5, [0.01, 0, 0], 1]);
    const segs = heuristicSegments(c, 'put carrot on plate');
    expectCovering(segs, c.steps);
    expect(segs).toHaveLength(1);
  });

  it('covers short, still and single-step trajectories', () => {
    for (const c of [synth([1, STILL, 1]), synth([2, STILL, 0]), synth([12, STILL, 1]), synth([1, STILL, 1], [1, STILL, 0], [1, STILL, 1])]) {
      const segs = heuristicSegments(c, 'put carrot on plate');
      expectCovering(segs, c.steps);
      expect(segs[0]!.subtask).toBeTruthy();
    }
    expect(heuristicSegments(synth([12, STILL, 1]), 'put carrot on plate')[0]!.motionPlan).toBe('Hold position with the gripper open.');
  });

  it('is deterministic', () => {
    const c = pickPlace();
    expect(heuristicSegments(c, 'put carrot on plate')).toEqual(heuristicSegments(c, 'put carrot on plate'));
  });
});

describe('heuristic labeler on simulated trajectories', () => {
  const sims: PendingTrajectory[] = [];
  beforeAll(async () => {
    for await (const p of simulateEpisodes({ tasks: ['put the carrot on the plate', 'pick up the eggplant'], n: 2, seed: 0, cameras: ['image_0'] })) sims.push(p);
  }, 60_000);

  it('labels pick-and-place as Move to carrot, Grasp carrot, Move to plate, Release carrot', () => {
    const carrots = sims.filter((p) => p.trajectory.source.kind === 'simulator' && p.trajectory.source.task === 'put the carrot on the plate');
    expect(carrots).toHaveLength(2);
    for (const { trajectory } of carrots) {
      const c = cleanTrajectory(trajectory);
      const segs = heuristicSegments(c, trajectory.instruction);
      expectCovering(segs, trajectory.steps.length);
      const order = runs(segs.map((s) => s.subtask));
      expect(order.slice(0, 4)).toEqual(['Move to carrot', 'Grasp carrot', 'Move to plate', 'Release carrot']);
    }
  });

  it('labels pick-up with a final Lift and the episode object name', () => {
    const picks = sims.filter((p) => p.trajectory.source.kind === 'simulator' && p.trajectory.source.task === 'pick up the eggplant');
    for (const { trajectory } of picks) {
      const parsed = parseInstruction(trajectory.instruction);
      expect(parsed.kind).toBe('task');
      const object = parsed.kind === 'task' ? parsed.steps[0]!.object : '';
      const order = runs(heuristicSegments(cleanTrajectory(trajectory), trajectory.instruction).map((s) => s.subtask));
      expect(order).toEqual([`Move to ${object}`, `Grasp ${object}`, `Lift ${object}`]);
    }
  });

  it('gives records that parse as D_lan', () => {
    for (const { trajectory, files } of sims) {
      const cleaned = cleanTrajectory(trajectory);
      const segments = heuristicSegments(cleaned, trajectory.instruction);
      const record = buildDLanRecord({
        trajectory,
        cleaned,
        segments,
        labeler: { name: 'heuristic', version: 'h1' },
        sourceDataset: 'file:///tmp/sim',
        sourceRecord: `trajectories/${trajectory.id}.json`,
        sourceRecordSha256: 'a'.repeat(64),
        labeledAt: '2026-01-01T00:00:00Z',
        aggregation: ChunkAggregation.parse({}),
      });
      expect(record.steps).toHaveLength(segments.length);
      for (const s of record.steps) expect(files.has(s.keyFrame)).toBe(true);
    }
  });
});

describe('heuristic output fits the SegmentLabel contract', () => {
  it('parses as SegmentLabel even for a very long instruction', () => {
    const long = `put the carrot on the ${'very '.repeat(60)}large plate`;
    for (const s of heuristicSegments(pickPlace(), long)) expect(SegmentLabelSchema.safeParse(s).success).toBe(true);
  });
});
