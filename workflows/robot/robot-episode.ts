import {
  ActivityCancellationType,
  ApplicationFailure,
  CancellationScope,
  condition,
  defineQuery,
  defineSignal,
  isCancellation,
  metricMeter,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import { recordEpisodeStage } from '../../data-schemas/metrics';
import type { EpisodeActivities } from '../../activities/robot/episode/episode-activities';
import type { PolicyStageInput, PolicyStageResult } from '../../activities/robot/episode/policy';
import type { StationActivities } from '../../activities/robot/episode/station-activities';
import type { VerifyInput } from '../../activities/robot/episode/verify';
import type { ActionChunk } from '../../data-schemas/d-lan';
import type { PolicyStage } from '../../data-schemas/prompts';
import {
  AbortRequest,
  EPISODE_SIGNALS,
  EPISODE_STATUS_QUERY,
  OperatorVerdict,
  RobotEpisodeInput,
  type CycleRecord,
  type EpisodeOutcome,
  type EpisodeRecord,
  type EpisodeStatus,
  type ObservationRef,
  type RobotEpisodeResult,
  type SimEvaluation,
  type StageLatency,
  type StageRecord,
  type VerdictRecord,
  RobotFailure,
} from '../../data-schemas/robot';
import { StationFailure } from '../../data-schemas/failures';
import { TaskQueue } from '../../data-schemas/workflows';
import { rootCause, rootFailure } from '../failure-cause';
import { parseWorkflowInput } from '../input';
import { grantedSignal, pingSignal, releaseStation, requestStation } from './station-lock';
import { describeZodIssues } from '../../data-schemas/issues';

export const pauseSignal = defineSignal<[]>(EPISODE_SIGNALS.pause);
export const resumeSignal = defineSignal<[]>(EPISODE_SIGNALS.resume);
/** Stops the arm after the action in progress and ends the episode. */
export const abortSignal = defineSignal<[unknown?]>(EPISODE_SIGNALS.abort);
/** An operator's verdict: overrides the verifier for the current (or given) cycle. */
export const verdictSignal = defineSignal<[unknown]>(EPISODE_SIGNALS.verdict);
export const episodeStatusQuery = defineQuery<EpisodeStatus>(EPISODE_STATUS_QUERY);

/** An episode id safe as a store key segment, from the workflow id. */
export function episodeIdOf(workflowId: string): string {
  const cleaned = workflowId.replace(/[^A-Za-z0-9._-]/g, '-').replace(/^[^A-Za-z0-9]+/, '');
  return (cleaned || 'episode').slice(0, 128);
}

const median = (xs: readonly number[]): number | null => {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};

class EpisodeEnd extends Error {
  constructor(
    readonly outcome: EpisodeOutcome,
    readonly reason: string,
  ) {
    super(reason);
  }
}

/**
 * One robot episode on one station (docs/robot-episodes.md): the subtask list once, then per cycle observe ->
 * motion plan -> action chunk -> execute -> verify -> proceed or retry, within the input's limits.
 * Signals pause / resume / abort / verdict steer it; the `status` query tells where it is. Every
 * frame, prompt, answer, verdict and latency is recorded (episode.json, and D_rob + D_lan datasets).
 *
 * A chunk carries the arm step it was planned at; the station refuses it once the arm has moved
 * since, so a retried activity or a restarted worker never runs a chunk twice: the episode then
 * observes again and plans from there.
 */
export async function robotEpisode(raw: unknown): Promise<RobotEpisodeResult> {
  const input = parseWorkflowInput('robotEpisode', RobotEpisodeInput, raw);
  const info = workflowInfo();
  const episodeId = episodeIdOf(info.workflowId);
  const startedAt = Date.now();
  const deadline = startedAt + input.limits.maxDurationSeconds * 1000;
  const stationQueue = TaskQueue.station(input.stationId);
  const ref = { episodeId, outputUri: input.outputUri };

  // Checked when the run starts (a replay runs on a replay worker's own queue).
  if (info.taskQueue !== stationQueue && !info.unsafe.isReplaying) {
    throw ApplicationFailure.nonRetryable(
      `robotEpisode runs on its station's task queue: start it on ${stationQueue} (it was started on ${info.taskQueue})`,
      RobotFailure.WrongTaskQueue,
    );
  }
  // The quick station stages run as local activities in the station's own worker: no server round
  // trip each (bench/episode). The chunk itself is a regular activity (eagerly dispatched to the
  // same worker) so that it heartbeats and an abort reaches it at once.
  const station = proxyLocalActivities<StationActivities>({
    startToCloseTimeout: '5 minutes',
    retry: { initialInterval: '1 second', maximumInterval: '10 seconds', maximumAttempts: 5 },
  });
  const arm = proxyActivities<StationActivities>({
    startToCloseTimeout: '10 minutes',
    scheduleToStartTimeout: '10 minutes',
    // A lost worker is noticed in seconds; the retry finds the arm moved and is refused.
    heartbeatTimeout: '10 seconds',
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    retry: { initialInterval: '1 second', maximumInterval: '10 seconds', maximumAttempts: 5 },
  });
  // On the station's worker too: it writes to the same store.
  const records = proxyActivities<EpisodeActivities>({ startToCloseTimeout: '10 minutes', retry: { maximumAttempts: 5 } });
  const remoteQueue =
    input.policy.kind === 'model' ? (input.policy.taskQueue ?? (input.policy.model.backend === 'gemini' ? TaskQueue.gemini : input.policy.model.backend === 'local' ? TaskQueue.gpu : undefined)) : undefined;
  // The scripted policy and OpenAI-compatible servers are called from the station; Gemini and local
  // models from their own workers.
  const policy =
    remoteQueue === undefined || remoteQueue === stationQueue
      ? station
      : proxyActivities<StationActivities>({
          taskQueue: remoteQueue,
          startToCloseTimeout: '10 minutes',
          scheduleToStartTimeout: '10 minutes',
          retry: { initialInterval: '2 seconds', maximumInterval: '1 minute', maximumAttempts: 8 },
        });
  const gemini = proxyActivities<EpisodeActivities>({
    taskQueue: input.verifier.kind === 'gemini' ? (input.verifier.taskQueue ?? TaskQueue.gemini) : TaskQueue.gemini,
    startToCloseTimeout: '5 minutes',
    scheduleToStartTimeout: '10 minutes',
    retry: { initialInterval: '2 seconds', maximumInterval: '1 minute', maximumAttempts: 8 },
  });

  // --- state, signals, query
  const status: EpisodeStatus = {
    phase: 'waiting_for_station',
    paused: false,
    stationId: input.stationId,
    subtasks: [],
    subtaskIndex: 0,
    currentSubtask: null,
    cycle: 0,
    retriesOnSubtask: 0,
    lastVerdict: null,
    timings: { elapsedMs: 0, lastCycleMs: null, medianCycleMs: null, lastStageMs: {} },
    outcome: null,
  };
  const cycleTimes: number[] = [];
  const operatorEvents: EpisodeRecord['operatorEvents'] = [];
  const note = (event: string, detail: string): void => {
    operatorEvents.push({ at: new Date().toISOString(), event, detail });
  };
  let granted = false;
  let abortReason: string | undefined;
  let pendingVerdict: OperatorVerdict | undefined;
  let cycleScope: CancellationScope | undefined;

  setHandler(grantedSignal, () => {
    granted = true;
  });
  setHandler(pingSignal, () => undefined);
  setHandler(pauseSignal, () => {
    status.paused = true;
    note('pause', 'the episode holds after the current chunk');
  });
  setHandler(resumeSignal, () => {
    status.paused = false;
    note('resume', '');
  });
  setHandler(abortSignal, (rawAbort) => {
    const parsed = AbortRequest.safeParse(rawAbort ?? {});
    abortReason ??= parsed.success ? parsed.data.reason : 'aborted by the operator';
    note('abort', abortReason);
    cycleScope?.cancel();
  });
  setHandler(verdictSignal, (rawVerdict) => {
    const parsed = OperatorVerdict.safeParse(rawVerdict);
    if (!parsed.success) {
      note('verdict_rejected', `not a verdict: ${describeZodIssues(parsed.error, { root: '(body)' })}`);
      return;
    }
    if (parsed.data.cycle !== undefined && parsed.data.cycle < status.cycle) {
      note('verdict_ignored', `cycle ${parsed.data.cycle} is over (now ${status.cycle})`);
      return;
    }
    pendingVerdict = parsed.data;
    note('verdict', `${parsed.data.decision}: ${parsed.data.reason}`);
  });
  setHandler(episodeStatusQuery, () => ({ ...status, timings: { ...status.timings, elapsedMs: Date.now() - startedAt } }));

  const takeOperatorVerdict = (cycle: number): VerdictRecord | undefined => {
    const v = pendingVerdict;
    if (!v || (v.cycle !== undefined && v.cycle !== cycle)) return undefined;
    pendingVerdict = undefined;
    return { decision: v.decision, reason: v.reason, by: 'operator', promptVersion: null, raw: null, latencyMs: 0 };
  };
  const timed = async <T>(stage: StageLatency['stage'], latencies: StageLatency[], fn: () => Promise<T>): Promise<T> => {
    const t0 = Date.now();
    try {
      return await fn();
    } finally {
      const ms = Date.now() - t0;
      latencies.push({ stage, ms });
      status.timings.lastStageMs[stage] = ms;
      recordEpisodeStage(metricMeter, stage, ms);
    }
  };

  // --- the episode
  let outcome: EpisodeOutcome = 'completed';
  let reason = 'every subtask verified done';
  let reset: ObservationRef | null = null;
  let subtasksStage: StageRecord | null = null;
  const cycles: CycleRecord[] = [];
  let evaluation: SimEvaluation | null = null;
  let formatFailures = 0;
  let repairs = 0;
  const countFormat = (r: StageRecord | null): void => {
    if (!r) return;
    const bad = r.attempts.filter((a) => a.error !== null).length;
    formatFailures += bad;
    repairs += r.attempts.length - 1;
  };
  const stage = (stageName: PolicyStage, extra: Partial<PolicyStageInput> & { frameUri: string; cycle: number }): Promise<PolicyStageResult> =>
    policy.policyStage({
      episodeId,
      stage: stageName,
      instruction: input.instruction,
      subtasks: status.subtasks,
      subtaskIndex: status.subtaskIndex,
      inDistribution: input.inDistribution,
      policy: input.policy,
      maxRepairs: input.limits.maxRepairs,
      ...extra,
    });

  const verify = async (v: VerifyInput, cycle: number): Promise<VerdictRecord> => {
    const given = takeOperatorVerdict(cycle);
    if (given) return given;
    if (input.verifier.kind === 'operator') {
      await condition(() => takeable(cycle));
      return takeOperatorVerdict(cycle) as VerdictRecord;
    }
    const verifier = input.verifier;
    let auto: VerdictRecord | undefined;
    let failed: unknown;
    const scope = new CancellationScope();
    const running = scope
      .run(() => (verifier.kind === 'oracle' ? station.verifyOracle(v) : gemini.verifyGemini({ ...v, model: verifier.model })))
      .then(
        (r) => {
          auto = r;
        },
        (err: unknown) => {
          failed = err;
        },
      );
    await condition(() => auto !== undefined || failed !== undefined || takeable(cycle));
    const override = takeOperatorVerdict(cycle);
    if (override) {
      scope.cancel();
      await running;
      return override;
    }
    if (failed !== undefined) throw failed instanceof Error ? failed : new Error('the verifier failed');
    return auto as VerdictRecord;
  };
  const takeable = (cycle: number): boolean => pendingVerdict !== undefined && (pendingVerdict.cycle === undefined || pendingVerdict.cycle === cycle);

  const checkLimits = (): void => {
    if (abortReason !== undefined) throw new EpisodeEnd('aborted', abortReason);
    if (status.cycle >= input.limits.maxCycles) throw new EpisodeEnd('cycle_limit', `${input.limits.maxCycles} cycles without finishing (subtask ${status.subtaskIndex + 1} of ${status.subtasks.length})`);
    if (Date.now() >= deadline) throw new EpisodeEnd('time_limit', `${input.limits.maxDurationSeconds} s without finishing`);
  };

  /** What the cycle in progress has done so far: recorded as it stands when an abort cuts it short. */
  let inFlight: (Pick<CycleRecord, 'cycle' | 'subtaskIndex' | 'subtask' | 'attempt' | 'before' | 'startedAt' | 'latencies'> & Partial<Pick<CycleRecord, 'motionPlan' | 'action' | 'chunk'>>) | undefined;

  /** One cycle; returns the cycle record and the observation to plan the next one from. */
  const runCycle = async (obs: ObservationRef): Promise<{ record: CycleRecord; next: ObservationRef }> => {
    const cycle = status.cycle;
    const latencies: StageLatency[] = [];
    const t0 = Date.now();
    const base = { cycle, subtaskIndex: status.subtaskIndex, subtask: status.currentSubtask ?? '', attempt: status.retriesOnSubtask, before: obs, startedAt: new Date(t0).toISOString() };
    inFlight = { ...base, latencies };
    const finish = (part: Partial<CycleRecord> & { verdict: VerdictRecord }, next: ObservationRef): { record: CycleRecord; next: ObservationRef } => {
      const ms = Date.now() - t0;
      latencies.push({ stage: 'cycle', ms });
      recordEpisodeStage(metricMeter, 'cycle', ms);
      return {
        record: { ...base, motionPlan: null, action: null, chunk: null, executed: 0, trace: [], after: null, executeError: null, interrupted: false, latencies, ...part },
        next,
      };
    };
    const episodeVerdict = (text: string): VerdictRecord => ({ decision: 'retry', reason: text, by: 'episode', promptVersion: null, raw: null, latencyMs: 0 });

    status.phase = 'motion_plan';
    const plan = await timed('motion_plan', latencies, () => stage('motion_plan', { frameUri: obs.frameUri, cycle }));
    if (plan.value === null || typeof plan.value !== 'string') {
      return finish({ motionPlan: plan.record, verdict: episodeVerdict(`no usable motion plan: ${plan.record.error ?? 'malformed'}`) }, obs);
    }
    inFlight.motionPlan = plan.record;
    status.phase = 'action';
    const act = await timed('action', latencies, () => stage('action', { frameUri: obs.frameUri, cycle, motionPlan: plan.value as string }));
    if (act.value === null || !Array.isArray(act.value) || !Array.isArray(act.value[0])) {
      return finish({ motionPlan: plan.record, action: act.record, verdict: episodeVerdict(`no usable action chunk: ${act.record.error ?? 'malformed'}`) }, obs);
    }
    const chunk = act.value as ActionChunk;
    inFlight.action = act.record;
    inFlight.chunk = chunk;
    status.phase = 'executing';
    let executed;
    try {
      executed = await timed('execute', latencies, () => arm.stationExecute({ ...ref, chunk, expectedStep: obs.step }));
    } catch (err) {
      if (isCancellation(err)) throw err;
      const type = rootFailure(err)?.type;
      if (type === StationFailure.UnsafeAction) {
        return finish({ motionPlan: plan.record, action: act.record, chunk, executeError: rootCause(err), verdict: episodeVerdict(`unsafe chunk refused before moving: ${rootCause(err)}`) }, obs);
      }
      if (type === StationFailure.StaleObservation || type === StationFailure.MayHaveMoved) {
        // The arm moved without us seeing the end of it (a lost answer, a restarted worker): look again.
        status.phase = 'observing';
        const fresh = await station.stationObserve(ref);
        return finish({ motionPlan: plan.record, action: act.record, chunk, executeError: rootCause(err), interrupted: true, after: fresh, verdict: episodeVerdict(`chunk outcome unknown, observed again: ${rootCause(err)}`) }, fresh);
      }
      throw new EpisodeEnd('error', `station ${input.stationId}: ${rootCause(err)}`);
    }
    status.phase = 'verifying';
    let verdict: VerdictRecord;
    try {
      verdict = await timed('verify', latencies, () =>
        verify({ episodeId, cycle, instruction: input.instruction, subtasks: status.subtasks, subtaskIndex: status.subtaskIndex, before: obs, after: executed.after }, cycle),
      );
    } catch (err) {
      if (isCancellation(err)) throw err;
      throw new EpisodeEnd('error', `verifier ${input.verifier.kind}: ${rootCause(err)}`);
    }
    return finish({ motionPlan: plan.record, action: act.record, chunk, executed: executed.executed, trace: executed.trace, after: executed.after, verdict }, executed.after);
  };

  await requestStation(input.stationId);
  await condition(() => granted || abortReason !== undefined);
  try {
    try {
      if (abortReason !== undefined) throw new EpisodeEnd('aborted', abortReason);
      status.phase = 'resetting';
      const resetStarted = Date.now();
      reset = await station.stationReset({ ...ref, instruction: input.instruction, ...(input.scene !== undefined && { scene: input.scene }), ...(input.seed !== undefined && { seed: input.seed }) });
      status.timings.lastStageMs.reset = Date.now() - resetStarted;
      status.phase = 'subtasks';
      const plan = await stage('subtasks', { frameUri: reset.frameUri, cycle: 0 });
      subtasksStage = plan.record;
      countFormat(plan.record);
      if (plan.value === null || !Array.isArray(plan.value) || plan.value.some((s) => typeof s !== 'string')) {
        throw new EpisodeEnd('policy_format', `the subtask list is still malformed after ${input.limits.maxRepairs} repair(s): ${plan.record.error ?? ''}`);
      }
      status.subtasks = plan.value as string[];
      status.currentSubtask = status.subtasks[0] ?? null;

      let obs = reset;
      while (status.subtaskIndex < status.subtasks.length) {
        checkLimits();
        if (status.paused) {
          status.phase = 'paused';
          const resumed = await condition(() => !status.paused || abortReason !== undefined, Math.max(1, deadline - Date.now()));
          if (!resumed) throw new EpisodeEnd('time_limit', `${input.limits.maxDurationSeconds} s without finishing (paused)`);
          checkLimits();
        }
        cycleScope = new CancellationScope();
        const { record, next } = await cycleScope.run(() => runCycle(obs));
        cycleScope = undefined;
        inFlight = undefined;
        cycles.push(record);
        countFormat(record.motionPlan);
        countFormat(record.action);
        cycleTimes.push(record.latencies.find((l) => l.stage === 'cycle')?.ms ?? 0);
        status.timings.lastCycleMs = cycleTimes[cycleTimes.length - 1] ?? null;
        status.timings.medianCycleMs = median(cycleTimes);
        status.lastVerdict = record.verdict;
        status.cycle++;
        obs = next;
        if (record.verdict.decision === 'proceed') {
          status.subtaskIndex++;
          status.retriesOnSubtask = 0;
          status.currentSubtask = status.subtasks[status.subtaskIndex] ?? null;
        } else if (!record.interrupted) {
          status.retriesOnSubtask++;
          if (status.retriesOnSubtask > input.limits.maxRetriesPerSubtask) {
            throw new EpisodeEnd('retries_exhausted', `subtask ${status.subtaskIndex + 1} "${status.currentSubtask ?? ''}" failed ${status.retriesOnSubtask} times: ${record.verdict.reason}`);
          }
        }
      }
    } catch (err) {
      cycleScope = undefined;
      if (err instanceof EpisodeEnd) {
        outcome = err.outcome;
        reason = err.reason;
      } else if (isCancellation(err) && abortReason !== undefined) {
        outcome = 'aborted';
        reason = abortReason;
      } else {
        outcome = 'error';
        reason = rootCause(err);
      }
    }
    status.phase = 'finishing';
    status.outcome = outcome;
    const result = await CancellationScope.nonCancellable(async () => {
      if (outcome === 'aborted' && reset !== null) {
        await station.stationSafeStop({ reason }).catch(() => undefined);
        const cut = inFlight;
        if (cut) {
          // The chunk the abort stopped: what it moved is read off the arm.
          const after = await station.stationObserve(ref).catch(() => null);
          cycles.push({
            motionPlan: null,
            action: null,
            chunk: null,
            ...cut,
            executed: after && cut.chunk ? Math.min(cut.chunk.length, Math.max(0, after.step - cut.before.step)) : 0,
            trace: [],
            after,
            executeError: `aborted: ${reason}`,
            interrupted: true,
            verdict: { decision: 'retry', reason: `aborted: ${reason}`, by: 'operator', promptVersion: null, raw: null, latencyMs: 0 },
          });
        }
      }
      if (reset !== null) evaluation = await station.stationEvaluate({ episodeId }).catch(() => null);
      const record: EpisodeRecord = {
        formatVersion: 1,
        episodeId,
        workflowId: info.workflowId,
        runId: info.runId,
        stationId: input.stationId,
        input,
        startedAt: new Date(startedAt).toISOString(),
        finishedAt: new Date().toISOString(),
        outcome,
        reason,
        subtasks: status.subtasks,
        subtasksStage,
        reset,
        cycles,
        evaluation,
        operatorEvents,
      };
      const written = await records.finalizeEpisode({ record });
      if (reset !== null) await station.stationRelease({ episodeId }).catch(() => undefined);
      return written;
    });
    status.phase = 'done';
    return {
      episodeId,
      outcome,
      reason,
      success: evaluation === null ? null : (evaluation as SimEvaluation).success,
      evaluation,
      cycles: cycles.length,
      subtasks: status.subtasks,
      subtasksCompleted: status.subtaskIndex,
      formatFailures,
      repairs,
      ...result,
    };
  } finally {
    await CancellationScope.nonCancellable(() => releaseStation(input.stationId));
  }
}
