/**
 * shardDataset's activities: D_lan -> WebDataset tar shards in the object store.
 *
 * planShards writes `shards-plan.json` (which trajectory goes to which split and shard) once per
 * shard set; writeShard streams one shard's tar (deterministic bytes) into the store with
 * create-if-absent, then its `.tar.json` sidecar; verifyShards re-reads shards; finalizeShards
 * writes `shards.json` last. Payloads stay small: shards, frames and the plan live in the store.
 * The store files are declared in data-schemas/shard.ts; the work is in this folder's modules:
 * sources.ts (D_lan and D_rob reads), plan.ts and planning.ts (the plan), tar.ts (the shard bytes),
 * verify.ts (re-reading a shard), manifest.ts (sidecars and shards.json).
 */
import { ApplicationFailure } from '@temporalio/activity';
import { POLICY_PROMPT_VERSION } from '../../data-schemas/prompts';
import { implement } from '../../data-schemas/activity-contract';
import {
  SHARD_MANIFEST_FILE,
  SHARD_PLAN_FILE,
  ShardActivities,
  ShardEntry,
  ShardFailure,
  ShardManifest,
  shardPath,
  shardSidecarPath,
  type ShardPlanFile,
  type ShardPlanKey,
  type ShardRef,
} from '../../data-schemas/shard';
import { joinUri } from '../../data-schemas/uri';
import { forEachConcurrent } from '../data/pool';
import { classified } from '../failures';
import { getJson, InvalidObjectError, ObjectNotFoundError, putJson } from '../store';
import type { ObjectStore } from '../store/types';
import { contextHooks, throttledHeartbeat, type ActivityHooks } from './hooks';
import { buildShardManifest, sameShardSet, shardEntryOf, sidecarDescribes, sidecarMismatch } from './manifest';
import { planKeyConflict, plannedShards, trajectoriesPerSplit, type PlannedShard } from './plan';
import { computePlan, createPlanLoader } from './planning';
import { createShardSources } from './sources';
import { buildTar, hashShard, storeSha256 } from './tar';
import { verifyShard } from './verify';

export type { ActivityHooks } from './hooks';

/** Sidecars read at once by finalizeShards. */
const SIDECAR_READ_CONCURRENCY = 16;

export interface ShardDeps {
  store: ObjectStore;
  /** @default the current activity's context (heartbeat, cancellation) */
  hooks?: () => ActivityHooks;
}

const outputConflict = (message: string): ApplicationFailure => ApplicationFailure.nonRetryable(message, ShardFailure.OutputConflict);

function findShard(shards: readonly PlannedShard[], ref: ShardRef, outputUri: string): PlannedShard {
  const shard = shards.find((s) => s.split === ref.split && s.index === ref.index);
  if (!shard) throw ApplicationFailure.nonRetryable(`${joinUri(outputUri, shardPath(ref.split, ref.index))} is not in the plan`, ShardFailure.NotPlanned);
  return shard;
}

export function createShardActivities({ store, hooks = contextHooks }: ShardDeps) {
  // Per worker: the sources' manifests and the plan are cached by ETag.
  const sources = createShardSources(store);
  const loadPlan = createPlanLoader(store);

  /**
   * Why a written shard no longer matches its sidecar (trajectories, size, then sha256 of the stored
   * bytes), or undefined when it does. A sidecar that does not parse counts as a change.
   */
  async function changedSince(sidecarUri: string, storedBytes: number, uri: string, plannedIds: readonly string[]): Promise<string | undefined> {
    let entry: ShardEntry;
    try {
      entry = await getJson(store, sidecarUri, ShardEntry, 'a shard sidecar');
    } catch (err) {
      if (err instanceof InvalidObjectError || err instanceof ObjectNotFoundError) return `its sidecar ${sidecarUri} is unreadable: ${err.message}`;
      throw err;
    }
    const mismatch = sidecarMismatch(entry, plannedIds, sidecarUri, { uri, bytes: storedBytes });
    if (mismatch !== undefined) return mismatch;
    const stored = await storeSha256(store, uri);
    if (stored.sha256 !== entry.sha256 || stored.bytes !== entry.bytes) return `${uri} has sha256 ${stored.sha256} but its sidecar records ${entry.sha256}`;
    return undefined;
  }

  return implement(ShardActivities, 'cpu', {
    /**
     * Reads the D_lan manifest and, the first time, every record, and writes the plan
     * (create-if-absent). Returns only the list of non-empty shards and counts.
     */
    planShards: classified(async (input) => {
      const h = hooks();
      const { manifest, sha256 } = await sources.dlanManifest(input.datasetUri);
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
        const existing = await getJson(store, manifestUri, ShardManifest, `a shard manifest (${SHARD_MANIFEST_FILE})`);
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
        const fresh = await computePlan(sources, input, key, manifest, (details) => h.heartbeat(details));
        const put = await putJson(store, planUri, fresh, { ifAbsent: true });
        plan = put.created ? fresh : (await loadPlan(input.outputUri)).plan;
      }
      const conflict = planKeyConflict(planUri, plan.key, key);
      if (conflict !== undefined) throw outputConflict(conflict);
      return {
        datasetName: plan.datasetName,
        datasetManifestSha256: sha256,
        shards: plannedShards(plan.trajectories).map((s) => ({ split: s.split, index: s.index })),
        trajectories: trajectoriesPerSplit(plan.trajectories),
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
    writeShard: classified(async (input) => {
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
        const [fresh, stored] = await Promise.all([hashShard(sources, plan, shard.trajectories, h), storeSha256(store, uri)]);
        if (fresh.sha256 === stored.sha256) {
          await putJson(store, sidecarUri, shardEntryOf(input, shard.trajectories, fresh));
          return { path, written: false, bytes: fresh.bytes, samples };
        }
        await store.delete(uri);
      }

      let uploaded = 0;
      const beat = throttledHeartbeat(h, (generated) => ({ phase: 'uploading', path, generated, uploaded }));
      const build = buildTar(sources, plan, shard.trajectories, beat);
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
      await putJson(store, sidecarUri, shardEntryOf(input, shard.trajectories, digest));
      return { path, written: true, bytes: digest.bytes, samples, ...(replacedBecause !== undefined && { replacedBecause }) };
    }),

    /** Re-reads shards; any mismatch fails non-retryable, naming the shard. */
    verifyShards: classified(async (input) => {
      const h = hooks();
      let bytes = 0;
      for (const ref of input.shards) bytes += (await verifyShard(store, input.outputUri, ref, h)).bytes;
      return { verified: input.shards.length, bytes };
    }),

    /**
     * Writes `shards.json` from the plan and the sidecars, create-if-absent. A re-run that finds
     * the same manifest (apart from createdAt) returns it; a different one is an output conflict.
     */
    finalizeShards: classified(async (input) => {
      const h = hooks();
      const { plan, shards } = await loadPlan(input.outputUri);
      const entries = new Map<string, ShardEntry>();
      let read = 0;
      await forEachConcurrent(shards, SIDECAR_READ_CONCURRENCY, async (s) => {
        const sidecarUri = joinUri(input.outputUri, shardSidecarPath(s.split, s.index));
        let entry: ShardEntry;
        try {
          entry = await getJson(store, sidecarUri, ShardEntry, 'a shard sidecar');
        } catch (err) {
          if (err instanceof ObjectNotFoundError) throw ApplicationFailure.nonRetryable(`${sidecarUri} is missing: shard ${shardPath(s.split, s.index)} was not written`, ShardFailure.Corrupt);
          throw err;
        }
        if (!sidecarDescribes(entry, s)) {
          throw ApplicationFailure.nonRetryable(`${sidecarUri} does not describe the planned shard (path or trajectories differ)`, ShardFailure.Corrupt);
        }
        entries.set(entry.path, entry);
        if (++read % 200 === 0) h.heartbeat({ read });
      });
      const list = shards.map((s) => entries.get(shardPath(s.split, s.index))!);
      const manifest = buildShardManifest(plan, list, new Date().toISOString());
      const manifestUri = joinUri(input.outputUri, SHARD_MANIFEST_FILE);
      const put = await putJson(store, manifestUri, manifest, { ifAbsent: true });
      let final = manifest;
      if (!put.created) {
        const existing = await getJson(store, manifestUri, ShardManifest, `a shard manifest (${SHARD_MANIFEST_FILE})`);
        if (!sameShardSet(existing, manifest)) {
          throw outputConflict(`${manifestUri} already exists and describes a different shard set; choose a new outputUri (or delete that shard set)`);
        }
        final = existing;
      }
      return { manifestUri, shards: final.counts.shards, samples: final.counts.samples, bytes: final.counts.bytes };
    }),
  });
}
