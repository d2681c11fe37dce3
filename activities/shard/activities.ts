/**
 * shardDataset's activities: D_lan -> WebDataset tar shards in the object store.
 *
 * planShards writes `shards-plan.json` (which trajectory goes to which split and shard) once per
 * shard set; writeShard streams one shard's tar (deterministic bytes) into the store with
 * create-if-absent, then its `.tar.json` sidecar; verifyShards re-reads shards; finalizeShards
 * writes `shards.json` last. Payloads stay small: shards, frames and the plan live in the store.
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import { createHash, type Hash } from 'node:crypto';
import { Readable } from 'node:stream';
import * as tar from 'tar-stream';
import { DLanRecord, type Labeler } from '../../data-schemas/d-lan';
import { DatasetManifest, MANIFEST_FILE, type ManifestFile } from '../../data-schemas/manifest';
import { POLICY_PROMPT_VERSION } from '../../data-schemas/prompts';
import {
  SHARD_FORMAT,
  SHARD_FORMAT_VERSION,
  SHARD_MANIFEST_FILE,
  SHARD_PLAN_FILE,
  ShardEntry,
  ShardManifest,
  ShardSample,
  shardPath,
  shardSidecarPath,
  type ShardStage,
  type Split,
  ShardFailure,
} from '../../data-schemas/training';
import { joinUri } from '../../data-schemas/uri';
import { DatasetInvalidError, DatasetNotFoundError } from '../data/errors';
import { contentSha256Of, readManifest } from '../data/dataset-writer';
import { forEachConcurrent } from '../data/pool';
import { classified } from '../failures';
import { getJson, InvalidObjectError, ObjectNotFoundError, putJson, sha256Hex } from '../store';
import type { ObjectStore } from '../store/types';
import {
  ShardPlanFile,
  assignShards,
  buildSamples,
  estimateSampleBytes,
  plannedShards,
  samePlanKey,
  type BuiltSample,
  type PlannedTrajectory,
  type ShardPlanKey,
  type TrajectoryToPlace,
} from './plan';
import { describeZodIssues } from '../../data-schemas/issues';

/** Reads of records and frames in flight while planning. */
const PLAN_CONCURRENCY = 16;
/** Trajectories whose record and frames are fetched ahead of the tar writer. */
const PREFETCH_TRAJECTORIES = 32;
/**
 * Tar output is handed on in pieces of exactly this size (the last shorter): few, large chunks
 * through hash, stream and upload. Small against the upload's part size, since lib-storage copies
 * each chunk once into a part and copies again the piece that runs over a part boundary.
 */
const CHUNK_BYTES = 1024 * 1024;
/** tar-stream's own buffer: room for a trajectory's files, so adding them never waits on a drain. */
const PACK_BUFFER_BYTES = 4 * 1024 * 1024;
const HEARTBEAT_EVERY_MS = 1_000;
const EPOCH = new Date(0);

/** What an activity needs from Temporal; the bench runs the activity code without it. */
export interface ActivityHooks {
  heartbeat(details?: unknown): void;
  signal?: AbortSignal;
}

export interface ShardDeps {
  store: ObjectStore;
  /** @default the current activity's context (heartbeat, cancellation) */
  hooks?: () => ActivityHooks;
}

function contextHooks(): ActivityHooks {
  const ctx = Context.current();
  return { heartbeat: (d) => ctx.heartbeat(d), signal: ctx.cancellationSignal };
}

/** A small summary of one shard for workflow payloads (the full entry lives in the sidecar). */
export interface ShardRef {
  split: Split;
  index: number;
}

export interface PlanShardsInput {
  datasetUri: string;
  outputUri: string;
  seed: number;
  validationFraction: number;
  targetShardBytes: number;
  /** Add a `direction` sample per D_lan step (ShardDatasetInput.directionLabels). */
  directionLabels: boolean;
}

export interface PlanShardsResult {
  datasetName: string;
  datasetManifestSha256: string;
  shards: ShardRef[];
  trajectories: Record<Split, number>;
  /** shards.json is already there (and of this source): a finished shard set being re-run. */
  complete: boolean;
}

export interface WriteShardResult {
  path: string;
  /** False when the shard was already complete (or matched a fresh build): nothing uploaded. */
  written: boolean;
  /** Set when a shard already written had changed since (size or sha256 differ from its sidecar) and was rewritten. */
  replacedBecause?: string;
  bytes: number;
  samples: number;
}

/** Runs `fn` over `items` with at most `limit` in flight, yielding results in input order. */
async function* orderedMap<T, R>(items: Iterable<T>, limit: number, fn: (item: T) => Promise<R>): AsyncGenerator<R> {
  const queue: Promise<R>[] = [];
  for (const item of items) {
    const p = fn(item);
    // Rejections are seen when the promise is awaited in order; don't let one surface early.
    p.catch(() => undefined);
    queue.push(p);
    if (queue.length >= limit) yield await queue.shift()!;
  }
  while (queue.length > 0) yield await queue.shift()!;
}

const outputConflict = (message: string): ApplicationFailure => ApplicationFailure.nonRetryable(message, ShardFailure.OutputConflict);

export function createShardActivities({ store, hooks = contextHooks }: ShardDeps) {
  // ---------------------------------------------------------------------------------------------
  // Sources, cached per worker by ETag: a 100k-trajectory manifest is tens of MB.

  let dlanCache: { uri: string; etag: string; manifest: DatasetManifest; sha256: string } | undefined;
  /** The D_lan manifest and the sha256 of its bytes. */
  async function readDLanManifest(datasetUri: string): Promise<{ manifest: DatasetManifest; sha256: string }> {
    const uri = joinUri(datasetUri, MANIFEST_FILE);
    const head = await store.head(uri);
    if (!head) throw new DatasetNotFoundError(datasetUri);
    if (head.etag !== undefined && dlanCache?.uri === uri && dlanCache.etag === head.etag) return dlanCache;
    let bytes: Buffer;
    try {
      bytes = await store.get(uri);
    } catch (err) {
      if (err instanceof ObjectNotFoundError) throw new DatasetNotFoundError(datasetUri);
      throw err;
    }
    let raw: unknown;
    try {
      raw = JSON.parse(bytes.toString('utf8'));
    } catch (err) {
      throw new DatasetInvalidError(`${uri}: not valid JSON: ${(err as Error).message}`);
    }
    const parsed = DatasetManifest.safeParse(raw);
    if (!parsed.success) {
      throw new DatasetInvalidError(`${uri} is not a valid manifest: ${describeZodIssues(parsed.error)}`);
    }
    if (parsed.data.kind !== 'd_lan') {
      throw new DatasetInvalidError(`${datasetUri} is a ${parsed.data.kind} dataset; shardDataset takes a D_lan dataset (the output of relabelDataset)`);
    }
    const entry = { uri, etag: head.etag ?? '', manifest: parsed.data, sha256: sha256Hex(bytes) };
    if (head.etag !== undefined) dlanCache = entry;
    return entry;
  }

  type DrobSource = { files: Map<string, ManifestFile>; contentSha256: (trajectoryId: string) => Promise<string> };
  const drobCache = new Map<string, Promise<DrobSource>>();
  /** The files of a D_rob dataset (size and sha256), by path, and its trajectories' content hashes, from its manifest. */
  function drobFiles(rootUri: string): Promise<DrobSource> {
    let files = drobCache.get(rootUri);
    if (!files) {
      files = readManifest(store, rootUri).then((m) => ({ files: new Map(m.files.map((f) => [f.path, f])), contentSha256: contentSha256Of(store, rootUri, m) }));
      files.catch(() => drobCache.delete(rootUri));
      drobCache.set(rootUri, files);
    }
    return files;
  }

  /**
   * A D_lan record, checked against the sha256 its manifest (or the plan) gives. `validated`: these
   * exact bytes passed the schema when planning, so the sha256 check stands in for a second parse.
   */
  async function readRecord(datasetUri: string, path: string, sha256: string, validated = false): Promise<DLanRecord> {
    const uri = joinUri(datasetUri, path);
    const bytes = await store.get(uri);
    if (sha256Hex(bytes) !== sha256) {
      throw new DatasetInvalidError(`${uri} changed after its dataset's manifest was written (sha256 differs); re-run relabelDataset or restore the record`);
    }
    let raw: unknown;
    try {
      raw = JSON.parse(bytes.toString('utf8'));
    } catch (err) {
      throw new DatasetInvalidError(`${uri}: not valid JSON: ${(err as Error).message}`);
    }
    if (validated) return raw as DLanRecord;
    const parsed = DLanRecord.safeParse(raw);
    if (!parsed.success) {
      throw new DatasetInvalidError(`${uri} is not a valid D_lan record: ${describeZodIssues(parsed.error)}`);
    }
    return parsed.data;
  }

  function samplesOf(record: DLanRecord, recordUri: string, directionLabels: boolean, validate = true): BuiltSample[] {
    try {
      return buildSamples(record, { validate, directionLabels });
    } catch (err) {
      throw new DatasetInvalidError(`${recordUri}: ${(err as Error).message}`);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // The plan

  async function computePlan(input: PlanShardsInput, key: ShardPlanKey, manifest: DatasetManifest): Promise<ShardPlanFile> {
    const h = hooks();
    const shaOf = new Map(manifest.files.map((f) => [f.path, f.sha256]));
    const planned: TrajectoryToPlace[] = [];
    let labeler: Labeler | undefined;
    let done = 0;
    await forEachConcurrent(manifest.trajectories, PLAN_CONCURRENCY, async (t) => {
      const recordUri = joinUri(input.datasetUri, t.record);
      const sha = shaOf.get(t.record);
      if (sha === undefined) throw new DatasetInvalidError(`${joinUri(input.datasetUri, MANIFEST_FILE)}: record ${t.record} is not listed in files`);
      const record = await readRecord(input.datasetUri, t.record, sha);
      if (record.trajectoryId !== t.id) throw new DatasetInvalidError(`${recordUri}: trajectoryId ${record.trajectoryId} does not match the manifest's ${t.id}`);
      const samples = samplesOf(record, recordUri, key.directionLabels);
      const source = record.provenance.sourceDataset;
      const { files, contentSha256 } = await drobFiles(source);
      const estimatedBytes = estimateSampleBytes(samples, (path) => {
        const file = files.get(path);
        if (file === undefined) {
          throw new DatasetInvalidError(`${recordUri}: key frame ${joinUri(source, path)} is missing from its D_rob dataset (not in ${joinUri(source, MANIFEST_FILE)})`);
        }
        return file.bytes;
      });
      if (labeler === undefined) labeler = record.labeler;
      else if (labeler.name !== record.labeler.name || labeler.version !== record.labeler.version) {
        throw new DatasetInvalidError(`${recordUri}: labeler ${record.labeler.name}-${record.labeler.version} differs from the other records' ${labeler.name}-${labeler.version}`);
      }
      planned.push({ id: t.id, record: t.record, recordSha256: sha, contentSha256: await contentSha256(record.trajectoryId), samples: samples.length, estimatedBytes });
      if (++done % 100 === 0) h.heartbeat({ planned: done });
    });
    if (labeler === undefined) throw new DatasetInvalidError(`${input.datasetUri} holds no trajectories: nothing to shard`);
    const { trajectories, shardsPerSplit } = assignShards(planned, input);
    return {
      formatVersion: 1,
      key,
      datasetUri: input.datasetUri,
      datasetName: manifest.name,
      labeler,
      plannedAt: new Date().toISOString(),
      shardsPerSplit,
      trajectories,
    };
  }

  type LoadedPlan = { plan: ShardPlanFile; shards: ReturnType<typeof plannedShards> };
  let planCache: { uri: string; etag: string; loaded: Promise<LoadedPlan> } | undefined;
  /**
   * The plan a writeShard or verifyShards works from, cached per worker by ETag. The cache holds
   * the read in flight, so the shards a worker starts together read and parse the plan once.
   */
  async function loadPlan(outputUri: string): Promise<LoadedPlan> {
    const uri = joinUri(outputUri, SHARD_PLAN_FILE);
    const head = await store.head(uri);
    if (!head) throw ApplicationFailure.nonRetryable(`${uri} is missing: run planShards (the shardDataset workflow) first`, ShardFailure.PlanMissing);
    if (head.etag !== undefined && planCache?.uri === uri && planCache.etag === head.etag) return planCache.loaded;
    const loaded = getJson(store, uri, ShardPlanFile).then((plan) => ({ plan, shards: plannedShards(plan.trajectories) }));
    if (head.etag !== undefined) {
      const entry = { uri, etag: head.etag, loaded };
      planCache = entry;
      loaded.catch(() => {
        if (planCache === entry) planCache = undefined;
      });
    }
    return loaded;
  }

  function findShard(shards: ReturnType<typeof plannedShards>, ref: ShardRef, outputUri: string) {
    const shard = shards.find((s) => s.split === ref.split && s.index === ref.index);
    if (!shard) throw ApplicationFailure.nonRetryable(`${joinUri(outputUri, shardPath(ref.split, ref.index))} is not in the plan`, ShardFailure.NotPlanned);
    return shard;
  }

  // ---------------------------------------------------------------------------------------------
  // Tar bytes

  /** One trajectory's files in tar order: per sample `<key>.json` then the image. */
  interface LoadedTrajectory {
    samples: BuiltSample[];
    frames: Map<string, Buffer>;
  }

  /**
   * One key frame's bytes, checked against the sha256 its D_rob manifest lists: a frame corrupted
   * or replaced after import must not go into training silently.
   */
  async function readFrame(trajectoryId: string, source: string, path: string): Promise<Buffer> {
    const uri = joinUri(source, path);
    const listed = (await drobFiles(source)).files.get(path);
    if (listed === undefined) throw new DatasetInvalidError(`trajectory ${trajectoryId}: key frame ${uri} is missing from its D_rob dataset (not in ${joinUri(source, MANIFEST_FILE)})`);
    const bytes = await store.get(uri);
    const sha256 = sha256Hex(bytes);
    if (sha256 !== listed.sha256 || bytes.length !== listed.bytes) {
      throw new DatasetInvalidError(
        `trajectory ${trajectoryId}: key frame ${uri} fails its checksum (sha256 ${sha256}, ${bytes.length} bytes; ${joinUri(source, MANIFEST_FILE)} lists ${listed.sha256}, ${listed.bytes} bytes); restore the frame or re-import the D_rob dataset (vla data validate lists every bad file)`,
      );
    }
    return bytes;
  }

  /** The trajectories of one shard, records and verified frames read ahead of the tar writer, in plan order. */
  function loadTrajectories(plan: ShardPlanFile, trajectories: readonly PlannedTrajectory[]): AsyncGenerator<LoadedTrajectory> {
    const datasetUri = plan.datasetUri;
    return orderedMap(trajectories, PREFETCH_TRAJECTORIES, async (t) => {
      const record = await readRecord(datasetUri, t.record, t.recordSha256, true);
      const samples = samplesOf(record, joinUri(datasetUri, t.record), plan.key.directionLabels, false);
      const source = record.provenance.sourceDataset;
      const paths = [...new Set(samples.map((s) => s.framePath))];
      const frames = new Map(await Promise.all(paths.map(async (p) => [p, await readFrame(record.trajectoryId, source, p)] as const)));
      return { samples, frames };
    });
  }

  interface TarBuild {
    /** The tar's bytes in chunks of CHUNK_BYTES (the last shorter); fails with the producer's own error (a missing frame, a bad record). */
    body: Readable;
    /** Valid once `body` has ended. */
    digest(): { sha256: string; bytes: number };
  }

  /**
   * A shard's tar as a byte stream, deterministic byte for byte: fixed mtime (epoch), uid/gid 0,
   * mode 0644, no user names, files in plan order. tar-stream's output (a header, the data, the
   * padding: three small pieces per file) is copied into CHUNK_BYTES buffers as it is pushed, each
   * buffer hashed once and handed on whole; a trajectory's files go into the pack at once, and the
   * pack's buffer holds a trajectory or so, so no file waits on the one before it.
   */
  function buildTar(plan: ShardPlanFile, trajectories: readonly PlannedTrajectory[], onBytes: (bytes: number) => void): TarBuild {
    const pack = tar.pack({ highWaterMark: PACK_BUFFER_BYTES });
    const hash: Hash = createHash('sha256');
    let bytes = 0;
    let chunk = Buffer.allocUnsafe(CHUNK_BYTES);
    let used = 0;
    let failure: { err: unknown } | undefined;

    const body = new Readable({
      highWaterMark: CHUNK_BYTES,
      read() {
        pack.resume();
      },
      destroy(err, cb) {
        if (!pack.destroyed) pack.destroy();
        cb(err);
      },
    });
    const fail = (err: unknown): void => {
      failure ??= { err };
      if (!pack.destroyed) pack.destroy(err instanceof Error ? err : new Error(String(err)));
      body.destroy(failure.err instanceof Error ? failure.err : new Error(String(failure.err)));
    };
    const emit = (out: Buffer): void => {
      hash.update(out);
      bytes += out.length;
      onBytes(bytes);
      if (!body.push(out)) pack.pause();
    };
    pack.on('data', (piece: unknown) => {
      const data = piece as Buffer;
      let offset = 0;
      while (offset < data.length) {
        const n = Math.min(data.length - offset, CHUNK_BYTES - used);
        data.copy(chunk, used, offset, offset + n);
        used += n;
        offset += n;
        if (used === CHUNK_BYTES) {
          const full = chunk;
          chunk = Buffer.allocUnsafe(CHUNK_BYTES);
          used = 0;
          emit(full);
        }
      }
    });
    pack.on('end', () => {
      if (used > 0) emit(chunk.subarray(0, used));
      body.push(null);
    });
    pack.on('error', (err: Error) => fail(err));

    const produce = async (): Promise<void> => {
      try {
        for await (const { samples, frames } of loadTrajectories(plan, trajectories)) {
          if (body.destroyed) return;
          // All of a trajectory's files at once: tar-stream writes entries in the order they were
          // added, so the last one written means all are (a failure fails every later entry).
          let last: Promise<void> = Promise.resolve();
          const add = (name: string, data: Buffer): void => {
            last = new Promise<void>((resolve, reject) => {
              pack.entry({ name, size: data.length, mode: 0o644, uid: 0, gid: 0, mtime: EPOCH, type: 'file' }, data, (err) => (err ? reject(err) : resolve()));
            });
            last.catch(() => undefined);
          };
          for (const s of samples) {
            add(`${s.sample.key}.json`, s.json);
            add(`${s.sample.key}.${s.sample.image}`, frames.get(s.framePath)!);
          }
          await last;
        }
        pack.finalize();
      } catch (err) {
        fail(err);
      }
    };
    void produce();
    return { body, digest: () => ({ sha256: hash.digest('hex'), bytes }) };
  }

  function throttledHeartbeat(h: ActivityHooks, details: (bytes: number) => unknown): (bytes: number) => void {
    let last = 0;
    return (bytes) => {
      const now = Date.now();
      if (now - last < HEARTBEAT_EVERY_MS) return;
      last = now;
      h.heartbeat(details(bytes));
    };
  }

  /** Builds a shard's tar into a hasher only, uploading nothing. */
  async function hashShard(plan: ShardPlanFile, trajectories: readonly PlannedTrajectory[], h: ActivityHooks): Promise<{ sha256: string; bytes: number }> {
    const build = buildTar(plan, trajectories, throttledHeartbeat(h, (bytes) => ({ phase: 'hashing', bytes })));
    for await (const _ of build.body) {
      if (h.signal?.aborted) throw new Error('cancelled');
    }
    return build.digest();
  }

  async function storeSha256(uri: string): Promise<{ sha256: string; bytes: number }> {
    const hash = createHash('sha256');
    let bytes = 0;
    for await (const chunk of await store.getStream(uri)) {
      hash.update(chunk as Buffer);
      bytes += (chunk as Buffer).length;
    }
    return { sha256: hash.digest('hex'), bytes };
  }

  /**
   * Why a written shard no longer matches its sidecar (size, then sha256 of the stored bytes), or
   * undefined when it does. A sidecar that does not parse or names other trajectories counts as a change.
   */
  async function changedSince(sidecarUri: string, storedBytes: number, uri: string, plannedIds: readonly string[]): Promise<string | undefined> {
    let entry: ShardEntry;
    try {
      entry = await getJson(store, sidecarUri, ShardEntry);
    } catch (err) {
      if (err instanceof InvalidObjectError || err instanceof ObjectNotFoundError) return `its sidecar ${sidecarUri} is unreadable: ${err.message}`;
      throw err;
    }
    if (entry.trajectories.join('\n') !== plannedIds.join('\n')) return `its sidecar ${sidecarUri} lists other trajectories than the plan`;
    if (storedBytes !== entry.bytes) return `${uri} is ${storedBytes} bytes but its sidecar records ${entry.bytes}`;
    const stored = await storeSha256(uri);
    if (stored.sha256 !== entry.sha256 || stored.bytes !== entry.bytes) return `${uri} has sha256 ${stored.sha256} but its sidecar records ${entry.sha256}`;
    return undefined;
  }

  function entryFor(ref: ShardRef, trajectories: readonly PlannedTrajectory[], digest: { sha256: string; bytes: number }): ShardEntry {
    return ShardEntry.parse({
      path: shardPath(ref.split, ref.index),
      split: ref.split,
      index: ref.index,
      sha256: digest.sha256,
      bytes: digest.bytes,
      samples: trajectories.reduce((n, t) => n + t.samples, 0),
      trajectories: trajectories.map((t) => t.id),
    });
  }

  // ---------------------------------------------------------------------------------------------
  // Verification

  const corrupt = (uri: string, problem: string): ApplicationFailure =>
    ApplicationFailure.nonRetryable(`${uri}: ${problem}; delete the shard and its .json sidecar, remove ${SHARD_MANIFEST_FILE} if present, and re-run`, ShardFailure.Corrupt);

  const JPEG = Buffer.from([0xff, 0xd8]);
  const PNG = Buffer.from([0x89, 0x50, 0x4e, 0x47]);

  /** Re-reads one shard: sha256 and size against its sidecar, every sample a valid json + image pair. */
  async function verifyOne(outputUri: string, ref: ShardRef, h: ActivityHooks): Promise<ShardEntry> {
    const uri = joinUri(outputUri, shardPath(ref.split, ref.index));
    const sidecarUri = joinUri(outputUri, shardSidecarPath(ref.split, ref.index));
    let entry: ShardEntry;
    try {
      entry = await getJson(store, sidecarUri, ShardEntry);
    } catch (err) {
      if (err instanceof ObjectNotFoundError) throw corrupt(uri, `its sidecar ${sidecarUri} is missing`);
      if (err instanceof InvalidObjectError) throw corrupt(uri, `its sidecar is invalid: ${err.message}`);
      throw err;
    }
    let body: Readable;
    try {
      body = await store.getStream(uri);
    } catch (err) {
      if (err instanceof ObjectNotFoundError) throw corrupt(uri, 'the shard is missing');
      throw err;
    }

    const hash = createHash('sha256');
    let bytes = 0;
    let readError: { err: unknown } | undefined;
    let parseDone = false;
    const extract = tar.extract();
    const beat = throttledHeartbeat(h, (b) => ({ phase: 'verifying', path: entry.path, bytes: b }));
    const feed = (async () => {
      try {
        for await (const chunk of body as AsyncIterable<Buffer>) {
          hash.update(chunk);
          bytes += chunk.length;
          beat(bytes);
          if (!extract.write(chunk)) {
            await new Promise<void>((resolve) => {
              const done = (): void => {
                extract.off('drain', done);
                extract.off('close', done);
                resolve();
              };
              extract.on('drain', done);
              extract.on('close', done);
            });
          }
          if (parseDone) break;
        }
        extract.end(() => undefined);
      } catch (err) {
        if (!parseDone) {
          readError = { err };
          extract.destroy(err instanceof Error ? err : new Error(String(err)));
        }
      }
    })();

    const problems: string[] = [];
    const samples = new Map<string, { json?: ShardSample; image?: string }>();
    const trajectories = new Set<string>();
    try {
      for await (const file of extract) {
        const chunks: Buffer[] = [];
        for await (const c of file as AsyncIterable<Buffer>) chunks.push(c);
        const data = Buffer.concat(chunks);
        const name = file.header.name;
        const dot = name.indexOf('.');
        const key = dot === -1 ? name : name.slice(0, dot);
        const ext = dot === -1 ? '' : name.slice(dot + 1);
        if (file.header.type !== 'file' || dot === -1) {
          problems.push(`unexpected entry "${name}"`);
          continue;
        }
        const slot = samples.get(key) ?? {};
        samples.set(key, slot);
        if (ext === 'json') {
          let raw: unknown;
          try {
            raw = JSON.parse(data.toString('utf8'));
          } catch {
            problems.push(`${name} is not JSON`);
            continue;
          }
          const parsed = ShardSample.safeParse(raw);
          if (!parsed.success) problems.push(`${name} is not a ShardSample: ${describeZodIssues(parsed.error)}`);
          else if (parsed.data.key !== key) problems.push(`${name} has key ${parsed.data.key}`);
          else {
            slot.json = parsed.data;
            trajectories.add(parsed.data.trajectoryId);
          }
        } else if (ext === 'jpg' || ext === 'png') {
          const magic = ext === 'jpg' ? JPEG : PNG;
          if (data.length === 0 || !data.subarray(0, magic.length).equals(magic)) problems.push(`${name} is not a ${ext} image`);
          else slot.image = ext;
        } else problems.push(`unexpected entry "${name}"`);
        if (problems.length > 0) break;
      }
    } catch (err) {
      if (readError) throw readError.err;
      problems.push(`not a valid tar (${(err as Error).message})`);
    } finally {
      parseDone = true;
      if (problems.length > 0) body.destroy();
      await feed;
    }
    if (readError) throw readError.err;
    if (problems.length === 0) {
      const got = hash.digest('hex');
      if (got !== entry.sha256 || bytes !== entry.bytes) problems.push(`sha256 ${got} (${bytes} bytes) but ${entry.path}.json records ${entry.sha256} (${entry.bytes} bytes)`);
    }
    if (problems.length === 0) {
      for (const [key, s] of samples) {
        if (!s.json) problems.push(`sample ${key} has no .json`);
        else if (s.image !== s.json.image) problems.push(`sample ${key} has no .${s.json.image} image`);
        if (problems.length > 0) break;
      }
    }
    if (problems.length === 0 && samples.size !== entry.samples) problems.push(`${samples.size} samples but the sidecar records ${entry.samples}`);
    if (problems.length === 0 && [...trajectories].sort().join('\n') !== [...entry.trajectories].sort().join('\n')) problems.push('its trajectories differ from the sidecar\'s');
    if (problems.length > 0) throw corrupt(uri, problems[0]!);
    return entry;
  }

  // ---------------------------------------------------------------------------------------------

  return {
    /**
     * Reads the D_lan manifest and, the first time, every record, and writes the plan
     * (create-if-absent). Returns only the list of non-empty shards and counts.
     */
    planShards: classified(async (input: PlanShardsInput): Promise<PlanShardsResult> => {
      const { manifest, sha256 } = await readDLanManifest(input.datasetUri);
      const key: ShardPlanKey = {
        datasetManifestSha256: sha256,
        promptVersion: POLICY_PROMPT_VERSION,
        seed: input.seed,
        validationFraction: input.validationFraction,
        targetShardBytes: input.targetShardBytes,
        directionLabels: input.directionLabels,
      };
      const manifestUri = joinUri(input.outputUri, SHARD_MANIFEST_FILE);
      let complete = false;
      if (await store.head(manifestUri)) {
        const existing = await getJson(store, manifestUri, ShardManifest);
        if (existing.source.datasetManifestSha256 !== sha256) {
          throw outputConflict(
            `${manifestUri} was written from another version of ${input.datasetUri} (its manifest's sha256 was ${existing.source.datasetManifestSha256}, now ${sha256}); choose a new outputUri for the new shard set`,
          );
        }
        complete = true;
      }
      const planUri = joinUri(input.outputUri, SHARD_PLAN_FILE);
      let plan: ShardPlanFile;
      if (await store.head(planUri)) {
        plan = (await loadPlan(input.outputUri)).plan;
      } else {
        const fresh = await computePlan(input, key, manifest);
        const put = await putJson(store, planUri, fresh, { ifAbsent: true });
        plan = put.created ? fresh : (await loadPlan(input.outputUri)).plan;
      }
      if (!samePlanKey(plan.key, key)) {
        const was = plan.key;
        throw outputConflict(
          `${planUri} belongs to another shard set (source manifest sha256 ${was.datasetManifestSha256}, seed ${was.seed}, validationFraction ${was.validationFraction}, targetShardBytes ${was.targetShardBytes}, prompts ${was.promptVersion}, directionLabels ${was.directionLabels}); this run has sha256 ${sha256}, seed ${key.seed}, validationFraction ${key.validationFraction}, targetShardBytes ${key.targetShardBytes}, prompts ${key.promptVersion}, directionLabels ${key.directionLabels}: choose a new outputUri`,
        );
      }
      const trajectories = { train: 0, validation: 0 };
      for (const t of plan.trajectories) trajectories[t.split]++;
      return {
        datasetName: plan.datasetName,
        datasetManifestSha256: sha256,
        shards: plannedShards(plan.trajectories).map((s) => ({ split: s.split, index: s.index })),
        trajectories,
        complete,
      };
    }),

    /**
     * Writes one shard unless it is complete (object and sidecar both there, the object's size and
     * sha256 as the sidecar records; a changed one is rewritten). A shard object
     * without its sidecar is compared with a fresh build (hashed, not uploaded): kept if equal,
     * rewritten if not. The upload is create-if-absent multipart, so no partial object is ever
     * visible; a retry starts the shard over (shards are bounded by targetShardBytes).
     */
    writeShard: classified(async (input: { outputUri: string } & ShardRef): Promise<WriteShardResult> => {
      const h = hooks();
      const { plan, shards } = await loadPlan(input.outputUri);
      const shard = findShard(shards, input, input.outputUri);
      const path = shardPath(input.split, input.index);
      const uri = joinUri(input.outputUri, path);
      const sidecarUri = joinUri(input.outputUri, shardSidecarPath(input.split, input.index));
      const samples = shard.trajectories.reduce((n, t) => n + t.samples, 0);

      const [object, sidecar] = await Promise.all([store.head(uri), store.head(sidecarUri)]);
      let replacedBecause: string | undefined;
      if (object && sidecar) {
        // A shard changed after it was written (edited, truncated, replaced) must not be trusted:
        // its size and sha256 are checked against the sidecar, which also holds the planned trajectories.
        const changed = await changedSince(sidecarUri, object.bytes, uri, shard.trajectories.map((t) => t.id));
        if (changed === undefined) return { path, written: false, bytes: object.bytes, samples };
        // Shard bytes are a function of the plan and the checksummed sources: rewriting restores
        // exactly what the sidecar and shards.json record, where failing would only ask a person to delete it.
        replacedBecause = changed;
        await store.delete(uri);
      } else if (object) {
        // A crash between the shard and its sidecar (or a concurrent writer): same bytes, keep it.
        const [fresh, stored] = await Promise.all([hashShard(plan, shard.trajectories, h), storeSha256(uri)]);
        if (fresh.sha256 === stored.sha256) {
          await putJson(store, sidecarUri, entryFor(input, shard.trajectories, fresh));
          return { path, written: false, bytes: fresh.bytes, samples };
        }
        await store.delete(uri);
      }

      let uploaded = 0;
      const beat = throttledHeartbeat(h, (generated) => ({ phase: 'uploading', path, generated, uploaded }));
      const build = buildTar(plan, shard.trajectories, beat);
      const body = build.body;
      const abort = (): void => void body.destroy(new Error('cancelled'));
      h.signal?.addEventListener('abort', abort);
      try {
        // A failing producer (a corrupt frame, a bad record) fails the put with its own error.
        const put = await store.putStream(uri, body, {
          ifAbsent: true,
          contentType: 'application/x-tar',
          onProgress: (p) => {
            uploaded = p.loadedBytes;
          },
        });
        // Another writer created it between our HEAD and our upload: the retry checks its bytes.
        if (!put.created) throw ApplicationFailure.retryable(`${uri} appeared while this attempt was writing it; retrying to check its bytes`, ShardFailure.Race);
      } finally {
        h.signal?.removeEventListener('abort', abort);
      }
      const digest = build.digest();
      await putJson(store, sidecarUri, entryFor(input, shard.trajectories, digest));
      return { path, written: true, bytes: digest.bytes, samples, ...(replacedBecause !== undefined && { replacedBecause }) };
    }),

    /** Re-reads shards; any mismatch fails non-retryable, naming the shard. */
    verifyShards: classified(async (input: { outputUri: string; shards: ShardRef[] }): Promise<{ verified: number; bytes: number }> => {
      const h = hooks();
      let bytes = 0;
      for (const ref of input.shards) bytes += (await verifyOne(input.outputUri, ref, h)).bytes;
      return { verified: input.shards.length, bytes };
    }),

    /**
     * Writes `shards.json` from the plan and the sidecars, create-if-absent. A re-run that finds
     * the same manifest (apart from createdAt) returns it; a different one is an output conflict.
     */
    finalizeShards: classified(async (input: { outputUri: string; datasetUri: string }): Promise<{ manifestUri: string; shards: number; samples: number; bytes: number }> => {
      const h = hooks();
      const { plan, shards } = await loadPlan(input.outputUri);
      const entries = new Map<string, ShardEntry>();
      let read = 0;
      await forEachConcurrent(shards, 16, async (s) => {
        const sidecarUri = joinUri(input.outputUri, shardSidecarPath(s.split, s.index));
        let entry: ShardEntry;
        try {
          entry = await getJson(store, sidecarUri, ShardEntry);
        } catch (err) {
          if (err instanceof ObjectNotFoundError) throw ApplicationFailure.nonRetryable(`${sidecarUri} is missing: shard ${shardPath(s.split, s.index)} was not written`, ShardFailure.Corrupt);
          throw err;
        }
        const ids = s.trajectories.map((t) => t.id);
        if (entry.path !== shardPath(s.split, s.index) || entry.trajectories.join('\n') !== ids.join('\n')) {
          throw ApplicationFailure.nonRetryable(`${sidecarUri} does not describe the planned shard (path or trajectories differ)`, ShardFailure.Corrupt);
        }
        entries.set(entry.path, entry);
        if (++read % 200 === 0) h.heartbeat({ read });
      });
      const list = shards.map((s) => entries.get(shardPath(s.split, s.index))!);
      const bySplit = {
        train: { trajectories: 0, samples: 0, shards: 0 },
        validation: { trajectories: 0, samples: 0, shards: 0 },
      };
      const byStage: Partial<Record<ShardStage, number>> = { subtasks: 0, motion_plan: 0, action: 0, ...(plan.key.directionLabels && { direction: 0 }) };
      // A trajectory of N steps has 1 + 2N samples, or 1 + 3N with direction labels (buildSamples).
      const perStep = plan.key.directionLabels ? 3 : 2;
      for (const t of plan.trajectories) {
        bySplit[t.split].trajectories++;
        bySplit[t.split].samples += t.samples;
        const steps = (t.samples - 1) / perStep;
        for (const stage of Object.keys(byStage) as ShardStage[]) byStage[stage] = (byStage[stage] ?? 0) + (stage === 'subtasks' ? 1 : steps);
      }
      for (const e of list) bySplit[e.split].shards++;
      const manifest: ShardManifest = ShardManifest.parse({
        format: SHARD_FORMAT,
        formatVersion: SHARD_FORMAT_VERSION,
        createdAt: new Date().toISOString(),
        source: { dataset: plan.datasetUri, datasetManifestSha256: plan.key.datasetManifestSha256, labeler: plan.labeler, promptVersion: plan.key.promptVersion },
        split: { validationFraction: plan.key.validationFraction, seed: plan.key.seed },
        targetShardBytes: plan.key.targetShardBytes,
        counts: {
          shards: list.length,
          samples: list.reduce((n, e) => n + e.samples, 0),
          bytes: list.reduce((n, e) => n + e.bytes, 0),
          bySplit,
          byStage,
        },
        shards: list,
      });
      const manifestUri = joinUri(input.outputUri, SHARD_MANIFEST_FILE);
      const put = await putJson(store, manifestUri, manifest, { ifAbsent: true });
      let final = manifest;
      if (!put.created) {
        const existing = await getJson(store, manifestUri, ShardManifest);
        const strip = (m: ShardManifest): string => JSON.stringify({ ...m, createdAt: '' });
        if (strip(existing) !== strip(manifest)) {
          throw outputConflict(`${manifestUri} already exists and describes a different shard set; choose a new outputUri (or delete that shard set)`);
        }
        final = existing;
      }
      return { manifestUri, shards: final.counts.shards, samples: final.counts.samples, bytes: final.counts.bytes };
    }),
  };
}

export type ShardActivities = ReturnType<typeof createShardActivities>;
