import stableStringify from 'fast-json-stable-stringify';
import { ApplicationFailure } from '@temporalio/activity';
import { ExperimentFailure, LINEAGE_FILE, LineageRecord, type ArtifactKind } from '../../data-schemas/experiment';
import { DatasetManifest, MANIFEST_FILE } from '../../data-schemas/manifest';
import { ShardManifest, SHARD_MANIFEST_FILE } from '../../data-schemas/shard';
import { joinUri } from '../../data-schemas/uri';
import { getJson, getJsonIfExists, putJson, sha256Hex, sha256HexOfStream } from '../store';
import type { ObjectStore } from '../store/types';
import type { ActivityHooks } from '../shard/hooks';

/**
 * Content hashes of the experiment's artefacts (docs/experiments.md, "Lineage"). A hash covers what
 * the artefact holds, not when it was written: a dataset's is over its manifest's trajectories and
 * files (each with its own sha256), not its `createdAt`, so a stage whose output comes out the same
 * does not make everything downstream run again.
 */
export async function artifactDigest(store: ObjectStore, kind: ArtifactKind, uri: string, hooks?: ActivityHooks): Promise<string> {
  switch (kind) {
    case 'd_rob':
    case 'd_lan': {
      const manifest = await getJson(store, joinUri(uri, MANIFEST_FILE), DatasetManifest, `a dataset manifest (${MANIFEST_FILE})`);
      return sha256Hex(stableStringify({ kind: manifest.kind, trajectories: manifest.trajectories, files: manifest.files }));
    }
    case 'shards': {
      const { createdAt: _written, ...content } = await getJson(store, uri, ShardManifest, `a shard manifest (${SHARD_MANIFEST_FILE})`);
      return sha256Hex(stableStringify(content));
    }
    case 'adapter':
      return treeDigest(store, `${uri.replace(/\/+$/, '')}/`, hooks);
    case 'vqa':
      return treeDigest(store, joinUri(uri, 'scores') + '/', hooks);
    case 'campaign':
      return sha256Hex(await store.get(uri));
    case 'model':
    case 'benchmark':
      throw ApplicationFailure.nonRetryable(`${kind} ${uri}: named inputs are keyed by name, not hashed`, ExperimentFailure.BadArtifact);
  }
}

/** sha256 over `<relative path> <sha256>` lines of every object under a prefix, in URI order. */
async function treeDigest(store: ObjectStore, prefixUri: string, hooks?: ActivityHooks): Promise<string> {
  const lines: string[] = [];
  for await (const object of store.list(prefixUri)) {
    const { sha256 } = await sha256HexOfStream(await store.getStream(object.uri));
    lines.push(`${object.uri.slice(prefixUri.length)} ${sha256}`);
    hooks?.heartbeat({ hashed: lines.length });
  }
  if (lines.length === 0) throw ApplicationFailure.nonRetryable(`nothing under ${prefixUri} to hash: the artefact is missing`, ExperimentFailure.BadArtifact);
  return sha256Hex(lines.join('\n'));
}

export function lineageUriOf(outputUri: string): string {
  return joinUri(outputUri, LINEAGE_FILE);
}

/** A stage's sealed lineage record under this key, or null when the stage has not completed there. */
export async function findStage(store: ObjectStore, outputUri: string, key: string): Promise<LineageRecord | null> {
  const uri = lineageUriOf(outputUri);
  const record = await getJsonIfExists(store, uri, LineageRecord);
  if (record === undefined) return null;
  if (record.key !== key) {
    // Folder names are the key's first 32 hex digits: a full-key mismatch is a collision or a hand edit.
    throw ApplicationFailure.nonRetryable(`${uri} was sealed under key ${record.key}, not ${key}: refusing to reuse it`, ExperimentFailure.LineageMismatch);
  }
  return record;
}

/** Writes a lineage record create-if-absent; a record already there (another experiment sealed it first) wins. */
export async function sealLineage(store: ObjectStore, outputUri: string, record: LineageRecord): Promise<LineageRecord> {
  const uri = lineageUriOf(outputUri);
  const written = await putJson(store, uri, record, { ifAbsent: true });
  if (written.created) return record;
  return getJson(store, uri, LineageRecord, `a lineage record (${LINEAGE_FILE})`);
}


