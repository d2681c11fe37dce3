import { WorkflowIds } from '../../data-schemas/workflow-ids';
import { ApplicationFailure, defineQuery, executeChild, patched, setHandler, workflowInfo } from '@temporalio/workflow';
import { workflowQueue, type QueueOf, type RolesOf } from '../../data-schemas/activity-contract';
import {
  RETENTION_THRESHOLD,
  VqaInferenceActivities,
  VqaPresets,
  VqaStoreActivities,
  VqaSweepInput,
  type BenchmarkId,
  type ModelSpec,
  type VqaSweepResult,
} from '../../data-schemas/vqa';
import { proxyFor } from '../activity-proxy';
import { parseWorkflowInput } from '../input';
import { watchTaskQueue, type QueueWatchState } from '../queue-watch';
import { VlaModel, VlaStage, upsertKeywords } from '../search-attributes';
import { vqaEvaluate } from './vqa-evaluate';

const prepare = proxyFor(VqaStoreActivities, workflowQueue('cpu'), VqaPresets.prepare);

/** A backend's task queue: polled by the kind of worker that serves that backend. */
type InferenceQueue = QueueOf<RolesOf<typeof VqaInferenceActivities>>;

export interface VqaSweepProgress {
  /** (model, benchmark) evaluations in the sweep, and those finished. */
  evaluations: number;
  finished: number;
  /** Backend task queues no worker polls (a misspelled `taskQueues` entry, a stopped worker): their work waits. */
  waitingOn?: string[];
}
export const vqaSweepProgressQuery = defineQuery<VqaSweepProgress>('progress');

/**
 * Models x benchmarks: materialise each benchmark's item set (per source and limit), check every
 * backend early (which also fixes each model's identity: its key), one child `vqaEvaluate` per
 * (model, benchmark) with bounded concurrency, then the report (scores with standard errors,
 * retention against each model's base with paired bootstrap intervals, the paper's Table 1, a chart).
 */
export async function vqaSweep(raw: unknown): Promise<VqaSweepResult> {
  const input = parseWorkflowInput('vqaSweep', VqaSweepInput, raw);
  upsertKeywords([
    { key: VlaStage, value: 'vqa' },
    { key: VlaModel, value: input.models.map((m) => m.name).join(',').slice(0, 200) },
  ]);
  const queueOf = (m: ModelSpec): InferenceQueue => input.taskQueues[m.backend];
  const progress: VqaSweepProgress = { evaluations: input.models.length * input.benchmarks.length, finished: 0 };
  const queues: QueueWatchState = { waitingOn: [] };
  setHandler(vqaSweepProgressQuery, () => ({ ...progress, ...(queues.waitingOn.length > 0 && { waitingOn: queues.waitingOn }) }));

  // Backend calls wait for their queue's worker however long it takes; the watch only says which
  // queue has none. Sweeps recorded before it replay without it (no marker in their histories).
  let settled = false;
  const backendQueues = [...new Set(input.models.map(queueOf))].filter((q) => q !== workflowInfo().taskQueue);
  const queueWatch = patched('vqa-sweep-queue-watch')
    ? Promise.all(
        backendQueues.map((queue) =>
          watchTaskQueue({ queue, role: 'activity' }, { firstCheckAfterMs: (input.noWorkerWarningSeconds ?? 60) * 1000, done: () => settled, state: queues }),
        ),
      )
    : Promise.resolve([]);
  try {
    return await sweep(input, queueOf, progress);
  } finally {
    settled = true;
    await queueWatch;
  }
}

/** The sweep itself, while vqaSweep watches the backend queues. */
async function sweep(input: VqaSweepInput, queueOf: (m: ModelSpec) => InferenceQueue, progress: VqaSweepProgress): Promise<VqaSweepResult> {
  const benchmarks = input.benchmarks.map((b) => b.benchmark);
  const prepared = await Promise.all(
    input.benchmarks.map((source) => prepare.prepareBenchmark({ source, outputUri: input.outputUri, ...(input.limit !== undefined && { limit: input.limit }) })),
  );
  const itemsUris: Partial<Record<BenchmarkId, string>> = Object.fromEntries(prepared.map((p) => [p.benchmark, p.itemsUri]));
  const resolved = await Promise.all(input.models.map((model) => proxyFor(VqaInferenceActivities, queueOf(model), VqaPresets.checkBackend).checkBackend(model)));
  const modelKeys: Record<string, string> = Object.fromEntries(input.models.map((m, i) => [m.name, resolved[i]!.modelKey]));

  const pairs = input.models.flatMap((model) => benchmarks.map((benchmark) => ({ model, benchmark })));
  let made = 0;
  let reused = 0;
  const running = new Set<Promise<void>>();
  let failure: { err: unknown } | undefined;
  for (const { model, benchmark } of pairs) {
    if (failure) break;
    const p: Promise<void> = executeChild(vqaEvaluate, {
      workflowId: WorkflowIds.vqaEvaluate(input.outputUri, model.name, benchmark),
      taskQueue: workflowInfo().taskQueue,
      args: [
        {
          outputUri: input.outputUri,
          itemsUri: itemsUris[benchmark]!,
          model,
          modelKey: modelKeys[model.name]!,
          benchmark,
          concurrency: input.concurrency,
          batchSize: input.batchSize ?? 32 * input.concurrency,
          taskQueue: queueOf(model),
        },
      ],
    })
      .then((done) => {
        made += done.made;
        reused += done.reused;
        progress.finished++;
      })
      .catch((err: unknown) => {
        failure ??= { err };
      })
      .finally(() => running.delete(p));
    running.add(p);
    while (running.size >= input.maxConcurrentEvaluations) await Promise.race(running);
  }
  await Promise.all(running);
  if (failure) throw failure.err instanceof Error ? failure.err : ApplicationFailure.create({ message: String(failure.err) });
  return prepare.writeReport({
    outputUri: input.outputUri,
    title: 'VQA retention',
    models: input.models,
    benchmarks,
    made,
    reused,
    modelKeys,
    itemsUris,
    retentionThreshold: input.retentionThreshold ?? RETENTION_THRESHOLD,
    ...(input.limit !== undefined && { limit: input.limit }),
  });
}
