import {
  ApplicationFailure,
  CancellationScope,
  condition,
  defineQuery,
  defineSignal,
  isCancellation,
  metricMeter,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import { recordEpisodeStage } from '../../data-schemas/metrics';
import { TaskQueue, workflowQueue } from '../../data-schemas/activity-contract';
import {
  EPISODE_SIGNALS,
  EPISODE_STATUS_QUERY,
  EpisodeRecordActivities,
  RobotEpisodeInput,
  RobotLocalPresets,
  RobotPolicyActivities,
  RobotPresets,
  RobotVerifierActivities,
  StationActivities,
  type EpisodeStatus,
  type RobotEpisodeResult,
  type VerdictRecord,
  RobotFailure,
} from '../../data-schemas/robot';
import { proxyFor, proxyLocalFor } from '../activity-proxy';
import { rootCause, rootFailure } from '../failure-cause';
import { parseWorkflowInput } from '../input';
import {
  episodeStatusView,
  operatorVerdictWaiting,
  resumeWaitOver,
  startEpisode,
  stationWaitOver,
  transition,
  type EpisodeEvent,
  type EpisodeStep,
} from './episode-machine';
import { grantedSignal, pingSignal, releaseStation, requestStation } from './station-lock';

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

/**
 * One robot episode on one station (docs/robot-episodes.md): the subtask list once, then per cycle observe ->
 * motion plan -> action chunk -> execute -> verify -> proceed or retry, within the input's limits.
 * Signals pause / resume / abort / verdict steer it; the `status` query tells where it is. Every
 * frame, prompt, answer, verdict and latency is recorded (episode.json, and D_rob + D_lan datasets).
 *
 * Every decision (which stage next, retry or proceed, the limits, what a signal changes) is the
 * pure state machine in episode-machine.ts; this function is its shell: it runs the step the machine
 * asks for through the activity proxies, feeds the result back, and wires signals, query and
 * cancellation scopes.
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
  const stationQueue = TaskQueue.station(input.stationId);

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
  const station = proxyLocalFor(StationActivities, workflowQueue('station'), RobotLocalPresets.stationStage);
  const arm = proxyFor(StationActivities, workflowQueue('station'), RobotPresets.armChunk);
  // On the station's worker too: it writes to the same store.
  const records = proxyFor(EpisodeRecordActivities, workflowQueue('station'), RobotPresets.records);
  const remoteQueue =
    input.policy.kind === 'model' ? (input.policy.taskQueue ?? (input.policy.model.backend === 'gemini' ? TaskQueue.gemini : input.policy.model.backend === 'local' ? TaskQueue.gpu : undefined)) : undefined;
  // The scripted policy and OpenAI-compatible servers are called from the station; Gemini and local
  // models from their own workers.
  const policy =
    remoteQueue === undefined || remoteQueue === stationQueue
      ? proxyLocalFor(RobotPolicyActivities, workflowQueue('station'), RobotLocalPresets.stationStage)
      : proxyFor(RobotPolicyActivities, remoteQueue, RobotPresets.remotePolicy);
  const gemini = proxyFor(RobotVerifierActivities, input.verifier.kind === 'gemini' ? (input.verifier.taskQueue ?? TaskQueue.gemini) : TaskQueue.gemini, RobotPresets.geminiVerifier);

  // --- the machine (episode-machine.ts) decides; this shell runs its steps and wires signals, query and scopes
  let machine = startEpisode(input, { episodeId, workflowId: info.workflowId, runId: info.runId, startedAt });
  let cycleScope: CancellationScope | undefined;
  const feed = (event: EpisodeEvent): EpisodeStep => {
    const next = transition(machine, event);
    machine = next.state;
    for (const m of next.metrics) recordEpisodeStage(metricMeter, m.stage, m.ms);
    if (next.cancelCycle) cycleScope?.cancel();
    return next.step;
  };

  setHandler(grantedSignal, () => void feed({ type: 'station_granted', at: Date.now() }));
  setHandler(pingSignal, () => undefined);
  setHandler(pauseSignal, () => void feed({ type: 'pause', at: Date.now() }));
  setHandler(resumeSignal, () => void feed({ type: 'resume', at: Date.now() }));
  setHandler(abortSignal, (request) => void feed({ type: 'abort', at: Date.now(), request }));
  setHandler(verdictSignal, (verdict) => void feed({ type: 'verdict', at: Date.now(), verdict }));
  setHandler(episodeStatusQuery, () => episodeStatusView(machine, Date.now()));

  /** The verifier, raced against an operator's verdict for the cycle (which wins even while it runs). */
  const verify = async (step: Extract<EpisodeStep, { kind: 'verify' }>): Promise<EpisodeEvent> => {
    const verifier = step.verifier;
    if (verifier.kind === 'operator') {
      await condition(() => operatorVerdictWaiting(machine, step.cycle));
      return { type: 'operator_verdict_ready', at: Date.now() };
    }
    let auto: VerdictRecord | undefined;
    let failed: unknown;
    const scope = new CancellationScope();
    const running = scope
      .run(() => (verifier.kind === 'oracle' ? station.verifyOracle(step.input) : gemini.verifyGemini({ ...step.input, model: verifier.model })))
      .then(
        (r) => {
          auto = r;
        },
        (err: unknown) => {
          failed = err;
        },
      );
    await condition(() => auto !== undefined || failed !== undefined || operatorVerdictWaiting(machine, step.cycle));
    if (operatorVerdictWaiting(machine, step.cycle)) {
      scope.cancel();
      await running;
      return { type: 'operator_verdict_ready', at: Date.now() };
    }
    if (failed !== undefined) throw failed instanceof Error ? failed : new Error('the verifier failed');
    return { type: 'verified', at: Date.now(), verdict: auto as VerdictRecord };
  };

  /** Runs one step through its activity (or wait); a step that throws becomes a `step_failed` event. */
  const run = async (step: EpisodeStep): Promise<EpisodeEvent> => {
    try {
      switch (step.kind) {
        case 'reset':
          return { type: 'reset_done', observation: await station.stationReset(step.input), at: Date.now() };
        case 'policy':
          return { type: 'policy_answered', result: await policy.policyStage(step.input), at: Date.now() };
        case 'wait_for_resume':
          return { type: 'resume_wait_over', resumed: await condition(() => resumeWaitOver(machine), step.timeoutMs), at: Date.now() };
        case 'execute':
          return { type: 'executed', result: await arm.stationExecute(step.input), at: Date.now() };
        case 'observe':
        case 'observe_cut':
          return { type: 'observed', observation: await station.stationObserve(step.input), at: Date.now() };
        case 'verify':
          return await verify(step);
        case 'safe_stop':
          await station.stationSafeStop(step.input);
          return { type: 'safe_stopped', at: Date.now() };
        case 'evaluate':
          return { type: 'evaluated', evaluation: await station.stationEvaluate(step.input), at: Date.now() };
        case 'finalize':
          return { type: 'finalized', written: await records.finalizeEpisode(step.input), at: Date.now() };
        case 'release_arm':
          await station.stationRelease(step.input);
          return { type: 'arm_released', at: Date.now() };
        case 'wait_for_station':
        case 'done':
          throw new TypeError(`robotEpisode: the ${step.kind} step is not run as an activity`);
      }
    } catch (err) {
      if (step.region === 'finishing' && !step.bestEffort) throw err;
      return { type: 'step_failed', at: Date.now(), cancelled: isCancellation(err), failureType: rootFailure(err)?.type ?? null, cause: rootCause(err) };
    }
  };

  await requestStation(input.stationId);
  await condition(() => stationWaitOver(machine));
  try {
    let step = feed({ type: 'start', at: Date.now() });
    while (step.region === 'episode' || step.region === 'cycle') {
      if (step.region === 'episode') {
        step = feed(await run(step));
        continue;
      }
      // One cancellation scope per cycle: an abort cancels the stage in progress.
      const cycle = step.cycle;
      const first = step;
      cycleScope = new CancellationScope();
      step = await cycleScope.run(async () => {
        let s: EpisodeStep = first;
        while (s.region === 'cycle' && s.cycle === cycle) s = feed(await run(s));
        return s;
      });
      cycleScope = undefined;
    }
    const finished = step;
    const last = await CancellationScope.nonCancellable(async () => {
      let s: EpisodeStep = finished;
      while (s.region === 'finishing') s = feed(await run(s));
      return s;
    });
    if (last.kind !== 'done') throw new TypeError(`robotEpisode: finished on the ${last.kind} step`);
    return last.result;
  } finally {
    await CancellationScope.nonCancellable(() => releaseStation(input.stationId));
  }
}
