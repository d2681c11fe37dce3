import { z } from 'zod';
import { Finite, RelativeRef, SafeId } from './common';

/**
 * D_rob: robot trajectories in the BridgeData v2 conventions (docs/method.md, "Source data").
 * Axes: +x forward (away from the base), +y left, +z up; +yaw counter-clockwise. Control at 5 Hz.
 */
export const BRIDGE_CONTROL_HZ = 5;

/** `image_0` is the fixed main camera policies use; 1 and 2 are side cameras, 3 the wrist. */
export const Camera = z.enum(['image_0', 'image_1', 'image_2', 'image_3']);
export type Camera = z.infer<typeof Camera>;

/** [x, y, z (m), roll, pitch, yaw (rad), gripper]. */
export const State7 = z.tuple([Finite, Finite, Finite, Finite, Finite, Finite, Finite]);
export type State7 = z.infer<typeof State7>;

/** Gripper is absolute and continuous: 1 = open, 0 = closed. */
export const Gripper = Finite.pipe(z.number().min(0).max(1));

/** [dx, dy, dz (m), droll, dpitch, dyaw (rad), gripper absolute]. */
export const Action7 = z.tuple([Finite, Finite, Finite, Finite, Finite, Finite, Gripper]);
export type Action7 = z.infer<typeof Action7>;

/** Frames of one step by camera, each a path relative to the dataset root. */
export const StepFrames = z.partialRecord(Camera, RelativeRef).refine((f) => Object.keys(f).length > 0, {
  message: 'a step needs at least one camera frame',
});

export const DRobStep = z.strictObject({
  index: z.int().nonnegative(),
  frames: StepFrames,
  state: State7,
  action: Action7,
  isFirst: z.boolean(),
  isLast: z.boolean(),
  isTerminal: z.boolean(),
});
export type DRobStep = z.infer<typeof DRobStep>;

export const TrajectorySource = z.discriminatedUnion('kind', [
  z.strictObject({
    kind: z.literal('bridge_rlds'),
    /** The TFRecord file the episode was read from, as given to the importer. */
    file: z.string().min(1),
    /** Zero-based index of the tf.train.Example record in that file. */
    recordIndex: z.int().nonnegative(),
    episodeId: z.int().optional(),
    /** `episode_metadata/file_path`: the original raw-data path of the episode. */
    originalPath: z.string().optional(),
  }),
  z.strictObject({
    kind: z.literal('simulator'),
    simulatorVersion: z.string().min(1),
    task: z.string().min(1),
    seed: z.int().nonnegative(),
    episodeIndex: z.int().nonnegative(),
    success: z.boolean(),
  }),
  z.strictObject({
    kind: z.literal('lerobot'),
    /** The LeRobot dataset as given to the importer: a directory or an s3:// prefix. */
    dataset: z.string().min(1),
    /** LeRobot's `episode_index`. */
    episodeIndex: z.int().nonnegative(),
    /** `codebase_version` of the dataset's meta/info.json, e.g. `v3.0`. */
    codebaseVersion: z.string().min(1),
  }),
  z.strictObject({
    kind: z.literal('robot_episode'),
    station: SafeId,
    workflowId: z.string().min(1),
    runId: z.string().min(1),
  }),
]);
export type TrajectorySource = z.infer<typeof TrajectorySource>;

export const D_ROB_FORMAT_VERSION = 1;

export const DRobTrajectory = z
  .strictObject({
    formatVersion: z.literal(D_ROB_FORMAT_VERSION),
    id: SafeId,
    instruction: z.string().trim().min(1, 'instruction must not be empty'),
    robot: z.string().min(1),
    controlHz: z.number().positive(),
    cameras: z.array(Camera).min(1),
    steps: z.array(DRobStep).min(1),
    source: TrajectorySource,
  })
  .superRefine((t, ctx) => {
    t.steps.forEach((step, i) => {
      if (step.index !== i) {
        ctx.addIssue({ code: 'custom', path: ['steps', i, 'index'], message: `step index ${step.index} out of order, expected ${i}` });
      }
      for (const cam of Object.keys(step.frames)) {
        if (!t.cameras.includes(cam as Camera)) {
          ctx.addIssue({ code: 'custom', path: ['steps', i, 'frames', cam], message: `camera ${cam} is not listed in cameras` });
        }
      }
    });
  });
export type DRobTrajectory = z.infer<typeof DRobTrajectory>;

