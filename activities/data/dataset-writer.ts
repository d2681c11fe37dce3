import {
  Camera,
  DatasetManifest,
  DRobTrajectory,
  joinUri,
  MANIFEST_FILE,
  MANIFEST_FORMAT_VERSION,
  ObjectUri,
  RelativeRef,
  SafeId,
  type ManifestFile,
  type ManifestTrajectory,
} from '../../data-schemas';
import { ZodError, type z } from 'zod';
import { getJson, InvalidObjectError } from '../store';
import { ObjectNotFoundError } from '../store/errors';
import { sha256Hex } from '../store/checksum';
import type { ObjectStore } from '../store/types';
import { DatasetExistsError, DatasetInvalidError, DatasetNotFoundError } from './errors';
import { formatIssue, fromZodError, storedJsonIssues } from './issues';
import { TaskPool } from './pool';

/** A trajectory ready to write, with the bytes of the files it references. */
export interface PendingTrajectory {
  trajectory: DRobTrajectory;
  /** Keyed by path relative to the dataset root; every path must lie under `frames/<id>/`. */
  files: Map<string, Uint8Array>;
}

export interface DatasetMeta {
  name: string;
  kind: 'd_rob';
  source: { producer: string; producerVersion: string; inputs: string[]; license?: string };
}

export interface WriteDatasetOptions {
  /** Called with the number of trajectories whose record and files are all written. */
  onProgress?: (n: number) => void;
  /**
   * Called for each trajectory skipped because the dataset already holds its recording (same
   * content hash, see trajectoryContentSha256), with the id of the one kept.
   */
  onDuplicate?: (skipped: DRobTrajectory, keptId: string) => void;
  /**
   * Writes in flight at once.
   * @default 16
   */
  concurrency?: number;
}

/** Path of a trajectory's record, relative to the dataset root. */
export function trajectoryRecordPath(id: string): string {
  return `trajectories/${id}.json`;
}

/** Path of one frame, relative to the dataset root: `frames/<id>/<camera>/<step:03d>.<ext>`. */
export function framePath(id: string, camera: Camera, step: number, ext: 'jpg' | 'png' = 'jpg'): string {
  return `frames/${id}/${camera}/${String(step).padStart(3, '0')}.${ext}`;
}

/** One camera's encoded frames, one per step. */
export interface CameraFrames {
  camera: Camera;
  frames: readonly { bytes: Uint8Array; ext: 'jpg' | 'png' }[];
}

/**
 * Lays out a trajectory's frames: the files to write, keyed by their `framePath`, and each step's
 * frame paths by camera (what `DRobStep.frames` holds).
 */
export function layOutFrames(id: string, steps: number, cameras: readonly CameraFrames[]): { files: Map<string, Uint8Array>; stepFrames: Partial<Record<Camera, string>>[] } {
  const files = new Map<string, Uint8Array>();
  const stepFrames: Partial<Record<Camera, string>>[] = Array.from({ length: steps }, () => ({}));
  for (const { camera, frames } of cameras) {
    frames.forEach(({ bytes, ext }, step) => {
      const path = framePath(id, camera, step, ext);
      files.set(path, bytes);
      (stepFrames[step] as Partial<Record<Camera, string>>)[camera] = path;
    });
  }
  return { files, stepFrames };
}

/** One step as its content hash sees it: the state, the action and the sha256 of each camera's frame. */
export interface RecordedStep {
  state: readonly number[];
  action: readonly number[];
  frameSha256: Partial<Record<Camera, string>>;
}

/**
 * sha256 of what the robot recorded: per step the state, the action and the bytes (as sha256) of
 * each camera's frame. The instruction, the id, the frame paths and the source (file, record
 * index) are left out, so the same episode hashes the same from whichever file, at whichever
 * position and under whichever label it arrives. Imported ids are derived from it, datasets hold
 * each recording once, and the train/validation split hashes it (activities/shard/plan.ts).
 */
export function recordingSha256(steps: readonly RecordedStep[]): string {
  const byCamera = (f: Partial<Record<Camera, string>>): [string, string][] =>
    Object.entries(f)
      .filter((e): e is [string, string] => e[1] !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return sha256Hex(JSON.stringify(steps.map((step) => [step.state, step.action, byCamera(step.frameSha256)])));
}

/**
 * recordingSha256 of a stored trajectory, given the sha256 of its frames by path (the manifest's
 * `files`, or the bytes about to be written).
 * @throws DatasetInvalidError when a frame's sha256 is unknown
 */
export function trajectoryContentSha256(t: DRobTrajectory, frameSha256: (path: string) => string | undefined): string {
  return recordingSha256(
    t.steps.map((step) => {
      const frames: Partial<Record<Camera, string>> = {};
      for (const [camera, path] of Object.entries(step.frames) as [Camera, string][]) {
        const sha = frameSha256(path);
        if (sha === undefined) throw new DatasetInvalidError(`trajectory ${t.id} step ${step.index}: no sha256 for frame ${path}`);
        frames[camera] = sha;
      }
      return { state: step.state, action: step.action, frameSha256: frames };
    }),
  );
}

function contentType(path: string): string {
  if (path.endsWith('.json')) return 'application/json';
  if (path.endsWith('.jpg') || path.endsWith('.jpeg')) return 'image/jpeg';
  if (path.endsWith('.png')) return 'image/png';
  return 'application/octet-stream';
}

function checkPending(p: PendingTrajectory, ordinal: number): DRobTrajectory {
  const parsed = DRobTrajectory.safeParse(p.trajectory);
  const rawId = (p.trajectory as { id?: unknown }).id;
  const label = typeof rawId === 'string' ? rawId : `#${ordinal}`;
  if (!parsed.success) {
    const lines = fromZodError(trajectoryRecordPath(label), label, parsed.error, p.trajectory).map(formatIssue);
    throw new DatasetInvalidError(`trajectory ${label} is invalid:\n  ${lines.join('\n  ')}`);
  }
  const t = parsed.data;
  const prefix = `frames/${t.id}/`;
  for (const path of p.files.keys()) {
    const ref = RelativeRef.safeParse(path);
    if (!ref.success) throw new DatasetInvalidError(`trajectory ${t.id}: file path "${path}" ${ref.error.issues[0]?.message ?? 'is invalid'}`);
    if (!path.startsWith(prefix)) throw new DatasetInvalidError(`trajectory ${t.id}: file path "${path}" must lie under ${prefix}`);
  }
  for (const step of t.steps) {
    for (const [camera, ref] of Object.entries(step.frames)) {
      if (!p.files.has(ref)) {
        throw new DatasetInvalidError(`trajectory ${t.id} step ${step.index}: frame ${camera} -> ${ref} is not among the trajectory's files`);
      }
    }
  }
  return t;
}

/**
 * The one way a dataset gets written. Layout (docs/dataset-format.md):
 * `<root>/trajectories/<id>.json`, `<root>/frames/<id>/<camera>/<step:03d>.jpg`, and
 * `<root>/manifest.json` last, created only if absent: until it exists there is no dataset.
 *
 * Each recording is written once: a trajectory whose content hash (trajectoryContentSha256) an
 * earlier one already has is skipped and reported to `onDuplicate`; two different recordings
 * under one id fail the write. The manifest lists each trajectory's content hash.
 *
 * Refuses before writing anything when a manifest already exists. Any failure part-way (bad
 * trajectory, failing source iterator, store error) deletes every object this call wrote (and, on
 * a file:// store, the directories left empty, the root's included), then rethrows. Trajectories
 * are consumed as a stream, with at most `concurrency` writes in flight.
 *
 * @throws DatasetExistsError, DatasetInvalidError, or what the source or store throws.
 */
export async function writeDataset(
  store: ObjectStore,
  rootUri: string,
  meta: DatasetMeta,
  trajectories: AsyncIterable<PendingTrajectory> | Iterable<PendingTrajectory>,
  options: WriteDatasetOptions = {},
): Promise<DatasetManifest> {
  const root = ObjectUri.safeParse(rootUri);
  if (!root.success) throw new DatasetInvalidError(`dataset root ${rootUri}: ${root.error.issues[0]?.message ?? 'invalid URI'}`);
  const name = SafeId.safeParse(meta.name);
  if (!name.success) throw new DatasetInvalidError(`dataset name "${meta.name}": ${name.error.issues[0]?.message ?? 'invalid'}`);
  const concurrency = options.concurrency ?? 16;
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new DatasetInvalidError(`concurrency must be a positive integer, got ${concurrency}`);

  const manifestUri = joinUri(rootUri, MANIFEST_FILE);
  if (await store.head(manifestUri)) throw new DatasetExistsError(rootUri);

  const written: string[] = [];
  const files: ManifestFile[] = [];
  const entries: ManifestTrajectory[] = [];
  const seenIds = new Set<string>();
  /** content hash -> id of the trajectory written with it */
  const seenContent = new Map<string, string>();
  const pool = new TaskPool(concurrency);
  let done = 0;

  const write = async (path: string, body: Uint8Array, sha256: string, onWritten: () => void): Promise<void> => {
    files.push({ path, sha256, bytes: body.byteLength });
    const uri = joinUri(rootUri, path);
    // Recorded before the put: a put that fails late (a timeout) may still have landed.
    written.push(uri);
    await pool.add(async () => {
      await store.put(uri, body, { contentType: contentType(path) });
      onWritten();
    });
  };

  try {
    let ordinal = 0;
    for await (const pending of trajectories) {
      const t = checkPending(pending, ordinal++);
      const fileSha256 = new Map([...pending.files].map(([path, body]) => [path, sha256Hex(body)]));
      const contentSha256 = trajectoryContentSha256(t, (path) => fileSha256.get(path));
      const kept = seenContent.get(contentSha256);
      if (kept !== undefined) {
        options.onDuplicate?.(t, kept);
        continue;
      }
      if (seenIds.has(t.id)) throw new DatasetInvalidError(`duplicate trajectory id ${t.id} (two different recordings)`);
      seenIds.add(t.id);
      seenContent.set(contentSha256, t.id);
      const record = new TextEncoder().encode(JSON.stringify(t) + '\n');
      const recordPath = trajectoryRecordPath(t.id);
      entries.push({ id: t.id, record: recordPath, instruction: t.instruction, steps: t.steps.length, contentSha256 });
      let remaining = pending.files.size + 1;
      const onWritten = (): void => {
        if (--remaining === 0) options.onProgress?.(++done);
      };
      await write(recordPath, record, sha256Hex(record), onWritten);
      for (const [path, body] of pending.files) await write(path, body, fileSha256.get(path) as string, onWritten);
    }
    await pool.settle();
    pool.throwIfFailed();
  } catch (err) {
    await pool.settle();
    await deleteAll(store, rootUri, written, concurrency);
    throw err;
  }

  files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const manifest = DatasetManifest.parse({
    formatVersion: MANIFEST_FORMAT_VERSION,
    kind: meta.kind,
    name: name.data,
    createdAt: new Date().toISOString(),
    source: meta.source,
    counts: {
      trajectories: entries.length,
      steps: entries.reduce((n, e) => n + e.steps, 0),
      files: files.length,
      bytes: files.reduce((n, f) => n + f.bytes, 0),
    },
    trajectories: entries,
    files,
  });

  let created: boolean;
  try {
    created = (await store.putIfAbsent(manifestUri, JSON.stringify(manifest, null, 2) + '\n', { contentType: 'application/json' })).created;
  } catch (err) {
    await deleteAll(store, rootUri, written, concurrency);
    throw err;
  }
  // Another writer finished first. Its manifest now lists files at the same paths, so deleting
  // "ours" would break its dataset; identical inputs (a retried activity) wrote identical bytes.
  if (!created) throw new DatasetExistsError(rootUri);
  return manifest;
}

/**
 * Best effort: the caller is already failing with a more useful error than a failed delete. On a
 * file:// store the directories the write created go too, the root included once it is empty.
 */
async function deleteAll(store: ObjectStore, rootUri: string, uris: readonly string[], concurrency: number): Promise<void> {
  const pool = new TaskPool(concurrency);
  for (const uri of uris) {
    await pool.add(() => store.delete(uri, { pruneEmptyDirsUpTo: rootUri }).catch(() => undefined));
  }
  await pool.settle();
}

/** What a dataset's files should hold, for the store reader's errors. */
export const MANIFEST_EXPECTED = `a dataset manifest (${MANIFEST_FILE})`;
export const TRAJECTORY_EXPECTED = 'a D_rob trajectory';
export const DLAN_RECORD_EXPECTED = 'a D_lan record';

/**
 * Reads one of a dataset's JSON files through the store's reader; a file that is not JSON or not
 * what it should hold is a DatasetInvalidError listing each located problem.
 * @throws ObjectNotFoundError when it is missing
 */
async function readDatasetJson<S extends z.ZodType>(store: ObjectStore, rootUri: string, file: string, schema: S, expected: string, record?: string): Promise<z.output<S>> {
  const uri = joinUri(rootUri, file);
  try {
    return await getJson(store, uri, schema, expected);
  } catch (err) {
    if (!(err instanceof InvalidObjectError)) throw err;
    // Not JSON at all: the reader's one line says it; schema problems are listed one per line.
    if (!(err.cause instanceof ZodError)) throw new DatasetInvalidError(err.message, { cause: err });
    const lines = storedJsonIssues(err, file, record).map(formatIssue);
    throw new DatasetInvalidError(`${uri} is not ${expected}:\n  ${lines.join('\n  ')}`, { cause: err });
  }
}

/**
 * Reads and validates a dataset's manifest.
 * @throws DatasetNotFoundError when the root has no manifest.json; DatasetInvalidError when it does not parse.
 */
export async function readManifest(store: ObjectStore, rootUri: string): Promise<DatasetManifest> {
  try {
    return await readDatasetJson(store, rootUri, MANIFEST_FILE, DatasetManifest, MANIFEST_EXPECTED);
  } catch (err) {
    if (err instanceof ObjectNotFoundError) throw new DatasetNotFoundError(rootUri);
    throw err;
  }
}

/**
 * Reads one trajectory record named by a manifest entry and checks it against the schema and the entry.
 * @throws DatasetInvalidError, ObjectNotFoundError
 */
export async function readTrajectory(store: ObjectStore, rootUri: string, entry: ManifestTrajectory): Promise<DRobTrajectory> {
  const trajectory = await readDatasetJson(store, rootUri, entry.record, DRobTrajectory, TRAJECTORY_EXPECTED, entry.id);
  if (trajectory.id !== entry.id) throw new DatasetInvalidError(`${joinUri(rootUri, entry.record)}: record id ${trajectory.id} does not match manifest id ${entry.id}`);
  return trajectory;
}

/**
 * The content hash (trajectoryContentSha256) of a trajectory of this dataset: the manifest's, or,
 * for manifests written before they carried one, computed from the record and the frames' sha256
 * in the manifest.
 * @throws DatasetInvalidError when the id is not in the manifest or the record does not match it
 */
export function contentSha256Of(store: ObjectStore, rootUri: string, manifest: DatasetManifest): (trajectoryId: string) => Promise<string> {
  const entries = new Map(manifest.trajectories.map((t) => [t.id, t]));
  const fileSha256 = new Map(manifest.files.map((f) => [f.path, f.sha256]));
  return async (trajectoryId) => {
    const entry = entries.get(trajectoryId);
    if (entry === undefined) throw new DatasetInvalidError(`trajectory ${trajectoryId} is not in ${joinUri(rootUri, MANIFEST_FILE)}`);
    if (entry.contentSha256 !== undefined) return entry.contentSha256;
    return trajectoryContentSha256(await readTrajectory(store, rootUri, entry), (path) => fileSha256.get(path));
  };
}
