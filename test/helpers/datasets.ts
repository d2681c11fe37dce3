import { asyncLocalStorage, type Context } from '@temporalio/activity';
import { noopMetricMeter } from '@temporalio/common';
import { importBridgeRlds, readManifest, readTrajectory, writeDataset, type PendingTrajectory } from '../../activities/data';
import { forEachConcurrent } from '../../activities/data/pool';
import { createRelabelActivities, relabelRecordUri } from '../../activities/relabel/activities';
import { simulateEpisodes } from '../../activities/robot/sim';
import { putJson, sha256Hex } from '../../activities/store';
import type { ObjectStore } from '../../activities/store/types';
import { MANIFEST_FORMAT_VERSION, type DatasetManifest } from '../../data-schemas/manifest';
import { ChunkAggregation, labelerIdentity } from '../../data-schemas/relabel';
import { joinUri, relativeTo } from '../../data-schemas/uri';
import { BRIDGE_SAMPLE } from '../../infra/config';


/** The 25 bundled real Bridge episodes as a D_rob dataset at `uri`. */
export function importBridgeSample(store: ObjectStore, uri: string, limit?: number): Promise<DatasetManifest> {
  return importBridgeRlds(store, { files: [BRIDGE_SAMPLE], outUri: uri, name: 'bridge-debug', ...(limit !== undefined && { limit }) });
}

/** A small simulated dataset (image_0 only). */
export function simulateSample(store: ObjectStore, uri: string, tasks: string[], n: number, seed: number): Promise<DatasetManifest> {
  return writeDataset(
    store,
    uri,
    { name: `sim-s${seed}`, kind: 'd_rob', source: { producer: 'test', producerVersion: '1', inputs: tasks } },
    simulateEpisodes({ tasks, n, seed, cameras: ['image_0'] }),
  );
}

/**
 * `copies` copies of a dataset's trajectories under new ids (`<id>-c<k>`), frames included: a
 * cheap way to a few hundred real trajectories for fault tests. A dataset holds each recording
 * once, so copy k > 0 raises the first step's z by k micrometres: a distinct recording whose labels
 * do not change.
 */
export async function replicateDataset(store: ObjectStore, sourceUri: string, outUri: string, copies: number): Promise<DatasetManifest> {
  const source = await readManifest(store, sourceUri);
  async function* trajectories(): AsyncGenerator<PendingTrajectory> {
    for (let k = 0; k < copies; k++) {
      for (const entry of source.trajectories) {
        const t = await readTrajectory(store, sourceUri, entry);
        const id = `${t.id}-c${k}`;
        const files = new Map<string, Uint8Array>();
        const steps = await Promise.all(
          t.steps.map(async (step) => {
            const frames: typeof step.frames = {};
            for (const [camera, path] of Object.entries(step.frames) as [keyof typeof step.frames, string][]) {
              const newPath = path.replace(`frames/${t.id}/`, `frames/${id}/`);
              files.set(newPath, await store.get(joinUri(sourceUri, path)));
              frames[camera] = newPath;
            }
            const state = step.index === 0 ? (step.state.map((v, i) => (i === 2 ? v + k * 1e-6 : v)) as typeof step.state) : step.state;
            return { ...step, state, frames };
          }),
        );
        yield { trajectory: { ...t, id, steps }, files };
      }
    }
  }
  return writeDataset(store, outUri, { name: `${source.name}-x${copies}`, kind: 'd_rob', source: { producer: 'test', producerVersion: '1', inputs: [sourceUri] } }, trajectories());
}

/**
 * writeRelabelRecord counts records through its activity context's metric meter; run outside a
 * worker, it gets a context holding only a meter that records nothing.
 */
const NO_WORKER_ACTIVITY_CONTEXT = { metricMeter: noopMetricMeter } as unknown as Context;

/**
 * A D_lan dataset at `outUri` of every trajectory of `drobUri`, labelled by the heuristic labeler's
 * activity code without a Temporal worker (benches, and scripts that need real shards fast).
 */
export async function relabelHeuristicLocally(store: ObjectStore, drobUri: string, outUri: string): Promise<void> {
  const activities = createRelabelActivities({ store }).cpu;
  const drob = await readManifest(store, drobUri);
  const labeler = { name: 'heuristic' } as const;
  const aggregation = ChunkAggregation.parse({});
  await forEachConcurrent(drob.trajectories, 16, async (t) => {
    const outcome = await activities.labelHeuristic({ datasetUri: drobUri, trajectoryId: t.id });
    if (!outcome.ok) throw new Error(`${t.id}: ${outcome.problem}`);
    await asyncLocalStorage.run(NO_WORKER_ACTIVITY_CONTEXT, () =>
      activities.writeRelabelRecord({ datasetUri: drobUri, trajectoryId: t.id, outputUri: outUri, labeler, segments: outcome.segments, aggregation }),
    );
  });
  const entries: { id: string; path: string; sha256: string; bytes: number; instruction: string; steps: number }[] = [];
  await forEachConcurrent(drob.trajectories, 16, async (t) => {
    const uri = relabelRecordUri(outUri, t.id);
    const bytes = await store.get(uri);
    const record = JSON.parse(bytes.toString('utf8')) as { instruction: string; steps: unknown[] };
    entries.push({ id: t.id, path: relativeTo(outUri, uri)!, sha256: sha256Hex(bytes), bytes: bytes.length, instruction: record.instruction, steps: record.steps.length });
  });
  entries.sort((a, b) => a.path.localeCompare(b.path));
  const identity = labelerIdentity(labeler);
  const manifest: DatasetManifest = {
    formatVersion: MANIFEST_FORMAT_VERSION,
    kind: 'd_lan',
    name: `${drob.name}.${identity.name}-${identity.version}`,
    createdAt: new Date().toISOString(),
    source: { producer: 'test', producerVersion: '1', inputs: [drobUri] },
    counts: { trajectories: entries.length, steps: entries.reduce((n, e) => n + e.steps, 0), files: entries.length, bytes: entries.reduce((n, e) => n + e.bytes, 0) },
    trajectories: entries.map((e) => ({ id: e.id, record: e.path, instruction: e.instruction, steps: e.steps })),
    files: entries.map((e) => ({ path: e.path, sha256: e.sha256, bytes: e.bytes })),
  };
  await putJson(store, joinUri(outUri, 'manifest.json'), manifest);
}
