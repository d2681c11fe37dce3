/**
 * What trainLora reads from and writes to the store, as functions of the store: the shard set, the
 * run's config.json, checkpoints with their markers, and uploaded directories. The formats are
 * declared in data-schemas/training.ts; everything read back goes through getJson/parseStoredJson.
 */
import { ApplicationFailure } from '@temporalio/activity';
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import { pipeline } from 'node:stream/promises';
import {
  CHECKPOINT_DIR,
  CHECKPOINT_MARKER_NAME,
  CheckpointMarker,
  checkpointName,
  SHARD_MANIFEST_FILE,
  ShardManifest,
  TrainingFailure,
  TrainingRunConfig,
  type ShardEntry,
  type StoredRunFile,
  type TrainLoraInput,
} from '../../data-schemas/training';
import { joinUri, relativeTo } from '../../data-schemas/uri';
import { getJson, InvalidObjectError, ObjectNotFoundError, parseStoredJson, putJson, sha256Hex, sha256HexOfStream, stageDirectory } from '../store';
import type { ObjectStore } from '../store/types';

/** Called after each file or shard moved: the activity heartbeats here. */
export type OnFile = () => void;

/** The shard set's manifest and the sha256 of its bytes (recorded in the run's config.json). */
export async function readShardManifest(store: ObjectStore, shardsUri: string): Promise<{ manifest: ShardManifest; manifestSha256: string }> {
  let bytes: Buffer;
  try {
    bytes = await store.get(shardsUri);
  } catch (err) {
    if (err instanceof ObjectNotFoundError) {
      throw ApplicationFailure.nonRetryable(`no shard set at ${shardsUri} (run shardDataset first; its result names the ${SHARD_MANIFEST_FILE})`, TrainingFailure.shardsNotFound);
    }
    throw err;
  }
  let manifest: ShardManifest;
  try {
    manifest = parseStoredJson(shardsUri, bytes, ShardManifest, `a shard manifest, the ${SHARD_MANIFEST_FILE} that shardDataset writes`);
  } catch (err) {
    if (err instanceof InvalidObjectError) throw ApplicationFailure.nonRetryable(err.message, TrainingFailure.shardsNotFound);
    throw err;
  }
  if (!manifest.shards.some((s) => s.split === 'train')) throw ApplicationFailure.nonRetryable(`${shardsUri} lists no train shard`, TrainingFailure.shardsNotFound);
  return { manifest, manifestSha256: sha256Hex(bytes) };
}

/** The first attempt records the run's config.json; a later run with another input or shard set at the same output is refused. */
export async function recordRunConfig(store: ObjectStore, input: TrainLoraInput, gitRevision: string, shardsManifestSha256: string): Promise<void> {
  const uri = joinUri(input.outputUri, 'config.json');
  const config: TrainingRunConfig = { input, gitRevision, shardsManifestSha256, createdAt: new Date().toISOString() };
  const put = await putJson(store, uri, config, { ifAbsent: true });
  if (put.created) return;
  const existing = await getJson(store, uri, TrainingRunConfig);
  // How often progress is signalled and how the activity is retried do not change what is trained.
  const comparable = (i: TrainLoraInput): string => JSON.stringify({ ...i, progressEverySeconds: 0, retry: null });
  if (comparable(existing.input) !== comparable(input) || existing.shardsManifestSha256 !== shardsManifestSha256) {
    throw ApplicationFailure.nonRetryable(
      `${input.outputUri} already holds a training run with a different configuration or shard set (see its config.json); choose a new outputUri`,
      TrainingFailure.runConfigMismatch,
    );
  }
}

/** Streams an object to a local file and returns the sha256 of what was written. */
export async function downloadTo(store: ObjectStore, uri: string, path: string): Promise<string> {
  const hash = createHash('sha256');
  const body = await store.getStream(uri);
  body.on('data', (chunk: Buffer) => hash.update(chunk));
  await pipeline(body, createWriteStream(path));
  return hash.digest('hex');
}

/** Downloads each shard once per machine into `cacheDir` (named by sha256), verifying it on the way; stops early when `signal` aborts. */
export async function stageShards(
  store: ObjectStore,
  options: { shardsUri: string; shards: ShardEntry[]; cacheDir: string; signal: AbortSignal; onFile?: OnFile },
): Promise<{ entry: ShardEntry; localPath: string }[]> {
  const { shardsUri, cacheDir } = options;
  mkdirSync(cacheDir, { recursive: true });
  const root = dirname(shardsUri.endsWith('/') ? shardsUri.slice(0, -1) : shardsUri);
  const staged: { entry: ShardEntry; localPath: string }[] = [];
  for (const entry of options.shards) {
    if (options.signal.aborted) break;
    const localPath = join(cacheDir, `${entry.sha256}.tar`);
    if (!existsSync(localPath)) {
      const partial = `${localPath}.partial-${process.pid}`;
      // A failed download (a full disk, a lost connection) leaves no partial file behind.
      const sha256 = await downloadTo(store, joinUri(root, entry.path), partial).catch((err: unknown) => {
        rmSync(partial, { force: true });
        throw err;
      });
      if (sha256 !== entry.sha256) {
        rmSync(partial, { force: true });
        throw ApplicationFailure.nonRetryable(
          `corrupt shard ${entry.path}: its sha256 is ${sha256} but the shard manifest lists ${entry.sha256} (re-run shardDataset into a new output)`,
          TrainingFailure.corruptShard,
        );
      }
      renameSync(partial, localPath);
    }
    staged.push({ entry, localPath });
    options.onFile?.();
  }
  return staged;
}

/** A base model stored as an s3:// directory, downloaded once per machine under `cacheRoot`. */
export async function stageBaseModel(store: ObjectStore, uri: string, cacheRoot: string, onFile?: OnFile): Promise<string> {
  const dir = await stageDirectory(store, uri, { cacheRoot, required: 'config.json', ...(onFile && { onFile }) });
  if (dir === undefined) {
    throw ApplicationFailure.nonRetryable(`base model not found: ${uri} holds no model directory (no config.json under it)`, TrainingFailure.baseModelNotFound);
  }
  return dir;
}

/** The run's checkpoint with the highest step that has a marker, or undefined when none has. */
export async function lastCheckpointMarker(store: ObjectStore, outputUri: string): Promise<{ name: string; marker: CheckpointMarker } | undefined> {
  const dir = joinUri(outputUri, CHECKPOINT_DIR);
  let last: { name: string; marker: CheckpointMarker } | undefined;
  for await (const info of store.list(joinUri(outputUri, CHECKPOINT_DIR, 'checkpoint-'))) {
    const file = relativeTo(dir, info.uri);
    if (file === undefined || !CHECKPOINT_MARKER_NAME.test(file)) continue;
    const marker = await getJson(store, info.uri, CheckpointMarker);
    if (!last || marker.step > last.marker.step) last = { name: file.slice(0, -'.json'.length), marker };
  }
  return last;
}

/** Downloads the last marked checkpoint into `localCheckpoints/<name>`, each file checked against its marker. */
export async function downloadLastCheckpoint(store: ObjectStore, outputUri: string, localCheckpoints: string): Promise<{ step: number; dir: string } | undefined> {
  const last = await lastCheckpointMarker(store, outputUri);
  if (!last) return undefined;
  const { name, marker } = last;
  const dir = join(localCheckpoints, name);
  for (const file of marker.files) {
    const target = join(dir, ...file.path.split('/'));
    mkdirSync(dirname(target), { recursive: true });
    const uri = joinUri(outputUri, CHECKPOINT_DIR, name, file.path);
    const sha256 = await downloadTo(store, uri, target);
    if (sha256 !== file.sha256) {
      // The same stored bytes fail the same way on every attempt.
      throw new InvalidObjectError(uri, `sha256 ${sha256} differs from its marker's ${file.sha256}; delete ${joinUri(outputUri, CHECKPOINT_DIR, `${name}.json`)} to resume from an earlier checkpoint`);
    }
  }
  return { step: marker.step, dir };
}

/** Uploads a checkpoint's files, then its marker: a checkpoint without its marker is never resumed from. */
export async function uploadCheckpoint(store: ObjectStore, checkpoint: { outputUri: string; localDir: string; step: number; attempt: number }, onFile?: OnFile): Promise<CheckpointMarker> {
  const name = checkpointName(checkpoint.step);
  const files = await uploadDirectory(store, checkpoint.localDir, joinUri(checkpoint.outputUri, CHECKPOINT_DIR, name), onFile);
  const marker: CheckpointMarker = { step: checkpoint.step, files, attempt: checkpoint.attempt, writtenAt: new Date().toISOString() };
  await putJson(store, joinUri(checkpoint.outputUri, CHECKPOINT_DIR, `${name}.json`), marker);
  return marker;
}

/** Uploads every file under `localDir` (in name order) and lists them with their sha256. */
export async function uploadDirectory(store: ObjectStore, localDir: string, targetUri: string, onFile?: OnFile): Promise<StoredRunFile[]> {
  const files: StoredRunFile[] = [];
  for (const abs of walkFiles(localDir)) {
    const path = relative(localDir, abs).split(sep).join('/');
    const { sha256 } = await sha256HexOfStream(createReadStream(abs));
    await store.putStream(joinUri(targetUri, path), createReadStream(abs));
    files.push({ path, sha256, bytes: statSync(abs).size });
    onFile?.();
  }
  return files;
}

function* walkFiles(dir: string): Generator<string> {
  for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    const abs = join(dir, entry.name);
    if (entry.isDirectory()) yield* walkFiles(abs);
    else if (entry.isFile()) yield abs;
  }
}
