import { LINEAGE_FILE, LineageRecord, type LineageInput } from '../../data-schemas/experiment';
import { joinUri, parseObjectUri } from '../../data-schemas/uri';
import { getJsonIfExists, StoreError, StoreErrorCode } from '../store';
import type { ObjectStore } from '../store/types';

/**
 * Where an artefact came from: its stage's lineage record and, for each input the experiment
 * made, that input's own record, down to the inputs nobody made (the D_rob dataset, a base model,
 * benchmark data). `vla lineage` prints it; the report can show the same tree.
 */
export interface LineageTree {
  /** The lineage.json this node was read from. */
  lineageUri: string;
  record: LineageRecord;
  inputs: LineageTreeInput[];
}

export interface LineageTreeInput extends LineageInput {
  /** The input's own tree, when it has a lineage file that could be followed. */
  tree?: LineageTree;
  /**
   * Why `tree` is absent although `lineageUri` is set: `missing`, the file is gone (the stage's
   * folder was deleted); `cycle`, the file is one of this node's own ancestors (a hand edit).
   */
  unresolved?: 'missing' | 'cycle';
}

/** Thrown when no lineage.json is at a URI or in any folder above it. */
export class LineageNotFoundError extends Error {
  override name = 'LineageNotFoundError';
  constructor(
    readonly uri: string,
    readonly searched: readonly string[],
  ) {
    super(`${uri}: no ${LINEAGE_FILE} there or in any folder above it (looked at ${searched.length}, up to ${searched.at(-1) ?? uri}); it is not inside a sealed experiment stage`);
  }
}

/** The folder above `uri`, or undefined at the top of its filesystem or bucket. */
function parentUri(uri: string): string | undefined {
  const parsed = parseObjectUri(uri);
  const trimmed = uri.replace(/\/+$/, '');
  const rootLength = parsed.scheme === 'file' ? 'file://'.length : `s3://${parsed.bucket}`.length;
  const slash = trimmed.lastIndexOf('/');
  return slash <= rootLength ? undefined : trimmed.slice(0, slash);
}

/**
 * The record at `uri`, undefined where there is none (`<stage>/shards.json/lineage.json` is none
 * too: the stores read a path under a file as missing), or `outside` the store's roots.
 */
async function readLineage(store: ObjectStore, uri: string): Promise<LineageRecord | undefined | 'outside'> {
  try {
    return await getJsonIfExists(store, uri, LineageRecord);
  } catch (err) {
    // A confined store's roots are as far up as it may look.
    if (err instanceof StoreError && err.code === StoreErrorCode.OutsideRoots) return 'outside';
    throw err;
  }
}

/**
 * The lineage record an artefact belongs to: `uri` may be a lineage.json, a stage folder, or
 * anything inside one (an adapter folder, a shards.json); the folders above it are tried in turn,
 * up to the top of the filesystem or bucket (or the store's roots).
 * @throws LineageNotFoundError naming the URI when none is found
 * @throws InvalidObjectError when a lineage.json found is not a lineage record
 */
export async function findLineage(store: ObjectStore, uri: string): Promise<{ lineageUri: string; record: LineageRecord }> {
  const trimmed = uri.replace(/\/+$/, '');
  let folder: string | undefined = trimmed.endsWith(`/${LINEAGE_FILE}`) ? parentUri(trimmed) : trimmed;
  const searched: string[] = [];
  while (folder !== undefined) {
    const lineageUri = joinUri(folder, LINEAGE_FILE);
    const record = await readLineage(store, lineageUri);
    if (record === 'outside') break;
    searched.push(lineageUri);
    if (record !== undefined) return { lineageUri, record };
    folder = parentUri(folder);
  }
  throw new LineageNotFoundError(uri, searched);
}

/**
 * The lineage tree of the artefact at `uri` (see findLineage for what `uri` may be): each input
 * with a `lineageUri` is followed in turn. An input reached again through another path (the shard
 * set under every variant) is shown again; an ancestor of itself is marked `cycle`, not followed.
 */
export async function lineageTree(store: ObjectStore, uri: string): Promise<LineageTree> {
  const { lineageUri, record } = await findLineage(store, uri);
  return buildNode(store, lineageUri, record, [lineageUri]);
}

async function buildNode(store: ObjectStore, lineageUri: string, record: LineageRecord, ancestors: readonly string[]): Promise<LineageTree> {
  const inputs: LineageTreeInput[] = [];
  for (const input of record.inputs) {
    if (input.lineageUri === undefined) {
      inputs.push(input);
    } else if (ancestors.includes(input.lineageUri)) {
      inputs.push({ ...input, unresolved: 'cycle' });
    } else {
      // Unlike the search above, a store refusing this URI is an error: the record names it.
      const child = await getJsonIfExists(store, input.lineageUri, LineageRecord);
      if (child === undefined) inputs.push({ ...input, unresolved: 'missing' });
      else inputs.push({ ...input, tree: await buildNode(store, input.lineageUri, child, [...ancestors, input.lineageUri]) });
    }
  }
  return { lineageUri, record, inputs };
}
