/**
 * Activities of the nightly evaluation: find the newest finished training run, and remember which
 * run was evaluated last so a night without a new checkpoint ends at once.
 */
import { z } from 'zod';
import { ObjectUri } from '../../data-schemas/common';
import { TrainingRunConfig, TrainLoraResult } from '../../data-schemas/training';
import { joinUri, relativeTo } from '../../data-schemas/uri';
import { classified } from '../failures';
import { getJson, getJsonIfExists, putJson } from '../store';
import type { ObjectStore } from '../store/types';

export const NewestRun = z.strictObject({
  /** The run's folder name under runsUri. */
  run: z.string(),
  resultUri: ObjectUri,
  /** Changes when the run's result is rewritten (a re-trained run at the same output). */
  resultEtag: z.string(),
  adapterUri: ObjectUri,
  baseModel: z.string(),
  finishedAt: z.string(),
});
export type NewestRun = z.infer<typeof NewestRun>;

export const NightlyState = z.strictObject({
  resultUri: ObjectUri,
  resultEtag: z.string(),
  reportUri: ObjectUri,
  evaluatedAt: z.string(),
});
export type NightlyState = z.infer<typeof NightlyState>;

const NIGHTLY_STATE = 'last.json';

export function createNightlyActivities({ store }: { store: ObjectStore }) {
  return {
    /** The finished run (a `result.json` directly under a run folder) written most recently. */
    findNewestRun: classified(async (input: { runsUri: string }): Promise<NewestRun | undefined> => {
      let newest: { run: string; uri: string; etag: string; at: Date } | undefined;
      for await (const info of store.list(`${input.runsUri.replace(/\/$/, '')}/`)) {
        const rel = relativeTo(input.runsUri, info.uri);
        const m = rel === undefined ? null : /^([^/]+)\/result\.json$/.exec(rel);
        if (!m) continue;
        const at = info.lastModified ?? new Date(0);
        if (!newest || at > newest.at) newest = { run: m[1]!, uri: info.uri, etag: info.etag ?? at.toISOString(), at };
      }
      if (!newest) return undefined;
      const result = await getJson(store, newest.uri, TrainLoraResult);
      const config = await getJson(store, joinUri(result.runUri, 'config.json'), TrainingRunConfig);
      return { run: newest.run, resultUri: newest.uri, resultEtag: newest.etag, adapterUri: result.adapterUri, baseModel: config.input.baseModel, finishedAt: newest.at.toISOString() };
    }),

    readNightlyState: classified(
      (input: { outputUri: string }): Promise<NightlyState | undefined> => getJsonIfExists(store, joinUri(input.outputUri, NIGHTLY_STATE), NightlyState),
    ),

    /** Records the night's outcome: `last.json` when a run was evaluated, and a line per night in `nights/`. */
    recordNight: classified(async (input: { outputUri: string; night: string; status: string; run?: string; state?: NightlyState }): Promise<void> => {
      if (input.state) await putJson(store, joinUri(input.outputUri, NIGHTLY_STATE), input.state);
      await putJson(store, joinUri(input.outputUri, 'nights', `${input.night}.json`), { night: input.night, status: input.status, ...(input.run !== undefined && { run: input.run }), recordedAt: new Date().toISOString() });
    }),
  };
}

export type NightlyActivities = ReturnType<typeof createNightlyActivities>;
