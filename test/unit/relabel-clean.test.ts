import { describe, expect, it } from 'vitest';
import { D_ROB_FORMAT_VERSION, DRobTrajectory, type DRobStep } from '../../data-schemas/d-rob';
import { binariseGripper, cleanTrajectory } from '../../activities/relabel/clean';

type V3 = [number, number, number];

function trajectory(positions: V3[], gripper: number[], lastAction: V3 = [0, 0, 0]): DRobTrajectory {
  const steps: DRobStep[] = positions.map((p, i) => {
    const next = positions[i + 1];
    const d: V3 = next ? [next[0] - p[0], next[1] - p[1], next[2] - p[2]] : lastAction;
    return {
      index: i,
      frames: { image_0: `frames/t/image_0/${String(i).padStart(3, '0')}.jpg` },
      state: [p[0], p[1], p[2], 0, 0, 0, 1],
      // Recorded deltas deliberately differ from the state deltas: cleaning must not use them.
      action: [d[0] * 2 + 0.5, d[1] * 2, d[2] * 2, 0, 0, 0, gripper[i] ?? 1],
      isFirst: i === 0,
      isLast: i === positions.length - 1,
      isTerminal: i === positions.length - 1,
    };
  });
  steps[steps.length - 1]!.action = [lastAction[0], lastAction[1], lastAction[2], 0, 0, 0, gripper[positions.length - 1] ?? 1];
  return DRobTrajectory.parse({
    formatVersion: D_ROB_FORMAT_VERSION,
    id: 't',
    instruction: 'put carrot on plate',
    robot: 'widowx_250s',
    controlHz: 5,
    cameras: ['image_0'],
    steps,
    source: { kind: 'simulator', simulatorVersion: 'test', task: 'put the carrot on the plate', seed: 0, episodeIndex: 0, success: true },
  });
}

describe('binariseGripper', () => {
  it('settles values beyond the thresholds and gives in-between values the next settled one', () => {
    expect(binariseGripper([1, 0.99, 0.7, 0.3, 0.01, 0, 0.6, 0.96])).toEqual([1, 1, 0, 0, 0, 0, 1, 1]);
  });

  it('uses the previous settled value for a trailing transition, and 0.5 when nothing settles', () => {
    expect(binariseGripper([1, 1, 0.4, 0.2])).toEqual([1, 1, 1, 1]);
    expect(binariseGripper([0, 0.8])).toEqual([0, 0]);
    expect(binariseGripper([0.6, 0.5, 0.49, 0.1])).toEqual([1, 1, 0, 0]);
    expect(binariseGripper([])).toEqual([]);
  });

  it('treats the thresholds themselves as in between (> 0.95 open, < 0.05 closed)', () => {
    expect(binariseGripper([0.95, 0])).toEqual([0, 0]);
    expect(binariseGripper([0.05, 1])).toEqual([1, 1]);
  });
});

describe('cleanTrajectory', () => {
  it('replaces translation by the state delta and keeps the recorded action on the last step', () => {
    const t = trajectory(
      [
        [0.3, 0, 0.1],
        [0.31, 0, 0.1],
        [0.31, 0.02, 0.09],
        [0.31, 0.02, 0.12],
      ],
      [1, 1, 0.5, 0],
      [0.001, -0.002, 0.003],
    );
    const c = cleanTrajectory(t);
    expect(c.steps).toBe(4);
    const expected: V3[] = [
      [0.01, 0, 0],
      [0, 0.02, -0.01],
      [0, 0, 0.03],
      [0.001, -0.002, 0.003],
    ];
    c.translation.forEach((d, i) => d.forEach((v, k) => expect(v).toBeCloseTo(expected[i]![k]!, 12)));
    expect(c.gripper).toEqual([1, 1, 0, 0]);
  });

  it('keeps the first (resting) step so cleaned index t stays frame t', () => {
    const t = trajectory(
      [
        [0.3, 0, 0.1],
        [0.3, 0, 0.1],
        [0.32, 0, 0.1],
      ],
      [1, 1, 1],
    );
    const c = cleanTrajectory(t);
    expect(c.steps).toBe(t.steps.length);
    expect(c.translation).toHaveLength(3);
    expect(c.gripper).toHaveLength(3);
    expect(c.translation[0]).toEqual([0, 0, 0]);
  });

  it('handles a one-step trajectory', () => {
    const c = cleanTrajectory(trajectory([[0.3, 0, 0.1]], [0.2], [0.01, 0, 0]));
    expect(c).toEqual({ steps: 1, translation: [[0.01, 0, 0]], gripper: [0] });
  });
});
