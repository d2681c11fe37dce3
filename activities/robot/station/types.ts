/**
 * The station driver interface (docs/station-protocol.md): one physical or simulated arm with its main
 * camera. Bridge units and axes throughout (docs/method.md, "Source data"): meters, +x forward, +y left, +z up,
 * state [x, y, z, roll, pitch, yaw, gripper], chunk actions [dx, dy, dz, gripper] with the gripper
 * absolute (1 open, 0 closed), one action per 5 Hz control step.
 */
import type { ActionChunk } from '../../../data-schemas/d-lan';
import type { StationImageMime } from '../../../data-schemas/station';

export type { ActionChunk } from '../../../data-schemas/d-lan';

export interface Observation {
  /** The main camera (image_0) frame. */
  image: Uint8Array;
  mimeType: StationImageMime;
  /** [x, y, z, roll, pitch, yaw, gripper]. */
  state: number[];
  /** Actions executed since the last reset. */
  step: number;
  /** ISO time the observation was taken (or received). */
  timestamp: string;
}

export interface ResetTask {
  /** What the policy is told (any language). A simulated station also sets up and judges the task it names (`planSimEpisode`); a real arm records it. */
  instruction: string;
  /** Scene seed for stations that lay out scenes (the simulator); defaults to the station's. */
  seed?: number;
  /**
   * The task whose scene to set up, in words the simulator understands ("put the carrot on the
   * plate"). Without it a simulated station sets up what the instruction asks for, or refuses an
   * instruction it cannot (see `planSimEpisode`). A real arm's server shows it to the operator.
   */
  scene?: string;
}

export interface ExecuteResult {
  /** Actions executed, from the first; the rest were not started. */
  executed: number;
  /** A fresh observation after the last executed action. */
  observation: Observation;
  /** True when the chunk ended early: the signal was aborted or a safeStop arrived. */
  stopped: boolean;
  /**
   * One observation after each executed action (the last is `observation`), for recording the
   * episode as D_rob steps; empty when the station reports only the chunk's end.
   */
  trace: Observation[];
}

export interface ExecuteOptions {
  /**
   * The `step` of the observation the chunk was planned from. When the arm has executed anything
   * since, the chunk is refused (StationError 'stale_observation') and nothing moves: a chunk
   * retried after a lost answer or a worker crash never runs twice.
   */
  expectedStep?: number;
}

export interface StationDriver {
  readonly kind: 'sim' | 'widowx-http' | 'widowx-envs';
  /** Moves to the neutral pose with the gripper open and lays out (or asks for) the task's scene. */
  reset(task: ResetTask): Promise<Observation>;
  observe(): Promise<Observation>;
  /**
   * Checks the whole chunk against the safety limits from the current state (StationSafetyError,
   * nothing moves), then executes it action by action. An aborted `signal` stops the chunk after
   * the action in progress; the arm holds its pose.
   */
  execute(chunk: ActionChunk, signal?: AbortSignal, options?: ExecuteOptions): Promise<ExecuteResult>;
  /** Halts motion after the current action and holds pose and gripper (nothing is opened or dropped). */
  safeStop(reason: string): Promise<void>;
  close(): Promise<void>;
}
