/**
 * LeRobot datasets in: a LeRobot dataset (format v3.0), read by lerobot's own LeRobotDataset in a
 * child of the LeRobot environment (python/lerobot/vla_lerobot/read.py), becomes a D_rob dataset.
 * Actions and states are mapped to the D_rob convention (end-effector deltas + absolute gripper,
 * docs/method.md) by a documented mapping; a dataset it cannot be established for (joint-space
 * actions, unnamed columns) is refused before anything is decoded or written.
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { z } from 'zod';
import { Camera, D_ROB_FORMAT_VERSION, DRobTrajectory, type DRobStep, type DatasetManifest } from '../../data-schemas';
import { Finite } from '../../data-schemas/common';
import { describeZodIssues } from '../../data-schemas/issues';
import { parseObjectUri, relativeTo } from '../../data-schemas/uri';
import type { PythonEnv } from '../runtime/python-env';
import { parseStoredJson } from '../store';
import { sha256Hex } from '../store/checksum';
import type { ObjectStore } from '../store/types';
import { layOutFrames, recordingSha256, writeDataset, type PendingTrajectory, type RecordedStep } from './dataset-writer';
import { DataError, DataErrorCode } from './errors';

export const LEROBOT_IMPORTER = { producer: 'vla-pipelines/lerobot-import', producerVersion: '1' } as const;
/** The LeRobot format versions the importer reads (lerobot 0.6 reads v3.0 only). */
export const LEROBOT_CODEBASE_VERSIONS = ['v3.0'] as const;

/** A LeRobot dataset refused or unreadable; the message names the dataset, the feature and what was expected. */
export class LeRobotImportError extends DataError {
  override name = 'LeRobotImportError';
  constructor(dataset: string, detail: string, options?: ErrorOptions) {
    super(DataErrorCode.InvalidInput, `${dataset}: ${detail}`, options);
  }
}

/** `feature.names` as LeRobot writes it: a list, or lists grouped by a key (`{"motors": [...]}`). */
const FeatureNames = z.union([z.array(z.string()), z.record(z.string(), z.array(z.string())), z.null()]).optional();

/** What `vla_lerobot.read info` prints: meta/info.json as lerobot loaded it. */
export const LeRobotInfo = z.object({
  codebaseVersion: z.string(),
  fps: z.number().positive(),
  robotType: z.string().nullable(),
  totalEpisodes: z.int().nonnegative(),
  totalFrames: z.int().nonnegative(),
  features: z.record(z.string(), z.object({ dtype: z.string(), shape: z.array(z.int()), names: FeatureNames })),
});
export type LeRobotInfo = z.infer<typeof LeRobotInfo>;

/** One episode as `vla_lerobot.read episodes` writes it. */
const LeRobotEpisode = z.object({
  episodeIndex: z.int().nonnegative(),
  length: z.int().positive(),
  tasks: z.array(z.string()),
  columns: z.record(z.string(), z.array(z.array(z.number()))),
  frames: z.record(z.string(), z.array(z.string())),
});
type LeRobotEpisode = z.infer<typeof LeRobotEpisode>;

/** A column of a vector feature: its index, or its name in the feature's `names`. */
const Column = z.union([z.int().nonnegative(), z.string().min(1)]);
const POSE_AXES = ['x', 'y', 'z', 'roll', 'pitch', 'yaw'] as const;
type PoseAxis = (typeof POSE_AXES)[number];

/**
 * Which columns of a LeRobot vector feature are the end-effector's x, y, z (translation), roll,
 * pitch, yaw (rotation; absent ones read as 0) and the gripper.
 */
export const LeRobotVectorMapping = z.strictObject({
  feature: z.string().min(1),
  x: Column,
  y: Column,
  z: Column,
  roll: Column.optional(),
  pitch: Column.optional(),
  yaw: Column.optional(),
  gripper: Column,
});
export type LeRobotVectorMapping = z.infer<typeof LeRobotVectorMapping>;

const Sign = z.union([z.literal(1), z.literal(-1)]);

/**
 * How a LeRobot dataset's actions and states become D_rob's (docs/dataset-format.md, "LeRobot
 * import"). Every field has a default for the common case: `action` and `observation.state` with
 * columns named x, y, z, roll, pitch, yaw, gripper, in metres and radians, gripper 1 open, 0 closed.
 */
export const LeRobotMapping = z.strictObject({
  /** The action feature's columns: per-step end-effector deltas and the gripper command. Default: `action`, columns by name. */
  action: LeRobotVectorMapping.optional(),
  /** The state feature's columns: end-effector pose and gripper. Default: `observation.state`, columns by name. */
  state: LeRobotVectorMapping.optional(),
  translationUnit: z.enum(['m', 'cm', 'mm']).default('m'),
  rotationUnit: z.enum(['rad', 'deg']).default('rad'),
  /** Multipliers turning the dataset's translation axes into D_rob's +x forward, +y left, +z up. */
  axisSigns: z.strictObject({ x: Sign, y: Sign, z: Sign }).default({ x: 1, y: 1, z: 1 }),
  /** The raw gripper values meaning open and closed; values map linearly onto D_rob's 1 (open) .. 0 (closed). */
  gripper: z
    .strictObject({ open: Finite, closed: Finite })
    .refine((g) => g.open !== g.closed, 'open and closed must differ')
    .default({ open: 1, closed: 0 }),
  /** LeRobot image/video feature -> D_rob camera. Default: see defaultCameras. */
  cameras: z.record(z.string(), Camera).optional(),
});
export type LeRobotMapping = z.input<typeof LeRobotMapping>;

/** Column names accepted per axis when no mapping names them (compared lower-case). */
const AXIS_NAMES: Record<PoseAxis, string[]> = {
  x: ['x', 'dx', 'delta_x', 'ee_x', 'eef_x'],
  y: ['y', 'dy', 'delta_y', 'ee_y', 'eef_y'],
  z: ['z', 'dz', 'delta_z', 'ee_z', 'eef_z'],
  roll: ['roll', 'droll', 'delta_roll', 'ee_roll', 'eef_roll'],
  pitch: ['pitch', 'dpitch', 'delta_pitch', 'ee_pitch', 'eef_pitch'],
  yaw: ['yaw', 'dyaw', 'delta_yaw', 'ee_yaw', 'eef_yaw'],
};
/** Columns LeRobot adds to every dataset: bookkeeping, not recorded signals. */
const LEROBOT_BOOKKEEPING = new Set(['timestamp', 'frame_index', 'episode_index', 'index', 'task_index']);
const JOINT_LIKE = /joint|shoulder|elbow|wrist|\.pos$/i;
const TRANSLATION_SCALE = { m: 1, cm: 0.01, mm: 0.001 } as const;
const ROTATION_SCALE = { rad: 1, deg: Math.PI / 180 } as const;

function flatNames(names: z.infer<typeof FeatureNames>): string[] | undefined {
  if (!names) return undefined;
  return Array.isArray(names) ? names : Object.values(names).flat();
}

/** Column indices of one vector feature, in D_rob order: x y z roll pitch yaw gripper (undefined: read as 0). */
type ResolvedVector = { feature: string; columns: (number | undefined)[] };

export interface ResolvedLeRobotMapping {
  action: ResolvedVector;
  state: ResolvedVector;
  translationScale: number;
  rotationScale: number;
  axisSigns: [number, number, number];
  gripper: { open: number; closed: number };
  /** LeRobot camera feature -> D_rob camera. */
  cameras: [string, Camera][];
}

function resolveVector(info: LeRobotInfo, dataset: string, role: 'action' | 'state', given: LeRobotVectorMapping | undefined): ResolvedVector {
  const featureName = given?.feature ?? (role === 'action' ? 'action' : 'observation.state');
  const feature = info.features[featureName];
  const option = `the mapping's "${role}"`;
  if (!feature) {
    const vectors = Object.entries(info.features)
      .filter(([k, f]) => !LEROBOT_BOOKKEEPING.has(k) && f.shape.length === 1 && !['video', 'image', 'string'].includes(f.dtype))
      .sort(([a], [b]) => a.localeCompare(b));
    throw new LeRobotImportError(dataset, `no feature "${featureName}" for the ${role} (vector features: ${vectors.map(([k]) => k).join(', ') || 'none'}); name it in ${option}.feature`);
  }
  if (!/^float/.test(feature.dtype) || feature.shape.length !== 1) {
    throw new LeRobotImportError(dataset, `feature "${featureName}" is ${feature.dtype} ${JSON.stringify(feature.shape)}; the ${role} needs a 1-D float vector`);
  }
  const width = feature.shape[0] as number;
  const names = flatNames(feature.names);
  const lower = names?.map((n) => n.toLowerCase());
  const column = (axis: PoseAxis | 'gripper', col: z.infer<typeof Column>): number => {
    if (typeof col === 'number') {
      if (col >= width) throw new LeRobotImportError(dataset, `${option}.${axis}: column ${col} is out of range; feature "${featureName}" has ${width} columns`);
      return col;
    }
    const i = names?.indexOf(col) ?? -1;
    if (i < 0) throw new LeRobotImportError(dataset, `${option}.${axis}: feature "${featureName}" has no column named "${col}" (names: ${names?.join(', ') ?? 'none'})`);
    return i;
  };
  if (given) {
    return {
      feature: featureName,
      columns: [...POSE_AXES.map((a) => (given[a] === undefined ? undefined : column(a, given[a]))), column('gripper', given.gripper)],
    };
  }
  if (!lower) {
    throw new LeRobotImportError(
      dataset,
      `feature "${featureName}" has no column names, so which columns are the end-effector ${role === 'action' ? 'deltas' : 'pose'} and the gripper cannot be established; give ${option} with column indices`,
    );
  }
  const found = (aliases: string[]): number | undefined => {
    for (const alias of aliases) {
      const i = lower.indexOf(alias);
      if (i >= 0) return i;
    }
    return undefined;
  };
  const pose = POSE_AXES.map((a) => found(AXIS_NAMES[a]));
  const grippers = lower.flatMap((n, i) => (n.includes('gripper') ? [i] : []));
  const missing = [...(['x', 'y', 'z'] as const).filter((_, k) => pose[k] === undefined), ...(grippers.length === 0 ? ['gripper'] : [])];
  if (missing.length > 0) {
    const joints = names!.filter((n) => JOINT_LIKE.test(n));
    const why =
      joints.length > 0
        ? `its columns look like joint positions (${joints.join(', ')}); D_rob needs end-effector ${role === 'action' ? 'deltas' : 'poses'} (x, y, z [, roll, pitch, yaw]) and a gripper, and joint positions are not converted`
        : `no column named ${missing.join(', ')} (names: ${names!.join(', ')})`;
    throw new LeRobotImportError(dataset, `feature "${featureName}" cannot be mapped to the ${role}: ${why}; if it holds them under other names, give ${option}`);
  }
  if (grippers.length > 1) {
    throw new LeRobotImportError(dataset, `feature "${featureName}" has several gripper columns (${grippers.map((i) => names![i]).join(', ')}); name one in ${option}.gripper`);
  }
  return { feature: featureName, columns: [...pose, grippers[0]] };
}

/**
 * The image/video features in D_rob camera order when the mapping names none: a feature whose name
 * contains "wrist" is the wrist camera image_3, the others in name order image_0 (main), image_1, image_2.
 */
function defaultCameras(info: LeRobotInfo, dataset: string): [string, Camera][] {
  const visual = Object.keys(info.features)
    .filter((k) => ['video', 'image'].includes(info.features[k]!.dtype))
    .sort();
  const wrist = visual.filter((k) => /wrist/i.test(k));
  const others = visual.filter((k) => !/wrist/i.test(k));
  if (wrist.length > 1 || others.length > 3) {
    throw new LeRobotImportError(dataset, `${visual.length} camera features (${visual.join(', ')}) are more than D_rob's image_0..image_3 by the default rule; map them in the mapping's "cameras"`);
  }
  const cameras: [string, Camera][] = others.map((k, i) => [k, Camera.options[i] as Camera]);
  if (wrist[0]) cameras.push([wrist[0], 'image_3']);
  return cameras;
}

/**
 * The mapping for this dataset, checked against its features.
 * @throws LeRobotImportError naming what is missing or wrong (joint-space actions, unknown features or columns)
 */
export function resolveLeRobotMapping(info: LeRobotInfo, dataset: string, mapping: LeRobotMapping = {}): ResolvedLeRobotMapping {
  const parsed = LeRobotMapping.safeParse(mapping);
  if (!parsed.success) throw new LeRobotImportError(dataset, `invalid mapping: ${describeZodIssues(parsed.error)}`);
  const m = parsed.data;
  if (!(LEROBOT_CODEBASE_VERSIONS as readonly string[]).includes(info.codebaseVersion)) {
    throw new LeRobotImportError(dataset, `LeRobot format ${info.codebaseVersion} is not supported (supported: ${LEROBOT_CODEBASE_VERSIONS.join(', ')})`);
  }
  const cameras = m.cameras ? Object.entries(m.cameras) : defaultCameras(info, dataset);
  for (const [feature] of cameras) {
    const f = info.features[feature];
    if (!f || !['video', 'image'].includes(f.dtype)) throw new LeRobotImportError(dataset, `the mapping's "cameras": "${feature}" is not an image or video feature`);
  }
  if (new Set(cameras.map(([, c]) => c)).size !== cameras.length) throw new LeRobotImportError(dataset, `the mapping's "cameras" maps two features to one D_rob camera`);
  if (cameras.length === 0) throw new LeRobotImportError(dataset, 'no image or video feature: a D_rob step needs at least one camera frame');
  return {
    action: resolveVector(info, dataset, 'action', m.action),
    state: resolveVector(info, dataset, 'state', m.state),
    translationScale: TRANSLATION_SCALE[m.translationUnit],
    rotationScale: ROTATION_SCALE[m.rotationUnit],
    axisSigns: [m.axisSigns.x, m.axisSigns.y, m.axisSigns.z],
    gripper: m.gripper,
    cameras,
  };
}

/** `lerobot-<first 16 hex of the recording's sha256>`: like Bridge ids, the episode's content names it. */
export function leRobotTrajectoryId(recordingSha256Hex: string): string {
  return `lerobot-${recordingSha256Hex.slice(0, 16)}`;
}

/** One frame's vector in D_rob order and units: [x, y, z, roll, pitch, yaw, gripper]. */
function mapVector(m: ResolvedLeRobotMapping, vector: ResolvedVector, values: number[], where: string): number[] {
  const read = (k: number): number => {
    const col = vector.columns[k];
    return col === undefined ? 0 : (values[col] as number);
  };
  const translation = [0, 1, 2].map((k) => read(k) * m.translationScale * (m.axisSigns[k] as number));
  const rotation = [3, 4, 5].map((k) => read(k) * m.rotationScale);
  const raw = read(6);
  const gripper = (raw - m.gripper.closed) / (m.gripper.open - m.gripper.closed);
  // Float32 storage: a value a rounding step outside is the end itself, anything further is a wrong mapping.
  const tolerance = 1e-5;
  if (!(gripper >= -tolerance && gripper <= 1 + tolerance)) {
    throw new Error(
      `${where}: feature "${vector.feature}" gripper column ${vector.columns[6]}: value ${raw} lies outside closed ${m.gripper.closed} .. open ${m.gripper.open}; set the mapping's "gripper"`,
    );
  }
  return [...translation, ...rotation, Math.min(1, Math.max(0, gripper))];
}

function imageExt(path: string): 'png' | 'jpg' {
  return path.endsWith('.png') ? 'png' : 'jpg';
}

/** Turns one decoded episode into a D_rob trajectory and its frames. */
async function leRobotEpisode(episode: LeRobotEpisode, decodedDir: string, m: ResolvedLeRobotMapping, dataset: string, info: LeRobotInfo): Promise<PendingTrajectory> {
  const n = episode.length;
  const column = (feature: string): number[][] => {
    const rows = episode.columns[feature];
    if (!rows || rows.length !== n) throw new LeRobotImportError(dataset, `episode ${episode.episodeIndex}: feature "${feature}" has ${rows?.length ?? 0} rows for ${n} frames`);
    return rows;
  };
  const mapRows = (vector: ResolvedVector): number[][] => {
    try {
      return column(vector.feature).map((values, i) => mapVector(m, vector, values, `episode ${episode.episodeIndex} frame ${i}`));
    } catch (err) {
      if (err instanceof LeRobotImportError) throw err;
      throw new LeRobotImportError(dataset, (err as Error).message);
    }
  };
  const actions = mapRows(m.action);
  const states = mapRows(m.state);
  const done = episode.columns['next.done'];
  const instruction = episode.tasks.map((t) => t.trim()).find((t) => t.length > 0);
  if (instruction === undefined) throw new LeRobotImportError(dataset, `episode ${episode.episodeIndex}: no task string on any frame; D_rob needs an instruction`);

  const shots: { camera: Camera; frames: { bytes: Uint8Array; ext: 'png' | 'jpg'; sha256: string }[] }[] = [];
  for (const [feature, camera] of m.cameras) {
    const paths = episode.frames[feature] ?? [];
    if (paths.length !== n) throw new LeRobotImportError(dataset, `episode ${episode.episodeIndex}: camera "${feature}" decoded ${paths.length} frames for ${n} frames`);
    const frames = await Promise.all(
      paths.map(async (p) => {
        const bytes = await readFile(join(decodedDir, p));
        return { bytes, ext: imageExt(p), sha256: sha256Hex(bytes) };
      }),
    );
    shots.push({ camera, frames });
  }
  const recorded: RecordedStep[] = actions.map((action, i) => ({
    state: states[i] as number[],
    action,
    frameSha256: Object.fromEntries(shots.map(({ camera, frames }) => [camera, frames[i]?.sha256])),
  }));
  const id = leRobotTrajectoryId(recordingSha256(recorded));
  const { files, stepFrames } = layOutFrames(id, n, shots);
  const steps = actions.map((action, i) => ({
    index: i,
    frames: stepFrames[i],
    state: states[i],
    action,
    isFirst: i === 0,
    isLast: i === n - 1,
    // LeRobot marks success ends in `next.done` when it records them; without it no step is terminal.
    isTerminal: done ? (done[i]?.[0] ?? 0) > 0.5 : false,
  })) as DRobStep[];
  const candidate = {
    formatVersion: D_ROB_FORMAT_VERSION,
    id,
    instruction,
    robot: info.robotType ?? 'unknown',
    controlHz: info.fps,
    cameras: shots.map((s) => s.camera),
    steps,
    source: { kind: 'lerobot' as const, dataset, episodeIndex: episode.episodeIndex, codebaseVersion: info.codebaseVersion },
  };
  const parsed = DRobTrajectory.safeParse(candidate);
  if (!parsed.success) throw new LeRobotImportError(dataset, `episode ${episode.episodeIndex}: not a valid D_rob trajectory: ${describeZodIssues(parsed.error)}`);
  return { trajectory: parsed.data, files };
}

export interface ImportLeRobotOptions {
  /** The LeRobot dataset root: a local directory, file:// URI, or s3:// prefix (read through the store). */
  source: string;
  outUri: string;
  name: string;
  mapping?: LeRobotMapping;
  /** Import the first N episodes only. */
  limit?: number;
  license?: string;
  onProgress?: (line: string) => void;
}

/** Copies an s3:// dataset prefix into `dir` through the store (LeRobotDataset reads local files). */
async function download(store: ObjectStore, prefixUri: string, dir: string): Promise<void> {
  let count = 0;
  for await (const object of store.list(prefixUri)) {
    const rel = relativeTo(prefixUri, object.uri);
    if (rel === undefined) continue;
    const target = join(dir, rel);
    await mkdir(dirname(target), { recursive: true });
    await writeFile(target, await store.get(object.uri));
    count++;
  }
  if (count === 0) throw new LeRobotImportError(prefixUri, 'no objects under this prefix');
}

/** What the reader child prints, one JSON object a line (python/lerobot/vla_lerobot/read.py). */
const ReaderMessage = z.union([z.object({ info: z.unknown() }), z.object({ episode: z.int(), of: z.int() }), z.object({ done: z.literal(true) })]);

/**
 * The reader child of one dataset: it loads the dataset once (importing lerobot and torch costs
 * more than reading a small dataset), answers its metadata, then decodes episodes or stops.
 */
interface LeRobotReader {
  info: LeRobotInfo;
  decode(out: string, cameras: string[], limit: number | undefined, onEpisode: (done: number, of: number) => void): Promise<void>;
  close(): Promise<void>;
}

async function openReader(python: PythonEnv, root: string, dataset: string): Promise<LeRobotReader> {
  const child = spawn(python.python, ['-m', 'vla_lerobot.read', '--root', root], {
    env: { ...python.env, HF_HUB_OFFLINE: '1', HF_DATASETS_OFFLINE: '1' },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-16_384);
  });
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', reject);
  }).catch((err: unknown) => {
    throw new LeRobotImportError(dataset, `could not start ${python.python}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  });
  const stdoutLines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const failed = async (): Promise<LeRobotImportError> => {
    const code = await exited;
    const lines = stderr.trim().split('\n');
    // The reader's own refusals are one `error: ` line; anything else is lerobot's traceback, whose end says most.
    const refusal = lines.findLast((line) => line.startsWith('error: '));
    if (refusal !== undefined) return new LeRobotImportError(dataset, refusal.slice('error: '.length));
    return new LeRobotImportError(dataset, `lerobot could not read it (exit ${code}): ${lines.slice(-3).join('\n')}`);
  };
  const next = async (): Promise<z.infer<typeof ReaderMessage>> => {
    for (;;) {
      const line = await stdoutLines.next();
      if (line.done) throw await failed();
      // A library printing to stdout is not a message: only the reader's JSON lines are.
      let value: unknown;
      try {
        value = JSON.parse(line.value);
      } catch {
        continue;
      }
      const parsed = ReaderMessage.safeParse(value);
      if (parsed.success) return parsed.data;
    }
  };
  // Stops only this import's own child, by its handle.
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
  };
  try {
    const first = await next();
    const info = LeRobotInfo.safeParse('info' in first ? first.info : undefined);
    if (!info.success) throw new LeRobotImportError(dataset, `unexpected metadata from lerobot: ${describeZodIssues(info.error)}`);
    return {
      info: info.data,
      async decode(out, cameras, limit, onEpisode) {
        child.stdin.end(`${JSON.stringify({ out, cameras, limit: limit ?? null })}\n`);
        for (;;) {
          const message = await next();
          if ('done' in message) break;
          if ('episode' in message) onEpisode(message.episode + 1, message.of);
        }
        if ((await exited) !== 0) throw await failed();
      },
      async close() {
        if (child.stdin.writable) child.stdin.end('null\n');
        const timer = setTimeout(() => void stop(), 30_000);
        await exited;
        clearTimeout(timer);
      },
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** The metadata of the LeRobot dataset in local folder `root`, as lerobot loads it; `dataset` names it in errors. */
export async function readLeRobotInfo(python: PythonEnv, root: string, dataset: string = root): Promise<LeRobotInfo> {
  const reader = await openReader(python, root, dataset);
  await reader.close();
  return reader.info;
}

/**
 * Imports a LeRobot dataset as a D_rob dataset at `outUri`: frames decoded by lerobot (PNG), the
 * episode's task as the instruction, actions and states mapped by `mapping`. The mapping is checked
 * before any frame is decoded; a refused dataset leaves nothing behind, and so does a failure later
 * (writeDataset deletes what it wrote).
 *
 * @throws LeRobotImportError, DatasetExistsError
 */
export async function importLeRobot(store: ObjectStore, python: PythonEnv, options: ImportLeRobotOptions): Promise<DatasetManifest> {
  if (options.limit !== undefined && (!Number.isInteger(options.limit) || options.limit < 1)) {
    throw new DataError(DataErrorCode.InvalidInput, `limit must be a positive integer, got ${options.limit}`);
  }
  const dataset = options.source;
  const scratch = await mkdtemp(join(tmpdir(), 'vla-lerobot-import-'));
  try {
    let root = dataset;
    if (dataset.startsWith('s3://')) {
      root = join(scratch, 'dataset');
      options.onProgress?.(`downloading ${dataset}`);
      await download(store, dataset.replace(/\/+$/, ''), root);
    } else if (dataset.startsWith('file://')) {
      const parsed = parseObjectUri(dataset);
      if (parsed.scheme === 'file') root = parsed.path;
    }
    const decodedDir = join(scratch, 'decoded');
    const reader = await openReader(python, root, dataset);
    const info = reader.info;
    let mapping: ResolvedLeRobotMapping;
    try {
      mapping = resolveLeRobotMapping(info, dataset, options.mapping);
      options.onProgress?.(`decoding ${options.limit === undefined ? info.totalEpisodes : Math.min(options.limit, info.totalEpisodes)} episodes with lerobot`);
      await reader.decode(decodedDir, mapping.cameras.map(([feature]) => feature), options.limit, (done, of) => options.onProgress?.(`decoded episode ${done}/${of}`));
    } finally {
      await reader.close();
    }
    const count = Math.min(options.limit ?? info.totalEpisodes, info.totalEpisodes);
    async function* trajectories(): AsyncGenerator<PendingTrajectory> {
      for (let e = 0; e < count; e++) {
        const file = join(decodedDir, `episode-${e}.json`);
        const episode = parseStoredJson(file, await readFile(file), LeRobotEpisode, 'a decoded LeRobot episode');
        yield await leRobotEpisode(episode, decodedDir, mapping, dataset, info);
      }
    }
    return await writeDataset(
      store,
      options.outUri,
      { name: options.name, kind: 'd_rob', source: { ...LEROBOT_IMPORTER, inputs: [dataset], ...(options.license !== undefined && { license: options.license }) } },
      trajectories(),
      { onDuplicate: (t, kept) => options.onProgress?.(`skipped episode ${t.source.kind === 'lerobot' ? t.source.episodeIndex : '?'}: the same recording as ${kept}`) },
    );
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}
