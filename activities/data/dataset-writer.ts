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
import { ObjectNotFoundError } from '../store/errors';
import { sha256Hex } from '../store/checksum';
import type { ObjectStore } from '../store/types';
import { DatasetExistsError, DatasetInvalidError, DatasetNotFoundError } from './errors';
import { formatIssue, fromZodError } from './issues';
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

function contentType(path: string): string {
  if (path.endsWith('.json')) return 'application/json';
  if (path.endsWith('.jpg') || path.endsWith('.jpeg')) return 'image/jpeg';
  if (path.endsWith('.png')) return 'image/png';
  return 'application/octet-stream';
}

function checkPending(p: PendingTrajectory, ordinal: number, seenIds: Set<string>): DRobTrajectory {
  const parsed = DRobTrajectory.safeParse(p.trajectory);
  const rawId = (p.trajectory as { id?: unknown }).id;
  const label = typeof rawId === 'string' ? rawId : `#${ordinal}`;
  if (!parsed.success) {
    const lines = fromZodError(trajectoryRecordPath(label), label, parsed.error, p.trajectory).map(formatIssue);
    throw new DatasetInvalidError(`trajectory ${label} is invalid:\n  ${lines.join('\n  ')}`);
  }
  const t = parsed.data;
  if (seenIds.has(t.id)) throw new DatasetInvalidError(`duplicate trajectory id ${t.id}`);
  seenIds.add(t.id);
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
 * Refuses before writing anything when a manifest already exists. Any failure part-way (bad
 * trajectory, failing source iterator, store error) deletes every object this call wrote, then
 * rethrows. Trajectories are consumed as a stream, with at most `concurrency` writes in flight.
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
  const pool = new TaskPool(concurrency);
  let done = 0;

  const write = async (path: string, body: Uint8Array, onWritten: () => void): Promise<void> => {
    files.push({ path, sha256: sha256Hex(body), bytes: body.byteLength });
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
      const t = checkPending(pending, ordinal++, seenIds);
      const record = new TextEncoder().encode(JSON.stringify(t) + '\n');
      const recordPath = trajectoryRecordPath(t.id);
      entries.push({ id: t.id, record: recordPath, instruction: t.instruction, steps: t.steps.length });
      let remaining = pending.files.size + 1;
      const onWritten = (): void => {
        if (--remaining === 0) options.onProgress?.(++done);
      };
      await write(recordPath, record, onWritten);
      for (const [path, body] of pending.files) await write(path, body, onWritten);
    }
    await pool.settle();
    pool.throwIfFailed();
  } catch (err) {
    await pool.settle();
    await deleteAll(store, written, concurrency);
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
    await deleteAll(store, written, concurrency);
    throw err;
  }
  // Another writer finished first. Its manifest now lists files at the same paths, so deleting
  // "ours" would break its dataset; identical inputs (a retried activity) wrote identical bytes.
  if (!created) throw new DatasetExistsError(rootUri);
  return manifest;
}

/** Best effort: the caller is already failing with a more useful error than a failed delete. */
async function deleteAll(store: ObjectStore, uris: readonly string[], concurrency: number): Promise<void> {
  const pool = new TaskPool(concurrency);
  for (const uri of uris) {
    await pool.add(() => store.delete(uri).catch(() => undefined));
  }
  await pool.settle();
}

async function readJson(store: ObjectStore, uri: string): Promise<unknown> {
  const body = await store.get(uri);
  try {
    return JSON.parse(body.toString('utf8')) as unknown;
  } catch (err) {
    throw new DatasetInvalidError(`${uri}: not valid JSON: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
}

/**
 * Reads and validates a dataset's manifest.
 * @throws DatasetNotFoundError when the root has no manifest.json; DatasetInvalidError when it does not parse.
 */
export async function readManifest(store: ObjectStore, rootUri: string): Promise<DatasetManifest> {
  const uri = joinUri(rootUri, MANIFEST_FILE);
  let raw: unknown;
  try {
    raw = await readJson(store, uri);
  } catch (err) {
    if (err instanceof ObjectNotFoundError) throw new DatasetNotFoundError(rootUri);
    throw err;
  }
  const parsed = DatasetManifest.safeParse(raw);
  if (!parsed.success) {
    const lines = fromZodError(MANIFEST_FILE, undefined, parsed.error, raw).map(formatIssue);
    throw new DatasetInvalidError(`${uri} is not a valid manifest:\n  ${lines.join('\n  ')}`);
  }
  return parsed.data;
}

/**
 * Reads one trajectory record named by a manifest entry and checks it against the schema and the entry.
 * @throws DatasetInvalidError, ObjectNotFoundError
 */
export async function readTrajectory(store: ObjectStore, rootUri: string, entry: ManifestTrajectory): Promise<DRobTrajectory> {
  const uri = joinUri(rootUri, entry.record);
  const raw = await readJson(store, uri);
  const parsed = DRobTrajectory.safeParse(raw);
  if (!parsed.success) {
    const lines = fromZodError(entry.record, entry.id, parsed.error, raw).map(formatIssue);
    throw new DatasetInvalidError(`${uri} is not a valid trajectory:\n  ${lines.join('\n  ')}`);
  }
  if (parsed.data.id !== entry.id) throw new DatasetInvalidError(`${uri}: record id ${parsed.data.id} does not match manifest id ${entry.id}`);
  return parsed.data;
}
