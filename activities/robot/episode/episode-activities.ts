import { DatasetManifest, MANIFEST_FILE, MANIFEST_FORMAT_VERSION } from '../../../data-schemas/manifest';
import { RELABEL_RECORDS_DIR } from '../../../data-schemas/relabel';
import { implement } from '../../../data-schemas/activity-contract';
import { EPISODE_RECORD_FILE, EpisodeRecordActivities, type FinalizedEpisode } from '../../../data-schemas/robot';
import { joinUri } from '../../../data-schemas/uri';
import { writeDataset } from '../../data/dataset-writer';
import { forEachConcurrent } from '../../data/pool';
import { classified } from '../../failures';
import { getJsonIfExists, putJson, sha256Hex } from '../../store';
import type { ObjectStore } from '../../store/types';
import { buildEpisodeDLan, buildEpisodeDRob } from './record';

export { EPISODE_RECORD_FILE };
export type { FinalizedEpisode };

/** Writing an episode's record and datasets at its end: on the station's worker and on the CPU worker. */
export function createEpisodeActivities(deps: { store: ObjectStore }, role: 'station' | 'cpu') {
  const { store } = deps;
  return implement(EpisodeRecordActivities, role, {
    /**
     * episode.json (the whole log), then `d_rob/` (one trajectory, frames copied from staging) and
     * `d_lan/` (the policy's own steps). Each dataset's manifest is written last; a re-run finds
     * them and keeps them.
     */
    finalizeEpisode: classified(async ({ record }): Promise<FinalizedEpisode> => {
      const root = record.input.outputUri;
      const recordUri = joinUri(root, EPISODE_RECORD_FILE);
      await putJson(store, recordUri, record);
      const dRob = buildEpisodeDRob(record);
      if (!dRob) return { recordUri, dRobUri: null, dLanUri: null };

      const dRobUri = joinUri(root, 'd_rob');
      let manifest = await getJsonIfExists(store, joinUri(dRobUri, MANIFEST_FILE), DatasetManifest);
      if (!manifest) {
        const files = new Map<string, Uint8Array>();
        // As many reads in flight as writeDataset has writes: an episode can have hundreds of frames.
        await forEachConcurrent(dRob.trajectory.steps.keys(), 16, async (i) => {
          const bytes = await store.get(dRob.frameUris[i] as string);
          files.set(dRob.trajectory.steps[i]?.frames.image_0 as string, new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
        });
        manifest = await writeDataset(
          store,
          dRobUri,
          { name: `episode-${record.episodeId}`.slice(0, 128), kind: 'd_rob', source: { producer: 'vla-robot-episode', producerVersion: '1', inputs: [record.workflowId] } },
          [{ trajectory: dRob.trajectory, files }],
        );
      }
      const recordEntry = manifest.files.find((f) => f.path === manifest.trajectories[0]?.record);
      const dLan = recordEntry ? buildEpisodeDLan(record, dRob, { sourceDataset: dRobUri, sourceRecordSha256: recordEntry.sha256 }) : null;
      if (!dLan) return { recordUri, dRobUri, dLanUri: null };

      const dLanUri = joinUri(root, 'd_lan');
      const path = `${RELABEL_RECORDS_DIR}/${dLan.trajectoryId}.json`;
      const body = JSON.stringify(dLan, null, 2) + '\n';
      await store.put(joinUri(dLanUri, path), body, { contentType: 'application/json' });
      const bytes = Buffer.byteLength(body);
      const dLanManifest: DatasetManifest = {
        formatVersion: MANIFEST_FORMAT_VERSION,
        kind: 'd_lan',
        name: `episode-${record.episodeId}.policy`.slice(0, 128),
        createdAt: record.finishedAt,
        source: { producer: 'vla-robot-episode', producerVersion: '1', inputs: [dRobUri] },
        counts: { trajectories: 1, steps: dLan.steps.length, files: 1, bytes },
        trajectories: [{ id: dLan.trajectoryId, record: path, instruction: dLan.instruction, steps: dLan.steps.length }],
        files: [{ path, sha256: sha256Hex(body), bytes }],
      };
      await putJson(store, joinUri(dLanUri, MANIFEST_FILE), DatasetManifest.parse(dLanManifest));
      return { recordUri, dRobUri, dLanUri };
    }),
  });
}
