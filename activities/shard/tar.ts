/**
 * A shard's tar bytes: deterministic byte for byte (fixed mtime, owner and mode, files in plan
 * order), streamed in fixed-size chunks and hashed on the way, so the upload, a re-check of a
 * shard found without its sidecar and the bench share one writer.
 */
import { createHash, type Hash } from 'node:crypto';
import { Readable } from 'node:stream';
import * as tar from 'tar-stream';
import type { PlannedTrajectory, ShardPlanFile } from '../../data-schemas/shard';
import { joinUri } from '../../data-schemas/uri';
import type { ObjectStore } from '../store/types';
import { throttledHeartbeat, type ActivityHooks } from './hooks';
import type { BuiltSample } from './plan';
import { samplesOf, type ShardSources } from './sources';

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
const EPOCH = new Date(0);

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

/** One trajectory's files in tar order: per sample `<key>.json` then the image. */
interface LoadedTrajectory {
  samples: BuiltSample[];
  frames: Map<string, Buffer>;
}

/** The trajectories of one shard, records and verified frames read ahead of the tar writer, in plan order. */
function loadTrajectories(sources: ShardSources, plan: ShardPlanFile, trajectories: readonly PlannedTrajectory[]): AsyncGenerator<LoadedTrajectory> {
  const datasetUri = plan.datasetUri;
  return orderedMap(trajectories, PREFETCH_TRAJECTORIES, async (t) => {
    const record = await sources.record(datasetUri, t.record, t.recordSha256, true);
    const samples = samplesOf(record, joinUri(datasetUri, t.record), plan.key.directionLabels, false);
    const source = record.provenance.sourceDataset;
    const paths = [...new Set(samples.map((s) => s.framePath))];
    const frames = new Map(await Promise.all(paths.map(async (p) => [p, await sources.frame(record.trajectoryId, source, p)] as const)));
    return { samples, frames };
  });
}

export interface TarBuild {
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
export function buildTar(sources: ShardSources, plan: ShardPlanFile, trajectories: readonly PlannedTrajectory[], onBytes: (bytes: number) => void): TarBuild {
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
      for await (const { samples, frames } of loadTrajectories(sources, plan, trajectories)) {
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

/** Builds a shard's tar into a hasher only, uploading nothing. */
export async function hashShard(sources: ShardSources, plan: ShardPlanFile, trajectories: readonly PlannedTrajectory[], h: ActivityHooks): Promise<{ sha256: string; bytes: number }> {
  const build = buildTar(sources, plan, trajectories, throttledHeartbeat(h, (bytes) => ({ phase: 'hashing', bytes })));
  for await (const _ of build.body) {
    if (h.signal?.aborted) throw new Error('cancelled');
  }
  return build.digest();
}

export async function storeSha256(store: ObjectStore, uri: string): Promise<{ sha256: string; bytes: number }> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of await store.getStream(uri)) {
    hash.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  return { sha256: hash.digest('hex'), bytes };
}

