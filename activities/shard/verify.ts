/**
 * Verifying a written shard: its sha256 and size against its sidecar, and every sample a valid
 * `<key>.json` (a ShardSample, data-schemas/shard.ts) with the image it names. The checks on the
 * tar's members are pure (`ShardContentCheck`); `verifyShard` streams the shard through them.
 */
import { ApplicationFailure } from '@temporalio/activity';
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import * as tar from 'tar-stream';
import { SHARD_MANIFEST_FILE, ShardEntry, ShardFailure, ShardSample, shardPath, shardSidecarPath, type Split } from '../../data-schemas/shard';
import { joinUri } from '../../data-schemas/uri';
import { getJson, InvalidObjectError, ObjectNotFoundError, parseStoredJson } from '../store';
import type { ObjectStore } from '../store/types';
import { throttledHeartbeat, type ActivityHooks } from './hooks';

const JPEG = Buffer.from([0xff, 0xd8]);
const PNG = Buffer.from([0x89, 0x50, 0x4e, 0x47]);

/** One member of a shard's tar as read back. */
export interface TarMember {
  name: string;
  /** tar-stream's header type: `file` for regular files. */
  type: string | undefined;
  data: Buffer;
}

/**
 * The checks on a shard's members, fed one member at a time in tar order; each call answers the
 * first problem (the caller stops there), `finish` the problems only the whole shard shows.
 */
export class ShardContentCheck {
  private readonly samples = new Map<string, { json?: ShardSample; image?: string }>();
  private readonly trajectories = new Set<string>();

  /** The problem with this member, or undefined. */
  add(member: TarMember): string | undefined {
    const { name, data } = member;
    const dot = name.indexOf('.');
    if (member.type !== 'file' || dot === -1) return `unexpected entry "${name}"`;
    const key = name.slice(0, dot);
    const ext = name.slice(dot + 1);
    const slot = this.samples.get(key) ?? {};
    this.samples.set(key, slot);
    if (ext === 'json') {
      let sample: ShardSample;
      try {
        sample = parseStoredJson(name, data, ShardSample, 'a shard sample');
      } catch (err) {
        if (err instanceof InvalidObjectError) return err.message;
        throw err;
      }
      if (sample.key !== key) return `${name} has key ${sample.key}`;
      slot.json = sample;
      this.trajectories.add(sample.trajectoryId);
      return undefined;
    }
    if (ext === 'jpg' || ext === 'png') {
      const magic = ext === 'jpg' ? JPEG : PNG;
      if (data.length === 0 || !data.subarray(0, magic.length).equals(magic)) return `${name} is not a ${ext} image`;
      slot.image = ext;
      return undefined;
    }
    return `unexpected entry "${name}"`;
  }

  /** The first problem of the whole shard against its sidecar `entry`, given the sha256 and size of the bytes read. */
  finish(entry: ShardEntry, read: { sha256: string; bytes: number }): string | undefined {
    if (read.sha256 !== entry.sha256 || read.bytes !== entry.bytes) return `sha256 ${read.sha256} (${read.bytes} bytes) but ${entry.path}.json records ${entry.sha256} (${entry.bytes} bytes)`;
    for (const [key, s] of this.samples) {
      if (!s.json) return `sample ${key} has no .json`;
      if (s.image !== s.json.image) return `sample ${key} has no .${s.json.image} image`;
    }
    if (this.samples.size !== entry.samples) return `${this.samples.size} samples but the sidecar records ${entry.samples}`;
    if ([...this.trajectories].sort().join('\n') !== [...entry.trajectories].sort().join('\n')) return 'its trajectories differ from the sidecar\'s';
    return undefined;
  }
}

/** A shard that fails verification: never retried, the message says how to recover. */
export const corruptShard = (uri: string, problem: string): ApplicationFailure =>
  ApplicationFailure.nonRetryable(`${uri}: ${problem}; delete the shard and its .json sidecar, remove ${SHARD_MANIFEST_FILE} if present, and re-run`, ShardFailure.Corrupt);

/**
 * Re-reads one shard: sha256 and size against its sidecar, every sample a valid json + image pair.
 * Stops reading at the first problem.
 * @throws ApplicationFailure Corrupt naming the shard and the problem
 */
export async function verifyShard(store: ObjectStore, outputUri: string, ref: { split: Split; index: number }, h: ActivityHooks): Promise<ShardEntry> {
  const uri = joinUri(outputUri, shardPath(ref.split, ref.index));
  const sidecarUri = joinUri(outputUri, shardSidecarPath(ref.split, ref.index));
  let entry: ShardEntry;
  try {
    entry = await getJson(store, sidecarUri, ShardEntry, 'a shard sidecar');
  } catch (err) {
    if (err instanceof ObjectNotFoundError) throw corruptShard(uri, `its sidecar ${sidecarUri} is missing`);
    if (err instanceof InvalidObjectError) throw corruptShard(uri, `its sidecar is invalid: ${err.message}`);
    throw err;
  }
  let body: Readable;
  try {
    body = await store.getStream(uri);
  } catch (err) {
    if (err instanceof ObjectNotFoundError) throw corruptShard(uri, 'the shard is missing');
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

  const check = new ShardContentCheck();
  let problem: string | undefined;
  try {
    for await (const file of extract) {
      const chunks: Buffer[] = [];
      for await (const c of file as AsyncIterable<Buffer>) chunks.push(c);
      problem = check.add({ name: file.header.name, type: file.header.type, data: Buffer.concat(chunks) });
      if (problem !== undefined) break;
    }
  } catch (err) {
    if (readError) throw readError.err;
    problem = `not a valid tar (${(err as Error).message})`;
  } finally {
    parseDone = true;
    if (problem !== undefined) body.destroy();
    await feed;
  }
  if (readError) throw readError.err;
  problem ??= check.finish(entry, { sha256: hash.digest('hex'), bytes });
  if (problem !== undefined) throw corruptShard(uri, problem);
  return entry;
}
