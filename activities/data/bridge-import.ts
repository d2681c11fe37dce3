import { access } from 'node:fs/promises';
import { BRIDGE_CONTROL_HZ, Camera, D_ROB_FORMAT_VERSION, DRobTrajectory, type DatasetManifest, type DRobStep } from '../../data-schemas';
import { sha256Hex } from '../store/checksum';
import type { ObjectStore } from '../store/types';
import { layOutFrames, recordingSha256, writeDataset, type PendingTrajectory, type RecordedStep } from './dataset-writer';
import { BridgeRecordError, DataError, DataErrorCode } from './errors';
import { formatIssuePath } from '../../data-schemas/issues';
import { TfExample } from './tf-example';
import { readTfRecords } from './tfrecord';

export const BRIDGE_IMPORTER = { producer: 'vla-pipelines/bridge-import', producerVersion: '1' } as const;
/** BridgeData v2 is recorded on a WidowX 250S (docs/method.md, "Source data"). */
export const BRIDGE_ROBOT = 'widowx_250s';

/** Feature names of the RLDS `bridge_dataset` release (data/samples/bridge-debug/features.json). */
export const BridgeFeature = {
  state: 'steps/observation/state',
  action: 'steps/action',
  instruction: 'steps/language_instruction',
  isFirst: 'steps/is_first',
  isLast: 'steps/is_last',
  isTerminal: 'steps/is_terminal',
  filePath: 'episode_metadata/file_path',
  episodeId: 'episode_metadata/episode_id',
} as const;
const IMAGE_PREFIX = 'steps/observation/image_';
const DIMS = 7;

export interface ImportBridgeOptions {
  /** TFRecord files (local paths), read in order. */
  files: string[];
  /** Dataset root to create; must not hold a dataset yet. */
  outUri: string;
  name: string;
  /** Import at most this many episodes, over all files together. */
  limit?: number;
  /** Licence of the input data, recorded in the manifest. */
  license?: string;
  /**
   * Skip episodes whose every step has an empty instruction (about a quarter of full Bridge)
   * instead of failing on them. D_rob requires an instruction.
   * @default false
   */
  skipWithoutInstruction?: boolean;
  /** Called with the number of trajectories written so far. */
  onProgress?: (n: number) => void;
  /**
   * Called with the reason for each episode left out: one already imported (the same recording
   * earlier in the files: overlapping releases), or one without an instruction when
   * `skipWithoutInstruction` is set.
   */
  onSkip?: (reason: string) => void;
}

/**
 * `bridge-<first 16 hex of the recording's sha256>` (recordingSha256: states, actions, frame
 * bytes). The id is the episode's content: the same episode gets the same id from any file, at any
 * record index, in any import, and two files that overlap give the same ids for the shared episodes.
 */
export function bridgeTrajectoryId(recordingSha256Hex: string): string {
  return `bridge-${recordingSha256Hex.slice(0, 16)}`;
}

function imageExt(b: Uint8Array): 'jpg' | 'png' | undefined {
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'jpg';
  if (b.length >= 8 && b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47) return 'png';
  return undefined;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(b);
}

/** Outcome of one record: a trajectory, or a skip the caller asked for. */
export type BridgeEpisode = { kind: 'trajectory'; pending: PendingTrajectory } | { kind: 'skipped'; reason: string };

/**
 * Turns one RLDS episode (one tf.train.Example) into a D_rob trajectory and its frames.
 * Actions are kept exactly as recorded: the cleaning rules of docs/method.md (state deltas, dropping
 * the zero first action, gripper binarisation) belong to the labeler, which needs the raw values.
 *
 * @throws BridgeRecordError naming file, record and feature; TfExampleError for undecodable records.
 */
export function bridgeEpisode(data: Uint8Array, file: string, recordIndex: number, options: { skipWithoutInstruction?: boolean } = {}): BridgeEpisode {
  const ex = TfExample.decode(data, `${file}: record ${recordIndex}`);
  const fail = (field: string | undefined, detail: string): BridgeRecordError => new BridgeRecordError(file, recordIndex, field, detail);

  const cameraFeatures: [Camera, string][] = [];
  for (const name of ex.names()) {
    if (!name.startsWith(IMAGE_PREFIX)) continue;
    const camera = Camera.safeParse(name.slice('steps/observation/'.length));
    if (!camera.success) throw fail(name, `unknown camera feature (known: ${Camera.options.map((c) => `steps/observation/${c}`).join(', ')})`);
    cameraFeatures.push([camera.data, name]);
  }

  const isFirst = ex.bools(BridgeFeature.isFirst);
  const n = isFirst.length;
  if (n === 0) throw fail(BridgeFeature.isFirst, 'episode has no steps');
  const perStep = <T>(feature: string, values: T[]): T[] => {
    if (values.length !== n) throw fail(feature, `${values.length} values for ${n} steps (counted by ${BridgeFeature.isFirst})`);
    return values;
  };
  const vectors = (feature: string): number[][] => {
    const flat = ex.floats(feature);
    if (flat.length % DIMS !== 0) throw fail(feature, `${flat.length} floats is not a whole number of ${DIMS}-D vectors`);
    if (flat.length !== n * DIMS) throw fail(feature, `${flat.length / DIMS} vectors of ${DIMS} floats for ${n} steps (expected ${n * DIMS} floats)`);
    return Array.from({ length: n }, (_, i) => flat.slice(i * DIMS, (i + 1) * DIMS));
  };
  const states = vectors(BridgeFeature.state);
  const actions = vectors(BridgeFeature.action);
  const isLast = perStep(BridgeFeature.isLast, ex.bools(BridgeFeature.isLast));
  const isTerminal = perStep(BridgeFeature.isTerminal, ex.bools(BridgeFeature.isTerminal));
  const instructions = perStep(BridgeFeature.instruction, ex.strings(BridgeFeature.instruction));
  const instruction = instructions.map((s) => s.trim()).find((s) => s.length > 0);
  if (instruction === undefined) {
    if (options.skipWithoutInstruction) return { kind: 'skipped', reason: `${file}: record ${recordIndex}: no language instruction` };
    throw fail(BridgeFeature.instruction, `every one of the ${n} steps has an empty instruction`);
  }

  const originalPath = ex.has(BridgeFeature.filePath) ? ex.strings(BridgeFeature.filePath)[0] : undefined;
  const episodeId = ex.has(BridgeFeature.episodeId) ? ex.ints(BridgeFeature.episodeId)[0] : undefined;
  const source = { kind: 'bridge_rlds' as const, file, recordIndex, ...(episodeId !== undefined && { episodeId }), ...(originalPath && { originalPath }) };

  const shotsByCamera: { camera: Camera; shots: { bytes: Uint8Array; ext: 'jpg' | 'png'; sha256: string }[] }[] = [];
  for (const [camera, feature] of cameraFeatures) {
    const shots = perStep(feature, ex.bytes(feature));
    const empty = shots.flatMap((b, i) => (b.length === 0 ? [i] : []));
    // An absent camera: RLDS stores empty bytes, or one placeholder image (the builder's all-zero
    // frame) repeated at every step; a real camera never yields identical JPEGs step after step.
    if (empty.length === n) continue;
    if (n > 1 && shots.every((b) => sameBytes(b, shots[0] as Uint8Array))) continue;
    if (empty.length > 0) throw fail(feature, `empty frame at step ${empty.join(', ')} while other steps have frames`);
    const typed = shots.map((bytes, step) => {
      const ext = imageExt(bytes);
      if (!ext) throw fail(feature, `frame at step ${step} is neither JPEG nor PNG`);
      return { bytes, ext, sha256: sha256Hex(bytes) };
    });
    shotsByCamera.push({ camera, shots: typed });
  }
  if (shotsByCamera.length === 0) throw fail(undefined, `no camera feature has frames (looked for ${IMAGE_PREFIX}0..3)`);

  // The id hashes the recording itself, so the frame paths (which contain it) come after.
  const recorded: RecordedStep[] = Array.from({ length: n }, (_, i) => ({
    state: states[i] as number[],
    action: actions[i] as number[],
    frameSha256: Object.fromEntries(shotsByCamera.map(({ camera, shots }) => [camera, shots[i]?.sha256])),
  }));
  const id = bridgeTrajectoryId(recordingSha256(recorded));
  const cameras = shotsByCamera.map((c) => c.camera);
  const { files, stepFrames: frames } = layOutFrames(id, n, shotsByCamera.map(({ camera, shots }) => ({ camera, frames: shots })));

  const steps: DRobStep[] = Array.from({ length: n }, (_, i) => ({
    index: i,
    frames: frames[i] as DRobStep['frames'],
    state: states[i] as DRobStep['state'],
    action: actions[i] as DRobStep['action'],
    isFirst: isFirst[i] as boolean,
    isLast: isLast[i] as boolean,
    isTerminal: isTerminal[i] as boolean,
  }));
  const candidate = {
    formatVersion: D_ROB_FORMAT_VERSION,
    id,
    instruction,
    robot: BRIDGE_ROBOT,
    controlHz: BRIDGE_CONTROL_HZ,
    cameras,
    steps,
    source,
  };
  const parsed = DRobTrajectory.safeParse(candidate);
  if (!parsed.success) {
    // The first bad field locates the error; the message lists the others too.
    const [first, ...rest] = parsed.error.issues;
    const more = rest.length ? `; also ${rest.map((i) => `${formatIssuePath(i.path) || '(trajectory)'}: ${i.message}`).join('; ')}` : '';
    throw new BridgeRecordError(file, recordIndex, first && formatIssuePath(first.path), `not a valid D_rob trajectory: ${first?.message ?? 'invalid'}${more}`);
  }
  return { kind: 'trajectory', pending: { trajectory: parsed.data, files } };
}

/**
 * Streams the episodes of the given TFRecord files as pending trajectories. An episode whose
 * recording came earlier (same id: see bridgeTrajectoryId) is skipped and reported to `onSkip`
 * with both places; `limit` counts the episodes yielded.
 */
export async function* readBridgeEpisodes(
  files: readonly string[],
  options: { limit?: number; skipWithoutInstruction?: boolean; onSkip?: (reason: string) => void } = {},
): AsyncGenerator<PendingTrajectory> {
  let count = 0;
  if (options.limit !== undefined && options.limit <= 0) return;
  // Where each id came from, so a shard listed twice is reported by place, not just by id.
  const seen = new Map<string, string>();
  for (const file of files) {
    for await (const record of readTfRecords(file)) {
      const episode = bridgeEpisode(record.data, file, record.index, options);
      if (episode.kind === 'skipped') {
        options.onSkip?.(episode.reason);
        continue;
      }
      const id = episode.pending.trajectory.id;
      const first = seen.get(id);
      if (first !== undefined) {
        options.onSkip?.(`${file}: record ${record.index}: same episode as ${first} (trajectory id ${id}), skipped`);
        continue;
      }
      seen.set(id, `${file}: record ${record.index}`);
      yield episode.pending;
      if (options.limit !== undefined && ++count >= options.limit) return;
    }
  }
}

/**
 * Imports RLDS `bridge_dataset` TFRecords as a D_rob dataset at `outUri`. Frames are copied
 * byte-for-byte. Each episode is imported once however many of the files hold it (`onSkip` says
 * which were left out). A corrupt or invalid record anywhere fails the import and leaves nothing
 * behind (writeDataset deletes what it wrote).
 *
 * @throws DatasetExistsError, TfRecordError, TfExampleError, BridgeRecordError
 */
export async function importBridgeRlds(store: ObjectStore, options: ImportBridgeOptions): Promise<DatasetManifest> {
  if (options.files.length === 0) throw new DataError(DataErrorCode.InvalidInput, 'no input files given');
  if (options.limit !== undefined && (!Number.isInteger(options.limit) || options.limit < 1)) {
    throw new DataError(DataErrorCode.InvalidInput, `limit must be a positive integer, got ${options.limit}`);
  }
  // Fail on a mistyped path before anything is written, not after the first file's episodes.
  for (const file of options.files) {
    await access(file).catch((err: unknown) => {
      throw new DataError(DataErrorCode.InvalidInput, `input file ${file}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    });
  }
  return writeDataset(
    store,
    options.outUri,
    {
      name: options.name,
      kind: 'd_rob',
      source: { ...BRIDGE_IMPORTER, inputs: [...options.files], ...(options.license !== undefined && { license: options.license }) },
    },
    readBridgeEpisodes(options.files, options),
    { ...(options.onProgress && { onProgress: options.onProgress }) },
  );
}
