/**
 * The shard pipeline's sources: the D_lan dataset (manifest and records) and the D_rob datasets
 * its records point at (manifests and key frames), each checked against the sha256 its manifest
 * lists. Manifests are cached per worker: a 100k-trajectory manifest is tens of MB.
 */
import { z } from 'zod';
import { DLanRecord } from '../../data-schemas/d-lan';
import { DatasetManifest, MANIFEST_FILE, type ManifestFile } from '../../data-schemas/manifest';
import { joinUri } from '../../data-schemas/uri';
import { DatasetInvalidError, DatasetNotFoundError } from '../data/errors';
import { contentSha256Of, DLAN_RECORD_EXPECTED, MANIFEST_EXPECTED, readManifest } from '../data/dataset-writer';
import { InvalidObjectError, ObjectNotFoundError, parseStoredJson, sha256Hex } from '../store';
import type { ObjectStore } from '../store/types';
import { buildSamples, type BuiltSample } from './plan';

/** A D_rob dataset as the shard writer needs it: its files (size and sha256) by path, and its trajectories' content hashes. */
export interface DrobSource {
  files: Map<string, ManifestFile>;
  contentSha256: (trajectoryId: string) => Promise<string>;
}

export interface ShardSources {
  /** The D_lan manifest and the sha256 of its bytes. @throws DatasetNotFoundError, DatasetInvalidError (also for a D_rob dataset) */
  dlanManifest(datasetUri: string): Promise<{ manifest: DatasetManifest; sha256: string }>;
  drob(rootUri: string): Promise<DrobSource>;
  /**
   * A D_lan record, checked against the sha256 its manifest (or the plan) gives. `validated`: these
   * exact bytes passed the schema when planning, so the sha256 check stands in for a second parse.
   */
  record(datasetUri: string, path: string, sha256: string, validated?: boolean): Promise<DLanRecord>;
  /**
   * One key frame's bytes, checked against the sha256 its D_rob manifest lists: a frame corrupted
   * or replaced after import must not go into training silently.
   */
  frame(trajectoryId: string, source: string, path: string): Promise<Buffer>;
}

/** A record whose bytes passed DLanRecord when planning (and still have that sha256): not parsed twice. */
const PlannedRecord = z.custom<DLanRecord>();

/** The store's JSON reader, its errors as dataset errors (bad input: never retried). */
function parseDatasetJson<S extends z.ZodType>(uri: string, bytes: Buffer, schema: S, expected: string): z.output<S> {
  try {
    return parseStoredJson(uri, bytes, schema, expected);
  } catch (err) {
    if (err instanceof InvalidObjectError) throw new DatasetInvalidError(err.message, { cause: err });
    throw err;
  }
}

/** The samples of a record, an error naming the record when one cannot be built. */
export function samplesOf(record: DLanRecord, recordUri: string, directionLabels: boolean, validate = true): BuiltSample[] {
  try {
    return buildSamples(record, { validate, directionLabels });
  } catch (err) {
    throw new DatasetInvalidError(`${recordUri}: ${(err as Error).message}`);
  }
}

export function createShardSources(store: ObjectStore): ShardSources {
  let dlanCache: { uri: string; etag: string; manifest: DatasetManifest; sha256: string } | undefined;
  const drobCache = new Map<string, Promise<DrobSource>>();

  async function dlanManifest(datasetUri: string): Promise<{ manifest: DatasetManifest; sha256: string }> {
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
    const manifest = parseDatasetJson(uri, bytes, DatasetManifest, MANIFEST_EXPECTED);
    if (manifest.kind !== 'd_lan') {
      throw new DatasetInvalidError(`${datasetUri} is a ${manifest.kind} dataset; shardDataset takes a D_lan dataset (the output of relabelDataset)`);
    }
    const entry = { uri, etag: head.etag ?? '', manifest, sha256: sha256Hex(bytes) };
    if (head.etag !== undefined) dlanCache = entry;
    return entry;
  }

  function drob(rootUri: string): Promise<DrobSource> {
    let source = drobCache.get(rootUri);
    if (!source) {
      source = readManifest(store, rootUri).then((m) => ({ files: new Map(m.files.map((f) => [f.path, f])), contentSha256: contentSha256Of(store, rootUri, m) }));
      source.catch(() => drobCache.delete(rootUri));
      drobCache.set(rootUri, source);
    }
    return source;
  }

  async function record(datasetUri: string, path: string, sha256: string, validated = false): Promise<DLanRecord> {
    const uri = joinUri(datasetUri, path);
    const bytes = await store.get(uri);
    if (sha256Hex(bytes) !== sha256) {
      throw new DatasetInvalidError(`${uri} changed after its dataset's manifest was written (sha256 differs); re-run relabelDataset or restore the record`);
    }
    return parseDatasetJson(uri, bytes, validated ? PlannedRecord : DLanRecord, DLAN_RECORD_EXPECTED);
  }

  async function frame(trajectoryId: string, source: string, path: string): Promise<Buffer> {
    const uri = joinUri(source, path);
    const listed = (await drob(source)).files.get(path);
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

  return { dlanManifest, drob, record, frame };
}
