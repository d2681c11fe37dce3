import { importBridgeRlds, readManifest, readTrajectory, writeDataset, type PendingTrajectory } from '../../activities/data';
import { simulateEpisodes } from '../../activities/robot/sim';
import type { ObjectStore } from '../../activities/store/types';
import type { DatasetManifest } from '../../data-schemas/manifest';
import { joinUri } from '../../data-schemas/uri';
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
