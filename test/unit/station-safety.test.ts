import { describe, expect, it } from 'vitest';
import { DEFAULT_WORKSPACE_BOUNDS, SafetyLimits, StationConfig, WireActRequest, WireObservation } from '../../data-schemas/station';
import { assertChunkSafe, findSafetyViolation, intersectBounds, StationSafetyError, SIM_BOUNDS } from '../../activities/robot/station';

const limits = SafetyLimits.parse({});
/** [x, y, z, roll, pitch, yaw, gripper]: the middle of the default box, gripper open. */
const state = [0.3, 0, 0.15, 0, 0, 0, 1];

function rejection(chunk: number[][], from: number[] = state): StationSafetyError {
  try {
    assertChunkSafe(chunk, from, limits);
  } catch (err) {
    expect(err).toBeInstanceOf(StationSafetyError);
    return err as StationSafetyError;
  }
  throw new Error('the chunk was accepted');
}

describe('station safety check', () => {
  it('defaults to a 5 cm step and the simulator-sized WidowX box', () => {
    expect(limits.maxStepMeters).toBe(0.05);
    expect(limits.bounds).toEqual({ min: [...DEFAULT_WORKSPACE_BOUNDS.min], max: [...DEFAULT_WORKSPACE_BOUNDS.max] });
    expect(limits.bounds).toEqual(SIM_BOUNDS);
  });

  it('accepts a valid chunk, gripper 0 and 1 and a step exactly at the limit included', () => {
    const chunk = [
      [0.01, 0, 0, 1],
      [0, 0.02, -0.01, 0.5],
      [0.05, 0, 0, 0],
      [0, 0, -0.03, 1],
    ];
    expect(findSafetyViolation(chunk, state, limits)).toBeNull();
    expect(() => assertChunkSafe(chunk, state, limits)).not.toThrow();
  });

  it('rejects too large a step, naming the action and the limit', () => {
    const e = rejection([
      [0.01, 0, 0, 1],
      [0.04, 0.04, 0, 1],
    ]);
    expect(e.actionIndex).toBe(1);
    expect(e.limit).toBe('max_step');
    expect(e.code).toBe('unsafe_action');
    expect(e.retryable).toBe(false);
    expect(e.message).toMatch(/action 1: translation 0\.056569 m exceeds the max step of 0\.05 m/);
  });

  it('rejects a chunk that leaves the workspace after k actions, although every step is small', () => {
    // z starts at 0.15 and the box ends at 0.3: the 4th 0.04 step reaches 0.31.
    const e = rejection(Array.from({ length: 6 }, () => [0, 0, 0.04, 1]));
    expect(e.actionIndex).toBe(3);
    expect(e.limit).toBe('workspace');
    expect(e.message).toMatch(/action 3: z would reach 0\.31 m, outside the workspace \[0\.004, 0\.3\] m/);
    // Down into the table.
    const down = rejection([...Array.from({ length: 3 }, () => [0, 0, -0.045, 1]), [0, 0, -0.02, 1]]);
    expect(down.actionIndex).toBe(3);
    expect(down.message).toMatch(/z would reach -0\.005/);
    // Sideways out to the robot's right (-y).
    const right = rejection(Array.from({ length: 6 }, () => [0, -0.05, 0, 1]));
    expect(right.actionIndex).toBe(5);
    expect(right.message).toMatch(/y would reach -0\.3 m/);
  });

  it('accepts a chunk that goes out and comes back only if no intermediate position leaves', () => {
    const near = [0.48, 0, 0.15, 0, 0, 0, 1];
    expect(
      findSafetyViolation(
        [
          [0.01, 0, 0, 1],
          [-0.02, 0, 0, 1],
        ],
        near,
        limits,
      ),
    ).toBeNull();
    const e = rejection(
      [
        [0.03, 0, 0, 1],
        [-0.03, 0, 0, 1],
      ],
      near,
    );
    expect(e.actionIndex).toBe(0);
    expect(e.limit).toBe('workspace');
  });

  it('rejects NaN and infinite numbers', () => {
    const e = rejection([
      [0.01, 0, 0, 1],
      [0.01, 0, 0, 1],
      [0, Number.NaN, 0, 1],
    ]);
    expect(e.actionIndex).toBe(2);
    expect(e.limit).toBe('finite');
    expect(e.message).toMatch(/action 2: dy is NaN/);
    const inf = rejection([[0, 0, 0, Number.POSITIVE_INFINITY]]);
    expect(inf.actionIndex).toBe(0);
    expect(inf.message).toMatch(/gripper is Infinity/);
  });

  it('rejects a gripper outside [0, 1]', () => {
    const e = rejection([
      [0, 0, 0, 1],
      [0, 0, 0, 1.5],
    ]);
    expect(e.actionIndex).toBe(1);
    expect(e.limit).toBe('gripper_range');
    expect(e.message).toMatch(/action 1: gripper 1\.5 is outside \[0, 1\]/);
    expect(rejection([[0, 0, 0, -0.1]]).limit).toBe('gripper_range');
  });

  it('rejects malformed chunks and states', () => {
    expect(rejection([]).limit).toBe('shape');
    const short = rejection([[0, 0, 0, 1], [0, 0, 1]]);
    expect([short.actionIndex, short.limit]).toEqual([1, 'shape']);
    expect(rejection([[0, 0, 0, 1]], [0.3, 0, Number.NaN, 0, 0, 0, 1]).limit).toBe('state');
  });

  it('uses the configured limits', () => {
    const tight = SafetyLimits.parse({ maxStepMeters: 0.01, bounds: { min: [0.2, -0.1, 0.05], max: [0.4, 0.1, 0.2] } });
    expect(findSafetyViolation([[0.02, 0, 0, 1]], state, tight)?.limit).toBe('max_step');
    expect(findSafetyViolation([[0.02, 0, 0, 1]], state, limits)).toBeNull();
    expect(() => SafetyLimits.parse({ bounds: { min: [0.5, 0, 0], max: [0.1, 1, 1] } })).toThrow(/min must be below/);
    expect(intersectBounds(tight.bounds, SIM_BOUNDS)).toEqual(tight.bounds);
    expect(() => intersectBounds({ min: [0.6, 0, 0], max: [0.7, 1, 1] }, SIM_BOUNDS)).toThrow(/do not overlap along x/);
  });
});

describe('station schemas', () => {
  it('parses both station configs with defaults and rejects unknown kinds', () => {
    const sim = StationConfig.parse({ kind: 'sim' });
    expect(sim).toMatchObject({ kind: 'sim', seed: 0, stepDelayMs: 0, safety: { maxStepMeters: 0.05 } });
    const arm = StationConfig.parse({ kind: 'widowx-http', url: 'http://10.0.0.5:5556' });
    expect(arm).toMatchObject({ kind: 'widowx-http', requestTimeoutMs: 30_000, actionTimeoutMs: 2_000 });
    expect(() => StationConfig.parse({ kind: 'widowx-http', url: 'ftp://arm' })).toThrow();
    expect(() => StationConfig.parse({ kind: 'ur5', url: 'http://arm' })).toThrow();
    expect(() => StationConfig.parse({ kind: 'sim', seed: 1.5 })).toThrow();
  });

  it('checks the wire bodies', () => {
    expect(WireActRequest.safeParse({ actions: [[0.01, 0, 0, 1]], blocking: true, expected_step: 0 }).success).toBe(true);
    expect(WireActRequest.safeParse({ actions: [[0.01, 0, 0, 2]], blocking: true, expected_step: 0 }).success).toBe(false);
    expect(WireActRequest.safeParse({ actions: [[0.01, 0, 0, 1]], blocking: false, expected_step: 0 }).success).toBe(false);
    expect(WireActRequest.safeParse({ actions: [], blocking: true, expected_step: 0 }).success).toBe(false);
    expect(WireObservation.safeParse({ image_jpeg_b64: '/9j/4AAQ', state: [0.3, 0, 0.1, 0, 0, 0, 1], step: 3 }).success).toBe(true);
    expect(WireObservation.safeParse({ image_jpeg_b64: 'not base64!', state: [0.3, 0, 0.1, 0, 0, 0, 1], step: 3 }).success).toBe(false);
    expect(WireObservation.safeParse({ image_jpeg_b64: '/9j/4AAQ', state: [0.3, 0, 0.1], step: 3 }).success).toBe(false);
  });
});
