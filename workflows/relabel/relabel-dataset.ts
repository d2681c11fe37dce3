import {
  ApplicationFailure,
  continueAsNew,
  defineQuery,
  executeChild,
  patched,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import {
  RelabelDatasetInput,
  ZERO_USAGE,
  defaultRelabelOutput,
  labelerKey,
  type RelabelCounts,
  type RelabelDatasetResult,
  type RelabelProgress,
  type RelabelStatus,
  type RelabelTrajectoryInput,
  type TokenUsage,
  isFatalGeminiFailure,
  RelabelFailure,
  RelabelCpuActivities,
  RelabelPresets,
} from '../../data-schemas/relabel';
import { workflowQueue } from '../../data-schemas/activity-contract';
import { proxyFor } from '../activity-proxy';
import { LegacyWorkflowIds, WORKFLOW_ID_FORMAT_PATCH, WorkflowIds } from '../../data-schemas/workflow-ids';
import { causeChain, rootCause, rootCauseType } from '../failure-cause';
import { parseWorkflowInput } from '../input';
import { watchTaskQueue, type QueueWatchState } from '../queue-watch';
import { VlaDataset, VlaStage, upsertKeywords } from '../search-attributes';
import { addUsage, relabelTrajectory } from './relabel-trajectory';

const activities = proxyFor(RelabelCpuActivities, workflowQueue('cpu'), RelabelPresets.manifestPage);
const finalizer = proxyFor(RelabelCpuActivities, workflowQueue('cpu'), RelabelPresets.finalize);

export const relabelProgressQuery = defineQuery<RelabelProgress>('progress');

/** What one run hands to the next through continue-as-new; bounded, whatever the dataset size. */
export interface RelabelCarry {
  cursor: number;
  counts: RelabelCounts;
  usage: TokenUsage;
  runsSoFar: number;
  /** The first failures only, for the report. */
  failed: { trajectoryId: string; reason: string }[];
  /** The trailing run of failures with one cause, for the outage breaker (absent in carries of older runs). */
  failureStreak?: FailureStreak;
}

/** Trajectories that failed one after another with the same cause (rootCauseType). */
interface FailureStreak {
  cause: string;
  count: number;
}

const MAX_FAILED_KEPT = 100;

function overBudget(input: RelabelDatasetInput, usage: TokenUsage): boolean {
  const b = input.budget;
  if (!b) return false;
  return (b.usd !== undefined && usage.costUsd >= b.usd) || (b.tokens !== undefined && usage.inputTokens + usage.outputTokens >= b.tokens);
}

function fatalCause(err: unknown): ApplicationFailure | undefined {
  return causeChain(err).find((cause): cause is ApplicationFailure => cause instanceof ApplicationFailure && isFatalGeminiFailure(cause.type));
}

/**
 * D_rob -> D_lan for a whole dataset: one child `relabelTrajectory` per trajectory with bounded
 * concurrency, continue-as-new every `childrenPerRun` children (or when Temporal suggests it), a
 * budget cap, an early stop on errors that no retry can fix or on an outage (the same cause failing
 * `stopAfterConsecutiveFailures` trajectories in a row), a warning while no worker polls the Gemini
 * queue, and a report in the store.
 */
export async function relabelDataset(rawInput: unknown, carry?: RelabelCarry): Promise<RelabelDatasetResult> {
  const input = parseWorkflowInput('relabelDataset', RelabelDatasetInput, rawInput);
  const outputUri = input.outputUri ?? defaultRelabelOutput(input.datasetUri, input.labeler);
  const key = labelerKey(input.labeler);
  const childId = patched(WORKFLOW_ID_FORMAT_PATCH) ? WorkflowIds.relabelTrajectory : LegacyWorkflowIds.relabelTrajectory;

  let cursor = carry?.cursor ?? 0;
  let counts: RelabelCounts = carry?.counts ?? { total: 0, done: 0, skipped: 0, quarantined: 0, failed: 0 };
  let usage = carry?.usage ?? ZERO_USAGE;
  const failed = [...(carry?.failed ?? [])];
  const runsSoFar = carry?.runsSoFar ?? 0;
  // One mutable object: children settle concurrently and the query reads it at any time.
  const run: { status: RelabelStatus; fatalError?: string; outage?: boolean } = { status: 'running' };
  const queues: QueueWatchState = { waitingOn: [] };
  let streak: FailureStreak | undefined = carry?.failureStreak;

  setHandler(relabelProgressQuery, () => ({
    status: run.status,
    counts,
    usage,
    cursor,
    runsSoFar,
    ...(run.fatalError !== undefined && { fatalError: run.fatalError }),
    ...(queues.waitingOn.length > 0 && { waitingOn: queues.waitingOn.join(',') }),
  }));

  const first = await activities.listTrajectoryPage({ datasetUri: input.datasetUri, offset: cursor, limit: input.childrenPerRun });
  const total = Math.min(first.total, input.limit ?? Number.POSITIVE_INFINITY);
  counts = { ...counts, total };
  upsertKeywords([
    { key: VlaDataset, value: first.datasetName },
    { key: VlaStage, value: 'relabel' },
  ]);

  // Runs recorded before the queue watch replay without it (no marker in their histories).
  let childrenSettled = false;
  const queueWatch =
    input.labeler.name === 'gemini' && patched('relabel-queue-watch')
      ? watchTaskQueue(
          { queue: input.geminiTaskQueue, role: 'activity' },
          { firstCheckAfterMs: input.noWorkerWarningSeconds * 1000, done: () => childrenSettled, state: queues },
        )
      : Promise.resolve();

  const running = new Set<Promise<void>>();
  let startedThisRun = 0;
  const runChild = async (trajectoryId: string): Promise<void> => {
    const childInput: RelabelTrajectoryInput = {
      datasetUri: input.datasetUri,
      trajectoryId,
      labeler: input.labeler,
      outputUri,
      maxReprompts: input.maxReprompts,
      aggregation: input.aggregation,
      geminiTaskQueue: input.geminiTaskQueue,
    };
    try {
      const result = await executeChild(relabelTrajectory, { workflowId: childId(outputUri, key, trajectoryId), args: [childInput] });
      usage = addUsage(usage, result.usage);
      counts = { ...counts, [result.status]: counts[result.status] + 1 };
      if (result.status !== 'skipped') streak = undefined;
    } catch (err) {
      if (err instanceof WorkflowExecutionAlreadyStartedError) {
        // Another run of this relabel owns the trajectory right now; it will write the record.
        counts = { ...counts, skipped: counts.skipped + 1 };
        return;
      }
      const fatal = fatalCause(err);
      if (fatal) {
        run.status = 'stopped_fatal';
        run.fatalError ??= fatal.message;
      }
      counts = { ...counts, failed: counts.failed + 1 };
      if (failed.length < MAX_FAILED_KEPT) {
        failed.push({ trajectoryId, reason: rootCause(err) });
      }
      const cause = rootCauseType(err);
      streak = streak?.cause === cause ? { cause, count: streak.count + 1 } : { cause, count: 1 };
      // An outage (endpoint down, store full, quota gone) fails every trajectory alike: stop starting
      // more. Runs recorded before the breaker replay without it (no marker in their histories).
      if (run.status === 'running' && streak.count >= input.stopAfterConsecutiveFailures && patched('relabel-outage-breaker')) {
        run.status = 'stopped_fatal';
        run.outage = true;
        run.fatalError = `${streak.count} trajectories in a row failed with ${cause} (last: ${rootCause(err)}); no new trajectory was started. Labelled trajectories are kept: fix the cause and re-run the same input, which resumes with the missing ones`;
      }
    }
  };

  // Runs started before this check existed replay without it (their histories have no marker).
  const precheck = patched('relabel-page-precheck');
  const pendingOf = async (ids: string[]): Promise<ReadonlySet<string> | undefined> =>
    precheck ? new Set(await activities.pendingTrajectories({ outputUri, ids: ids.slice(0, total - cursor) })) : undefined;

  let page = first.ids;
  let pageOffset = cursor;
  let pending = await pendingOf(page);
  while (run.status === 'running' && cursor < total) {
    if (cursor >= pageOffset + page.length) {
      pageOffset = cursor;
      page = (await activities.listTrajectoryPage({ datasetUri: input.datasetUri, offset: cursor, limit: input.childrenPerRun })).ids;
      if (page.length === 0) break;
      pending = await pendingOf(page);
    }
    const trajectoryId = page[cursor - pageOffset]!;
    if (pending && !pending.has(trajectoryId)) {
      // Labelled or quarantined by an earlier run: no child, no history.
      cursor++;
      counts = { ...counts, skipped: counts.skipped + 1 };
      continue;
    }
    if (overBudget(input, usage)) {
      run.status = 'budget_exhausted';
      break;
    }
    if (startedThisRun >= input.childrenPerRun || workflowInfo().continueAsNewSuggested) break;
    cursor++;
    startedThisRun++;
    const child: Promise<void> = runChild(trajectoryId).finally(() => running.delete(child));
    running.add(child);
    while (running.size >= input.maxConcurrent) await Promise.race(running);
  }
  // Children never cross a continue-as-new: drain them first.
  await Promise.all(running);
  childrenSettled = true;
  await queueWatch;
  if (run.status === 'running' && overBudget(input, usage) && cursor < total) run.status = 'budget_exhausted';

  if (run.status === 'running' && cursor < total) {
    const next: RelabelCarry = { cursor, counts, usage, runsSoFar: runsSoFar + 1, failed, ...(streak !== undefined && { failureStreak: streak }) };
    await continueAsNew<typeof relabelDataset>(input, next);
  }
  if (run.status === 'running') run.status = 'completed';
  const { status, fatalError } = run;

  const final = await finalizer.finalizeRelabel({
    datasetUri: input.datasetUri,
    outputUri,
    labeler: input.labeler,
    status,
    counts,
    usage,
    ...(fatalError !== undefined && { fatalError }),
    failed,
  });
  if (status === 'stopped_fatal') {
    throw ApplicationFailure.create({
      type: run.outage ? RelabelFailure.Outage : RelabelFailure.Stopped,
      nonRetryable: true,
      message: `relabelDataset stopped early: ${fatalError ?? 'a fatal labeler error'} (report: ${final.reportUri})`,
    });
  }
  return { status, outputUri, reportUri: final.reportUri, manifestUri: final.manifestUri, counts, usage, quarantined: final.quarantined };
}
