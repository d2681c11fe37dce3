import { WorkflowIds } from '../../data-schemas/workflow-ids';
import { Worker } from '@temporalio/worker';
import { historyFromJSON, historyToJSON } from '@temporalio/common/lib/proto-utils';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'vitest';
import { readManifest } from '../../activities/data';
import { FileStore } from '../../activities/store';
import { defaultRelabelOutput, labelerKey, type LabelerChoice } from '../../data-schemas/relabel';
import { fileUri } from '../../data-schemas/uri';
import { createCpuWorker } from '../../workers/cpu';
import { createGeminiWorker } from '../../workers/gemini';
import type { relabelDataset } from '../../workflows';
import { createGeminiServer } from '../fixtures/gemini-server';
import { importBridgeSample } from '../helpers/datasets';
import { connectTestTemporal, HISTORIES_DIR, quietRuntime, uniqueTaskQueue, workflowBundle } from '../helpers/temporal';

const HISTORIES = HISTORIES_DIR;

/**
 * Recorded histories of every workflow type replayed against the current workflow code: a change
 * that would break running workflows (non-determinism) fails here. test/unit/replay-coverage.test.ts
 * fails while a workflow type has no history here. Re-record after an intended, versioned change
 * with VLA_RECORD_HISTORIES=1 and the test that runs each:
 * - `npx vitest run test/integration/replay.test.ts`: relabelDataset, relabelTrajectory;
 * - `... test/integration/train-lora.test.ts -t trains`: shardDataset, trainLora;
 * - `... test/integration/robot-episode.test.ts`: robotEpisode, stationLock;
 * - `... test/integration/eval-campaign.test.ts`: evalCampaign;
 * - `... test/integration/experiment.test.ts`: experiment (a run of every stage);
 * - `... test/integration/smoke-workflow.test.ts -t "writes through"`: storeSmoke;
 * - `... test/integration/vqa-sweep.test.ts -t "evaluates the newest"`: nightlyEvaluation (a night
 *   that evaluates a new checkpoint, one that finds none), the evaluating night's child vqaSweep
 *   and one of that sweep's vqaEvaluate children.
 * The `*-before-<patch>` histories come from the workflow code before that patch, stay as they are
 * and have no recording mode (vqaSweep's and vqaEvaluate's predate `vqa-sweep-queue-watch`).
 * test/integration/rollout.test.ts shows each of them breaks once its change ships without the patch.
 */
describe('replay of recorded workflow histories', () => {
  const recording = process.env.VLA_RECORD_HISTORIES === '1';

  it.runIf(recording)('records fresh histories', { timeout: 120_000 }, async () => {
    const env = await connectTestTemporal();
    const store = new FileStore();
    const dir = mkdtempSync(join(tmpdir(), 'vla-record-'));
    const gemini = await createGeminiServer({ apiKey: 'AIza-recording-key' });
    try {
      const datasetUri = fileUri(join(dir, 'bridge'));
      await importBridgeSample(store, datasetUri, 3);
      const ids = (await readManifest(store, datasetUri)).trajectories.map((t) => t.id);
      gemini.scriptFor(new RegExp(''), 'schema_violation', 1); // first answer rejected: a re-prompt in the history
      const cpu = uniqueTaskQueue('record-cpu');
      const geminiQueue = uniqueTaskQueue('record-gemini');
      const cpuWorker = await createCpuWorker({ connection: env.nativeConnection, namespace: env.namespace, taskQueue: cpu, workflowBundle: await workflowBundle(), deps: { store } });
      const geminiWorker = await createGeminiWorker({
        connection: env.nativeConnection,
        namespace: env.namespace,
        taskQueue: geminiQueue,
        deps: { store, gemini: { apiKey: 'AIza-recording-key', baseUrl: gemini.baseUrl } },
      });
      const choice: LabelerChoice = { name: 'gemini', model: 'gemini-2.5-flash' };
      const parentId = `record-${cpu}`;
      await cpuWorker.runUntil(
        geminiWorker.runUntil(
          env.client.workflow.execute<typeof relabelDataset>('relabelDataset', {
            taskQueue: cpu,
            workflowId: parentId,
            // Two children per run: the first run's history ends in continue-as-new.
            args: [{ datasetUri, labeler: choice, geminiTaskQueue: geminiQueue, childrenPerRun: 2, maxConcurrent: 2 }],
          }),
        ),
      );
      mkdirSync(HISTORIES, { recursive: true });
      const save = async (name: string, workflowId: string, runId?: string): Promise<void> => {
        const history = await env.client.workflow.getHandle(workflowId, runId).fetchHistory();
        writeFileSync(join(HISTORIES, `${name}.json`), `${historyToJSON(history)}\n`);
      };
      const firstRun = (await env.client.workflow.getHandle(parentId).fetchHistory()).events?.[0]?.workflowExecutionStartedEventAttributes?.firstExecutionRunId;
      await save('relabelDataset-first-run', parentId, firstRun ?? undefined);
      await save('relabelDataset-last-run', parentId);
      await save('relabelTrajectory-gemini-reprompt', WorkflowIds.relabelTrajectory(defaultRelabelOutput(datasetUri, choice), labelerKey(choice), ids[0]!));
    } finally {
      await gemini.close();
      await env.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  // Listed when the file is collected: in recording mode, before the recording runs.
  const files = readdirSync(HISTORIES).filter((f) => f.endsWith('.json'));

  it.each(files)('%s replays without non-determinism', async (file) => {
    quietRuntime();
    const history = historyFromJSON(JSON.parse(readFileSync(join(HISTORIES, file), 'utf8')));
    const idFile = join(HISTORIES, file.replace(/\.json$/, '.workflow-id'));
    const workflowId = existsSync(idFile) ? readFileSync(idFile, 'utf8').trim() : undefined;
    await Worker.runReplayHistory({ workflowBundle: await workflowBundle() }, history, workflowId);
  });
});
