/**
 * Activities of the nightly evaluation: find the newest finished training run, and remember which
 * run was evaluated last so a night without a new checkpoint ends at once.
 */
import { implement } from '../../data-schemas/activity-contract';
import { TrainingRunConfig, TrainLoraResult } from '../../data-schemas/training';
import { joinUri, relativeTo } from '../../data-schemas/uri';
import { NightlyActivities, NightlyState, VqaStoreFile, type NightRecord } from '../../data-schemas/vqa';
import { classified } from '../failures';
import { getJson, getJsonIfExists, putJson } from '../store';
import type { ObjectStore } from '../store/types';


export function createNightlyActivities({ store }: { store: ObjectStore }) {
  return implement(NightlyActivities, 'cpu', {
    /** The finished run (a `result.json` directly under a run folder) written most recently. */
    findNewestRun: classified(async (input) => {
      let newest: { run: string; uri: string; etag: string; at: Date } | undefined;
      for await (const info of store.list(`${input.runsUri.replace(/\/$/, '')}/`)) {
        const rel = relativeTo(input.runsUri, info.uri);
        const m = rel === undefined ? null : /^([^/]+)\/result\.json$/.exec(rel);
        if (!m) continue;
        const at = info.lastModified ?? new Date(0);
        if (!newest || at > newest.at) newest = { run: m[1]!, uri: info.uri, etag: info.etag ?? at.toISOString(), at };
      }
      if (!newest) return undefined;
      const result = await getJson(store, newest.uri, TrainLoraResult, 'a training run result (result.json)');
      const config = await getJson(store, joinUri(result.runUri, 'config.json'), TrainingRunConfig, 'a training run configuration (config.json)');
      return { run: newest.run, resultUri: newest.uri, resultEtag: newest.etag, adapterUri: result.adapterUri, baseModel: config.input.baseModel, finishedAt: newest.at.toISOString() };
    }),

    readNightlyState: classified((input) => getJsonIfExists(store, joinUri(input.outputUri, VqaStoreFile.nightlyState), NightlyState)),

    /** Records the night's outcome: `last.json` when a run was evaluated, and a NightRecord per night in `nights/`. */
    recordNight: classified(async (input) => {
      if (input.state) await putJson(store, joinUri(input.outputUri, VqaStoreFile.nightlyState), input.state);
      const record: NightRecord = { night: input.night, status: input.status, ...(input.run !== undefined && { run: input.run }), recordedAt: new Date().toISOString() };
      await putJson(store, joinUri(input.outputUri, VqaStoreFile.nights, `${input.night}.json`), record);
    }),
  });
}
