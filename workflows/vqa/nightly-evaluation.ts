import { executeChild, patched, workflowInfo } from '@temporalio/workflow';
import { workflowQueue } from '../../data-schemas/activity-contract';
import { LegacyWorkflowIds, WORKFLOW_ID_FORMAT_PATCH, WorkflowIds } from '../../data-schemas/workflow-ids';
import { joinUri } from '../../data-schemas/uri';
import { NightlyActivities, NightlyEvaluationInput, NightlyPresets, RETENTION_THRESHOLD, type NightlyEvaluationResult, type VqaSweepRequest } from '../../data-schemas/vqa';
import { proxyFor } from '../activity-proxy';
import { parseWorkflowInput } from '../input';
import { VlaRetentionGate, VlaStage, upsertKeywords } from '../search-attributes';
import { vqaSweep } from './vqa-sweep';

const store = proxyFor(NightlyActivities, workflowQueue('cpu'), NightlyPresets.store);

/** A run name as a model name and key segment. */
const modelName = (run: string): string => run.replace(/[^A-Za-z0-9._-]/g, '_').replace(/^[^A-Za-z0-9]/, 'r').slice(0, 64);

/**
 * What the nightly Schedule starts: the newest finished training run's adapter and its base, swept
 * on a benchmark subset. A night with no new checkpoint since the last evaluated one records that
 * and ends at once. An evaluated night ends with the retention gate: `retentionGate` in the result
 * and the search attribute VlaRetentionGate (`failed` when overall retention is below the
 * threshold), so the Web UI and `temporal workflow list --query` find the failed nights.
 */
export async function nightlyEvaluation(raw: unknown): Promise<NightlyEvaluationResult> {
  const input = parseWorkflowInput('nightlyEvaluation', NightlyEvaluationInput, raw);
  upsertKeywords([{ key: VlaStage, value: 'nightly' }]);
  const night = workflowInfo().startTime.toISOString().slice(0, 10);

  const newest = await store.findNewestRun({ runsUri: input.runsUri });
  if (!newest) {
    await store.recordNight({ outputUri: input.outputUri, night, status: 'no-runs' });
    return { status: 'no-runs' };
  }
  const last = await store.readNightlyState({ outputUri: input.outputUri });
  if (last && last.resultUri === newest.resultUri && last.resultEtag === newest.resultEtag) {
    await store.recordNight({ outputUri: input.outputUri, night, status: 'no-new-checkpoint', run: newest.run });
    return { status: 'no-new-checkpoint', run: newest.run, adapterUri: newest.adapterUri, reportUri: last.reportUri };
  }

  const threshold = input.retentionThreshold ?? RETENTION_THRESHOLD;
  const name = modelName(newest.run);
  const outputUri = joinUri(input.outputUri, 'runs', name);
  const sweepInput: VqaSweepRequest = {
    models: [
      { name: 'base', backend: 'local', baseModel: newest.baseModel },
      { name, backend: 'local', baseModel: newest.baseModel, adapter: newest.adapterUri, baseOf: 'base' },
    ],
    benchmarks: input.benchmarks,
    outputUri,
    ...(input.limit !== undefined && { limit: input.limit }),
    concurrency: input.concurrency,
    taskQueues: { local: input.localTaskQueue },
    retentionThreshold: threshold,
  };
  const sweep = await executeChild(vqaSweep, {
    // One sweep per run: a retried night, or the next one after a failure, reuses its predictions.
    workflowId: patched(WORKFLOW_ID_FORMAT_PATCH) ? WorkflowIds.vqaSweep(outputUri) : LegacyWorkflowIds.nightlySweep(outputUri),
    args: [sweepInput],
  });
  await store.recordNight({
    outputUri: input.outputUri,
    night,
    status: 'evaluated',
    run: newest.run,
    state: { resultUri: newest.resultUri, resultEtag: newest.resultEtag, reportUri: sweep.reportUri, evaluatedAt: new Date().toISOString() },
  });
  const retention = sweep.retention.find((r) => r.model === name);
  // No retention figure at all is no evidence that anything was kept.
  const retentionGate = retention?.gate ?? 'failed';
  upsertKeywords([{ key: VlaRetentionGate, value: retentionGate }]);
  return {
    status: 'evaluated',
    run: newest.run,
    adapterUri: newest.adapterUri,
    reportUri: sweep.reportUri,
    ...(retention && { overallRetention: retention.overall }),
    retentionGate,
    retentionThreshold: threshold,
  };
}
