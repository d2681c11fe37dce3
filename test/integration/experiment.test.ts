import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getJson } from '../../activities/store';
import { ExperimentResult, LineageRecord, type ExperimentInputRaw, type ExperimentStatus, type StageState } from '../../data-schemas/experiment';
import { fileUri, joinUri } from '../../data-schemas/uri';
import { WorkflowIds } from '../../data-schemas/workflow-ids';
import { REPO_ROOT } from '../../infra/config';
import type { PythonEnv } from '../../activities/runtime/python-env';
import type { experiment } from '../../workflows';
import { childStarts, experimentFixture, type ExperimentFixture } from '../helpers/experiment';
import { startStationProcess, type StationProcess } from '../helpers/stations';
import { connectTestTemporal, recordHistory, type TemporalTestEnv } from '../helpers/temporal';
import { withCpuAndGpuWorkers } from '../helpers/workers';

/** Each stage's state; `campaigns: false` leaves the campaign rows out. */
const states = (result: ExperimentStatus, campaigns = true): Record<string, StageState> =>
  Object.fromEntries(result.stages.filter((s) => campaigns || s.stage !== 'campaign').map((s) => [s.id, s.state]));

/**
 * The experiment workflow against the real dev server: the whole method on the tiny model (heuristic
 * labeler, CPU training, local-backend VQA on the bundled items, a simulated station), reuse of
 * every stage whose inputs and settings are unchanged, across experiments.
 */
describe('experiment', () => {
  let env: TemporalTestEnv;
  let store: ExperimentFixture['store'];
  let dir: string;
  let storeUri: string;
  let datasetUri: string;
  let python: PythonEnv;
  let baseModel: string;
  let station: StationProcess;

  beforeAll(async () => {
    env = await connectTestTemporal();
    ({ store, dir, storeUri, datasetUri, python, baseModel } = await experimentFixture('vla-experiment-'));
    station = await startStationProcess({ stateDir: join(dir, 'state'), storeUri });
  }, 900_000);

  afterAll(async () => {
    await station?.stop();
    await env?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  const small = (name: string, gpu: string): ExperimentInputRaw => ({
    name,
    storeUri: joinUri(storeUri, 'experiments-root'),
    datasetUri,
    shard: { validationFraction: 0.34 },
    variants: [
      { name: 'vlm2vla', baseModel, maxSteps: 2, learningRate: 1e-3, precision: 'fp32', checkpointEvery: 2 },
      { name: 'vlm2vla-at', baseModel, actionRepresentation: 'action-tokens', maxSteps: 2, learningRate: 1e-3, precision: 'fp32', checkpointEvery: 2 },
    ],
    // AI2D's and MMMU's answers are short (16 and 128 new tokens): the tiny random model writes every answer to its limit.
    vqa: { benchmarks: [{ benchmark: 'ai2d', uri: fileUri(join(REPO_ROOT, 'data', 'samples', 'vqa-samples', 'mmmu-pro-ai2d')) }], limit: 2, concurrency: 2 },
    campaign: {
      tasks: ['pick_up'],
      trials: 1,
      stations: [station.stationId],
      policy: { kind: 'scripted', seed: 0, actionStdMeters: 0, formatErrorRate: 0, wrongSubtaskRate: 0 },
    },
    taskQueues: { gpu },
  });

  it(
    'runs the small experiment end to end; a second one with other benchmarks reruns only the sweep; a changed labeler setting reruns everything downstream of it',
    { timeout: 1_800_000 },
    async () => {
      await withCpuAndGpuWorkers(env, { store, workDir: join(dir, 'gpu'), python }, async ({ cpu, gpu }) => {
        const run = async (input: ExperimentInputRaw) => {
          const handle = await env.client.workflow.start<typeof experiment>('experiment', { taskQueue: cpu, workflowId: WorkflowIds.experiment(input.name), args: [input] });
          return { handle, result: ExperimentResult.parse(await handle.result()) };
        };

        // 1. Everything runs once.
        const first = await run(small('tiny-a', gpu));
        expect(first.result.state).toBe('completed');
        expect(states(first.result, false)).toEqual({
          relabel: 'done',
          shard: 'done',
          'train:vlm2vla': 'done',
          'train:vlm2vla-at': 'done',
          vqa: 'done',
        });
        // A fixed (scripted) policy makes one campaign both variants share: whichever adapter is ready first runs it.
        expect(first.result.stages.filter((s) => s.stage === 'campaign').map((s) => s.state).sort()).toEqual(['done', 'reused']);
        expect(await childStarts(first.handle)).toEqual({ relabelDataset: 1, shardDataset: 1, trainLora: 2, vqaSweep: 1, evalCampaign: 1 });
        await recordHistory(env, 'experiment', first.handle.workflowId);

        // Found by experiment, variant and state; its stage workflows by the experiment's name.
        const found = async (query: string, want: number): Promise<string[]> => {
          for (let i = 0; ; i++) {
            const ids: string[] = [];
            for await (const w of env.client.workflow.list({ query })) ids.push(w.workflowId);
            if (ids.length >= want || i === 40) return ids;
            await sleep(250);
          }
        };
        expect(await found(`WorkflowType = 'experiment' AND VlaVariants IN ('vlm2vla-at') AND VlaState = 'completed' AND VlaExperiment = 'tiny-a'`, 1)).toEqual([first.handle.workflowId]);
        expect(await found(`WorkflowType = 'trainLora' AND VlaExperiment = 'tiny-a'`, 2)).toHaveLength(2);

        // Every stage's lineage names its inputs' content hashes and their own lineage files.
        const row = (id: string) => first.result.stages.find((s) => s.id === id)!;
        const dataset = await getJson(store, row('relabel').lineageUri!, LineageRecord);
        const shards = await getJson(store, row('shard').lineageUri!, LineageRecord);
        const adapter = await getJson(store, row('train:vlm2vla').lineageUri!, LineageRecord);
        expect(dataset.inputs).toEqual([expect.objectContaining({ role: 'dataset', kind: 'd_rob', uri: datasetUri, sha256: expect.stringMatching(/^[0-9a-f]{64}$/) })]);
        expect(shards.inputs[0]).toMatchObject({ role: 'd_lan', kind: 'd_lan', sha256: dataset.artifact.sha256, lineageUri: row('relabel').lineageUri });
        expect(adapter.inputs).toEqual([
          expect.objectContaining({ role: 'shards', sha256: shards.artifact.sha256, lineageUri: row('shard').lineageUri }),
          { role: 'baseModel', kind: 'model', uri: baseModel },
        ]);
        expect(adapter.producedBy.experiment).toBe('tiny-a');
        expect(adapter.code.gitRevision).not.toBe('');
        expect(first.result.spent.gpuHours).toBeGreaterThan(0);
        expect((await store.get(first.result.reportUri)).toString()).toContain('tiny-a');

        // 2. Another experiment, only the benchmarks changed: the sweep alone runs.
        const benchmarksOnly = small('tiny-b', gpu);
        benchmarksOnly.vqa!.benchmarks.push({ benchmark: 'mmmu', uri: fileUri(join(REPO_ROOT, 'data', 'samples', 'vqa-samples', 'mmmu-pro-ai2d')) });
        const second = await run(benchmarksOnly);
        expect(states(second.result)).toEqual({
          relabel: 'reused',
          shard: 'reused',
          'train:vlm2vla': 'reused',
          'train:vlm2vla-at': 'reused',
          vqa: 'done',
          'campaign:vlm2vla': 'reused',
          'campaign:vlm2vla-at': 'reused',
        });
        expect(await childStarts(second.handle)).toEqual({ vqaSweep: 1 });
        expect(second.result.stages.find((s) => s.id === 'shard')?.detail).toContain('tiny-a');

        // 3. A relabel setting changed: the D_lan differs, so shards, adapters and the sweep run again;
        // the scripted campaign does not depend on them. The GPU budget stops it before the sweep.
        const relabelled = small('tiny-c', gpu);
        relabelled.relabel = { aggregation: { perAxisMeters: 0.01, absoluteMeters: 0.02 } };
        relabelled.budget = { gpuHours: 1e-9 };
        const third = await run(relabelled);
        expect(third.result.state).toBe('budget_exhausted');
        expect(states(third.result)).toEqual({
          relabel: 'done',
          shard: 'done',
          'train:vlm2vla': 'done',
          'train:vlm2vla-at': 'done',
          vqa: 'skipped',
          'campaign:vlm2vla': 'reused',
          'campaign:vlm2vla-at': 'reused',
        });
        expect(third.result.error).toContain('GPU budget');
        expect(await childStarts(third.handle)).toEqual({ relabelDataset: 1, shardDataset: 1, trainLora: 2 });
      });
    },
  );
});
