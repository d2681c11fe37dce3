import { z } from 'zod';
import { Finite, IsoDateTime } from './common';
import { ChunkAction } from './d-lan';
import { State7 } from './d-rob';

/**
 * Robot stations: where an episode's action chunks are executed, either the
 * embedded simulator or a real WidowX behind an HTTP action server or widowx_envs' robot server
 * (docs/station-protocol.md).
 *
 * Units and axes are Bridge's (docs/method.md, "Source data"): meters, +x forward (away from the base), +y left,
 * +z up; state [x, y, z, roll, pitch, yaw, gripper]; chunk actions [dx, dy, dz, gripper] with the
 * gripper absolute, 1 = open, 0 = closed.
 */

export const Xyz = z.tuple([Finite, Finite, Finite]);
export type Xyz = z.infer<typeof Xyz>;

/**
 * The box the end effector (the point between the fingertips) must stay inside, meters, in the
 * arm's base frame. The default is the simulator's reachable box (`WORKSPACE` in
 * activities/robot/sim/world.ts), a WidowX-250-like workspace with the table top at z = 0.
 */
export const DEFAULT_WORKSPACE_BOUNDS = { min: [0.1, -0.25, 0.004], max: [0.5, 0.25, 0.3] } as const satisfies { min: Xyz; max: Xyz };

export const WorkspaceBounds = z
  .strictObject({ min: Xyz, max: Xyz })
  .refine((b) => b.min.every((v, i) => v < (b.max[i] ?? -Infinity)), { message: 'each min must be below its max' });
export type WorkspaceBounds = z.infer<typeof WorkspaceBounds>;

/** Largest translation of one action (Euclidean norm of [dx, dy, dz]), meters: 5 cm. */
export const DEFAULT_MAX_STEP_METERS = 0.05;

/**
 * Checked on every chunk as a whole before anything moves; a chunk that breaks one is rejected,
 * never clipped.
 */
export const SafetyLimits = z.strictObject({
  /** Largest Euclidean norm of one action's [dx, dy, dz], meters. */
  maxStepMeters: Finite.pipe(z.number().positive().max(0.2)).default(DEFAULT_MAX_STEP_METERS),
  /** Every position the chunk passes through (after each action) must lie inside this box. */
  bounds: WorkspaceBounds.default({ min: [...DEFAULT_WORKSPACE_BOUNDS.min], max: [...DEFAULT_WORKSPACE_BOUNDS.max] }),
});
export type SafetyLimits = z.infer<typeof SafetyLimits>;
export type SafetyLimitsInput = z.input<typeof SafetyLimits>;

export const StationImageMime = z.enum(['image/jpeg']);
export type StationImageMime = z.infer<typeof StationImageMime>;

/**
 * What a station observed, as recorded (the frame's bytes travel separately, e.g. as a store object).
 * `step` counts the actions executed since the last reset.
 */
export const StationObservation = z.strictObject({
  frame: z.strictObject({ mimeType: StationImageMime }),
  state: State7,
  step: z.int().nonnegative(),
  timestamp: IsoDateTime,
});
export type StationObservation = z.infer<typeof StationObservation>;

export const SimStationConfig = z.strictObject({
  kind: z.literal('sim'),
  /** Scene seed when a reset names none. */
  seed: z.int().nonnegative().default(0),
  /** Wall-clock pause after each action (0: as fast as possible; 200 is real time at 5 Hz). */
  stepDelayMs: z.int().nonnegative().max(10_000).default(0),
  safety: SafetyLimits.default({ maxStepMeters: DEFAULT_MAX_STEP_METERS, bounds: { min: [...DEFAULT_WORKSPACE_BOUNDS.min], max: [...DEFAULT_WORKSPACE_BOUNDS.max] } }),
});
export type SimStationConfig = z.infer<typeof SimStationConfig>;

export const WidowXHttpStationConfig = z.strictObject({
  kind: z.literal('widowx-http'),
  /** Base URL of the arm's action server, e.g. http://192.168.1.20:5556/ */
  url: z.url({ protocol: /^https?$/ }),
  /** Limit for /reset, /observation and /stop requests, milliseconds. */
  requestTimeoutMs: z.int().positive().max(600_000).default(30_000),
  /** Added to requestTimeoutMs per action of a /act request. */
  actionTimeoutMs: z.int().positive().max(60_000).default(2_000),
  safety: SafetyLimits.default({ maxStepMeters: DEFAULT_MAX_STEP_METERS, bounds: { min: [...DEFAULT_WORKSPACE_BOUNDS.min], max: [...DEFAULT_WORKSPACE_BOUNDS.max] } }),
});
export type WidowXHttpStationConfig = z.infer<typeof WidowXHttpStationConfig>;

/**
 * widowx_envs' WidowXConfigs.DefaultEnvParams (rail-berkeley/bridge_data_robot a902e5b), what its
 * own client sends with `init`: the server's camera topics, workspace clipping and start pose.
 */
export const WIDOWX_ENVS_DEFAULT_ENV_PARAMS = {
  fix_zangle: 0.1,
  move_duration: 0.2,
  adaptive_wait: true,
  move_to_rand_start_freq: 1,
  override_workspace_boundaries: [
    [0.1, -0.15, -0.1, -1.57, 0],
    [0.45, 0.25, 0.18, 1.57, 0],
  ],
  action_clipping: 'xyz',
  catch_environment_except: false,
  start_state: [0.3, 0.0, 0.15, 0, 0, 0, 1],
  skip_move_to_neutral: false,
  return_full_image: false,
  camera_topics: [{ name: '/blue/image_raw' }],
} as const;

/**
 * A WidowX behind widowx_envs' robot server (`widowx_env_service.py --server`, an agentlace action
 * server over ZeroMQ) as the BridgeData labs run it; driven through `python -m vla_py.widowx`.
 */
export const WidowXEnvsStationConfig = z.strictObject({
  kind: z.literal('widowx-envs'),
  /** The robot server's host name or address. */
  host: z.string().trim().min(1).max(253).regex(/^[A-Za-z0-9.:_-]+$/, 'a host name or IP address'),
  /** Its request port (`--port`, default 5556); agentlace's broadcast port is the next one, unused here. */
  port: z.int().min(1).max(65_534).default(5556),
  /** The observation key of the frame: `image` (the processed main-camera array) or `full_image` (the JPEG). */
  cameraKey: z.enum(['image', 'full_image']).default('image'),
  /** Side of the square frames, pixels; sent with `init` as `image_size` (Bridge: 256). */
  imageSize: z.int().min(16).max(2048).default(256),
  /** Limit for each request (a blocking step, a reset, an observation), milliseconds. */
  requestTimeoutMs: z.int().positive().max(600_000).default(30_000),
  /** Limit for `init`, whose first call starts the arm's controller (~10 s), milliseconds. */
  initTimeoutMs: z.int().positive().max(600_000).default(120_000),
  /** widowx_envs' env_params, sent with `init` as they are. */
  envParams: z.record(z.string(), z.unknown()).default(() => structuredClone(WIDOWX_ENVS_DEFAULT_ENV_PARAMS) as Record<string, unknown>),
  safety: SafetyLimits.default({ maxStepMeters: DEFAULT_MAX_STEP_METERS, bounds: { min: [...DEFAULT_WORKSPACE_BOUNDS.min], max: [...DEFAULT_WORKSPACE_BOUNDS.max] } }),
});
export type WidowXEnvsStationConfig = z.infer<typeof WidowXEnvsStationConfig>;

export const StationConfig = z.discriminatedUnion('kind', [SimStationConfig, WidowXHttpStationConfig, WidowXEnvsStationConfig]);
export type StationConfig = z.infer<typeof StationConfig>;
export type StationConfigInput = z.input<typeof StationConfig>;

// ---------------------------------------------------------------------------------------------
// Wire protocol of the real-arm adapter (docs/station-protocol.md): JSON over HTTP.

/** An observation on the wire: the main camera (image_0) frame as base64 JPEG plus the state. */
export const WireObservation = z.object({
  image_jpeg_b64: z.base64().min(4),
  state: State7,
  step: z.int().nonnegative(),
  /** When the frame was captured; optional, the client stamps the receipt time when absent. */
  timestamp: IsoDateTime.optional(),
});
export type WireObservation = z.infer<typeof WireObservation>;

/** `POST /reset`: move to the neutral pose, open the gripper, (re)start counting steps from 0. */
export const WireResetRequest = z.strictObject({
  instruction: z.string().trim().min(1),
  /** Scene seed, for stations that lay out scenes themselves (simulators). */
  seed: z.int().nonnegative().optional(),
  /** The task whose scene to lay out; a real arm shows it to the operator who sets up the table. */
  scene: z.string().trim().min(1).optional(),
});
export type WireResetRequest = z.infer<typeof WireResetRequest>;

/** `POST /act`: execute the actions in order, one per control step (5 Hz), and answer when done. */
export const WireActRequest = z.strictObject({
  actions: z.array(ChunkAction).min(1).max(256),
  /** Only blocking execution is part of the protocol. */
  blocking: z.literal(true),
  /**
   * The `step` of the observation the chunk was planned from; the server refuses (409
   * stale_observation) when the arm has executed anything since, so a retried request never runs a
   * chunk twice.
   */
  expected_step: z.int().nonnegative(),
  /** Client-chosen id; a /stop naming it that arrives first makes the /act execute nothing. */
  act_id: z.string().min(1).max(128).optional(),
});
export type WireActRequest = z.infer<typeof WireActRequest>;

export const WireActResponse = z.object({
  /** Actions executed, from the first; fewer than sent when a /stop interrupted the chunk. */
  executed: z.int().nonnegative(),
  /** True when a /stop ended the chunk early. */
  stopped: z.boolean(),
  observation: WireObservation,
  /**
   * Optional: one observation after each executed action (the last equals `observation`), so the
   * episode can be recorded as D_rob steps at the control rate; without it the recording has one
   * step per chunk.
   */
  trace: z.array(WireObservation).optional(),
});
export type WireActResponse = z.infer<typeof WireActResponse>;

/** `POST /stop`: halt after the current action, hold pose and gripper. Does not latch. */
export const WireStopRequest = z.strictObject({
  reason: z.string().trim().min(1).max(1000),
  act_id: z.string().min(1).max(128).optional(),
});
export type WireStopRequest = z.infer<typeof WireStopRequest>;

export const WireStopResponse = z.object({ stopped: z.literal(true) });
export type WireStopResponse = z.infer<typeof WireStopResponse>;

export const WIRE_ERROR_CODES = ['bad_request', 'unsafe_action', 'not_ready', 'busy', 'stale_observation', 'not_found', 'hardware_fault', 'internal'] as const;

/** Every non-2xx answer. `code` is one of WIRE_ERROR_CODES (clients keep unknown codes verbatim). */
export const WireError = z.object({ error: z.object({ code: z.string().min(1), message: z.string() }) });
export type WireError = z.infer<typeof WireError>;
