// Pure on purpose: no @temporalio imports, no I/O, no clock. The robotEpisode workflow (robot-episode.ts)
// runs the steps this machine asks for and feeds their results back; unit tests drive it directly.
import type { ActionChunk } from '../../data-schemas/d-lan';
import { StationFailure } from '../../data-schemas/failures';
import { describeZodIssues } from '../../data-schemas/issues';
import type { PolicyStage } from '../../data-schemas/prompts';
import {
  AbortRequest,
  OperatorVerdict,
  type CycleRecord,
  type EpisodeOutcome,
  type EpisodeRecord,
  type EpisodeRef,
  type ExecuteChunkInput,
  type ExecuteChunkResult,
  type FinalizedEpisode,
  type PolicyStageInput,
  type PolicyStageResult,
  type ResetStationInput,
  type VerifyInput,
  type EpisodeStatus,
  type ObservationRef,
  type RobotEpisodeInput,
  type RobotEpisodeResult,
  type SimEvaluation,
  type StageLatency,
  type StageRecord,
  type VerdictRecord,
} from '../../data-schemas/robot';

/** Who the episode is: fixed when the workflow starts. */
export interface EpisodeIdentity {
  episodeId: string;
  workflowId: string;
  runId: string;
  /** The workflow clock (ms) when the episode started. */
  startedAt: number;
}

/** What the cycle in progress has done so far: recorded as it stands when an abort cuts it short. */
export type InFlightCycle = Pick<CycleRecord, 'cycle' | 'subtaskIndex' | 'subtask' | 'attempt' | 'before' | 'startedAt' | 'latencies'> &
  Partial<Pick<CycleRecord, 'motionPlan' | 'action' | 'chunk'>>;

type CycleStep = { region: 'cycle'; cycle: number };
type FinishingStep = { region: 'finishing'; /** A failure is ignored (false: it fails the workflow). */ bestEffort: boolean };

/**
 * The next thing the workflow does. `region` tells it where to run it: `station` before the arm is
 * granted, `episode` outside any cycle, `cycle` inside the cancellation scope of cycle `cycle` (an
 * abort cancels it), `finishing` shielded from cancellation, `done` nothing more.
 */
export type EpisodeStep =
  | { kind: 'wait_for_station'; region: 'station' }
  | { kind: 'reset'; region: 'episode'; input: ResetStationInput }
  | { kind: 'policy'; region: 'episode'; input: PolicyStageInput }
  | { kind: 'wait_for_resume'; region: 'episode'; timeoutMs: number }
  | ({ kind: 'policy'; input: PolicyStageInput } & CycleStep)
  | ({ kind: 'execute'; input: ExecuteChunkInput } & CycleStep)
  /** After a chunk whose outcome is unknown (`why`): look at the arm again. */
  | ({ kind: 'observe'; input: EpisodeRef; why: string } & CycleStep)
  /** The automatic verifier, raced against an operator's verdict; for an operator verifier, the wait for that verdict. */
  | ({ kind: 'verify'; input: VerifyInput; verifier: RobotEpisodeInput['verifier'] } & CycleStep)
  | ({ kind: 'safe_stop'; input: { reason: string } } & FinishingStep)
  | ({ kind: 'observe_cut'; input: EpisodeRef } & FinishingStep)
  | ({ kind: 'evaluate'; input: { episodeId: string } } & FinishingStep)
  | ({ kind: 'finalize'; input: { record: EpisodeRecord } } & FinishingStep)
  | ({ kind: 'release_arm'; input: { episodeId: string } } & FinishingStep)
  | { kind: 'done'; region: 'done'; result: RobotEpisodeResult };

/** Every event carries `at`, the workflow clock (ms) when it happened: latencies and limits are read off it. */
export type EpisodeEvent =
  // signals (and the station lock's grant)
  | { type: 'station_granted'; at: number }
  | { type: 'pause'; at: number }
  | { type: 'resume'; at: number }
  | { type: 'abort'; at: number; request: unknown }
  | { type: 'verdict'; at: number; verdict: unknown }
  // results of the step asked for
  | { type: 'start'; at: number }
  | { type: 'reset_done'; at: number; observation: ObservationRef }
  | { type: 'policy_answered'; at: number; result: PolicyStageResult }
  | { type: 'resume_wait_over'; at: number; resumed: boolean }
  | { type: 'executed'; at: number; result: ExecuteChunkResult }
  | { type: 'observed'; at: number; observation: ObservationRef }
  | { type: 'verified'; at: number; verdict: VerdictRecord }
  /** An operator's verdict for this cycle is waiting (the verifier, if any, was cancelled): take it. */
  | { type: 'operator_verdict_ready'; at: number }
  | { type: 'safe_stopped'; at: number }
  | { type: 'evaluated'; at: number; evaluation: SimEvaluation | null }
  | { type: 'finalized'; at: number; written: FinalizedEpisode }
  | { type: 'arm_released'; at: number }
  /** The step threw: `cancelled` when it was a cancellation; `failureType` and `cause` from its innermost failure. */
  | { type: 'step_failed'; at: number; cancelled: boolean; failureType: string | null; cause: string };

export interface EpisodeState {
  readonly input: RobotEpisodeInput;
  readonly id: EpisodeIdentity;
  readonly deadline: number;
  readonly status: EpisodeStatus;
  readonly granted: boolean;
  readonly abortReason: string | null;
  readonly pendingVerdict: OperatorVerdict | null;
  readonly operatorEvents: EpisodeRecord['operatorEvents'];
  readonly cycleTimes: readonly number[];
  readonly reset: ObservationRef | null;
  readonly subtasksStage: StageRecord | null;
  /** The observation the next cycle plans from. */
  readonly observation: ObservationRef | null;
  readonly cycles: readonly CycleRecord[];
  readonly inFlight: InFlightCycle | null;
  /** The executed chunk of the cycle in progress, until it is verified. */
  readonly executed: ExecuteChunkResult | null;
  readonly cycleStartedAt: number;
  readonly formatFailures: number;
  readonly repairs: number;
  readonly end: { outcome: EpisodeOutcome; reason: string } | null;
  readonly evaluation: SimEvaluation | null;
  /** What finalizeEpisode wrote. */
  readonly written: FinalizedEpisode | null;
  /** The step the workflow is running, and since when. */
  readonly step: EpisodeStep;
  readonly stepStartedAt: number;
}

export interface EpisodeTransition {
  state: EpisodeState;
  /** What to run next: for a signal, the step already running. */
  step: EpisodeStep;
  /** An abort: cancel the cycle in progress (the arm stops after the action in progress). */
  cancelCycle: boolean;
  /** Stage latencies to report to the metrics meter. */
  metrics: StageLatency[];
}

const median = (xs: readonly number[]): number | null => {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};

const ref = (s: EpisodeState): EpisodeRef => ({ episodeId: s.id.episodeId, outputUri: s.input.outputUri });

/** The episode before the station is granted. */
export function startEpisode(input: RobotEpisodeInput, id: EpisodeIdentity): EpisodeState {
  return {
    input,
    id,
    deadline: id.startedAt + input.limits.maxDurationSeconds * 1000,
    status: {
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
    },
    granted: false,
    abortReason: null,
    pendingVerdict: null,
    operatorEvents: [],
    cycleTimes: [],
    reset: null,
    subtasksStage: null,
    observation: null,
    cycles: [],
    inFlight: null,
    executed: null,
    cycleStartedAt: id.startedAt,
    formatFailures: 0,
    repairs: 0,
    end: null,
    evaluation: null,
    written: null,
    step: { kind: 'wait_for_station', region: 'station' },
    stepStartedAt: id.startedAt,
  };
}

/** What the `status` query shows at `now`. */
export function episodeStatusView(s: EpisodeState, now: number): EpisodeStatus {
  return { ...s.status, timings: { ...s.status.timings, elapsedMs: now - s.id.startedAt } };
}

/** The wait for the station is over: granted, or aborted while queued. */
export const stationWaitOver = (s: EpisodeState): boolean => s.granted || s.abortReason !== null;

/** A pause is over: resumed, or aborted. */
export const resumeWaitOver = (s: EpisodeState): boolean => !s.status.paused || s.abortReason !== null;

/** An operator's verdict waits for `cycle` (one given without a cycle applies to the current one). */
export const operatorVerdictWaiting = (s: EpisodeState, cycle: number): boolean =>
  s.pendingVerdict !== null && (s.pendingVerdict.cycle === undefined || s.pendingVerdict.cycle === cycle);

// --- helpers that build the next state

type Draft = { -readonly [K in keyof EpisodeState]: EpisodeState[K] };

interface Out {
  s: Draft;
  metrics: StageLatency[];
}

const note = (o: Out, at: number, event: string, detail: string): void => {
  o.s.operatorEvents = [...o.s.operatorEvents, { at: new Date(at).toISOString(), event, detail }];
};
const setStatus = (o: Out, patch: Partial<EpisodeStatus>): void => {
  o.s.status = { ...o.s.status, ...patch };
};
const setStageMs = (o: Out, stage: string, ms: number): void => {
  o.s.status = { ...o.s.status, timings: { ...o.s.status.timings, lastStageMs: { ...o.s.status.timings.lastStageMs, [stage]: ms } } };
};
const go = (o: Out, step: EpisodeStep, at: number): void => {
  o.s.step = step;
  o.s.stepStartedAt = at;
};

/** A timed stage of the cycle in progress ended (answered or not): its latency is recorded either way. */
const stageTook = (o: Out, stage: StageLatency['stage'], at: number): void => {
  const ms = at - o.s.stepStartedAt;
  if (o.s.inFlight) o.s.inFlight = { ...o.s.inFlight, latencies: [...o.s.inFlight.latencies, { stage, ms }] };
  setStageMs(o, stage, ms);
  o.metrics.push({ stage, ms });
};

const countFormat = (o: Out, r: StageRecord | null | undefined): void => {
  if (!r) return;
  o.s.formatFailures += r.attempts.filter((a) => a.error !== null).length;
  o.s.repairs += r.attempts.length - 1;
};

const policyInput = (s: EpisodeState, stage: PolicyStage, extra: { frameUri: string; cycle: number; motionPlan?: string }): PolicyStageInput => ({
  episodeId: s.id.episodeId,
  stage,
  instruction: s.input.instruction,
  subtasks: s.status.subtasks,
  subtaskIndex: s.status.subtaskIndex,
  inDistribution: s.input.inDistribution,
  policy: s.input.policy,
  maxRepairs: s.input.limits.maxRepairs,
  ...extra,
});

/** The episode ends: the finishing steps follow (safe stop after an abort, evaluation, the record, the arm's release). */
function endEpisode(o: Out, outcome: EpisodeOutcome, reason: string, at: number): void {
  o.s.end = { outcome, reason };
  setStatus(o, { phase: 'finishing', outcome });
  if (outcome === 'aborted' && o.s.reset !== null) {
    go(o, { kind: 'safe_stop', region: 'finishing', bestEffort: true, input: { reason } }, at);
    return;
  }
  afterSafeStop(o, at);
}

function afterSafeStop(o: Out, at: number): void {
  if (o.s.end?.outcome === 'aborted' && o.s.reset !== null && o.s.inFlight) {
    go(o, { kind: 'observe_cut', region: 'finishing', bestEffort: true, input: ref(o.s) }, at);
    return;
  }
  afterCut(o, at);
}

/** The chunk an abort stopped: recorded with what it moved, read off the arm (`after`, null when unread). */
function recordCut(o: Out, after: ObservationRef | null): void {
  const cut = o.s.inFlight;
  const reason = o.s.end?.reason ?? '';
  if (!cut) return;
  o.s.cycles = [
    ...o.s.cycles,
    {
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
    },
  ];
}

function afterCut(o: Out, at: number): void {
  if (o.s.reset !== null) {
    go(o, { kind: 'evaluate', region: 'finishing', bestEffort: true, input: { episodeId: o.s.id.episodeId } }, at);
    return;
  }
  finalize(o, at);
}

function finalize(o: Out, at: number): void {
  const s = o.s;
  const end = s.end ?? { outcome: 'error', reason: 'the episode ended without an outcome' };
  const record: EpisodeRecord = {
    formatVersion: 1,
    episodeId: s.id.episodeId,
    workflowId: s.id.workflowId,
    runId: s.id.runId,
    stationId: s.input.stationId,
    input: s.input,
    startedAt: new Date(s.id.startedAt).toISOString(),
    finishedAt: new Date(at).toISOString(),
    outcome: end.outcome,
    reason: end.reason,
    subtasks: s.status.subtasks,
    subtasksStage: s.subtasksStage,
    reset: s.reset,
    cycles: [...s.cycles],
    evaluation: s.evaluation,
    operatorEvents: [...s.operatorEvents],
  };
  go(o, { kind: 'finalize', region: 'finishing', bestEffort: false, input: { record } }, at);
}

function done(o: Out, written: FinalizedEpisode, at: number): void {
  const s = o.s;
  const end = s.end ?? { outcome: 'error', reason: 'the episode ended without an outcome' };
  setStatus(o, { phase: 'done' });
  go(
    o,
    {
      kind: 'done',
      region: 'done',
      result: {
        episodeId: s.id.episodeId,
        outcome: end.outcome,
        reason: end.reason,
        success: s.evaluation === null ? null : s.evaluation.success,
        evaluation: s.evaluation,
        cycles: s.cycles.length,
        subtasks: s.status.subtasks,
        subtasksCompleted: s.status.subtaskIndex,
        formatFailures: s.formatFailures,
        repairs: s.repairs,
        ...written,
      },
    },
    at,
  );
}

/** Ends the episode when a limit is reached; true when it did. Checked before every cycle. */
function limitReached(o: Out, at: number): boolean {
  const { s } = o;
  const limits = s.input.limits;
  if (s.abortReason !== null) endEpisode(o, 'aborted', s.abortReason, at);
  else if (s.status.cycle >= limits.maxCycles)
    endEpisode(o, 'cycle_limit', `${limits.maxCycles} cycles without finishing (subtask ${s.status.subtaskIndex + 1} of ${s.status.subtasks.length})`, at);
  else if (at >= s.deadline) endEpisode(o, 'time_limit', `${limits.maxDurationSeconds} s without finishing`, at);
  else return false;
  return true;
}

/** Between cycles: done when every subtask is verified, else the limits, a pause, then the next cycle. */
function nextCycle(o: Out, at: number): void {
  const { s } = o;
  if (s.status.subtaskIndex >= s.status.subtasks.length) return endEpisode(o, 'completed', 'every subtask verified done', at);
  if (limitReached(o, at)) return;
  if (s.status.paused) {
    setStatus(o, { phase: 'paused' });
    return go(o, { kind: 'wait_for_resume', region: 'episode', timeoutMs: Math.max(1, s.deadline - at) }, at);
  }
  beginCycle(o, at);
}

function beginCycle(o: Out, at: number): void {
  const { s } = o;
  const obs = s.observation as ObservationRef;
  const cycle = s.status.cycle;
  o.s.cycleStartedAt = at;
  o.s.executed = null;
  o.s.inFlight = {
    cycle,
    subtaskIndex: s.status.subtaskIndex,
    subtask: s.status.currentSubtask ?? '',
    attempt: s.status.retriesOnSubtask,
    before: obs,
    startedAt: new Date(at).toISOString(),
    latencies: [],
  };
  setStatus(o, { phase: 'motion_plan' });
  go(o, { kind: 'policy', region: 'cycle', cycle, input: policyInput(s, 'motion_plan', { frameUri: obs.frameUri, cycle }) }, at);
}

/** A verdict the episode gives itself when the cycle never reached the verifier. */
const episodeVerdict = (text: string): VerdictRecord => ({ decision: 'retry', reason: text, by: 'episode', promptVersion: null, raw: null, latencyMs: 0 });

/** The cycle in progress ends with `part` (its verdict at least); the next one plans from `next`. */
function finishCycle(o: Out, part: Partial<CycleRecord> & { verdict: VerdictRecord }, next: ObservationRef, at: number): void {
  const cut = o.s.inFlight as InFlightCycle;
  const ms = at - o.s.cycleStartedAt;
  const latencies = [...cut.latencies, { stage: 'cycle' as const, ms }];
  o.metrics.push({ stage: 'cycle', ms });
  const base = { cycle: cut.cycle, subtaskIndex: cut.subtaskIndex, subtask: cut.subtask, attempt: cut.attempt, before: cut.before, startedAt: cut.startedAt };
  const record: CycleRecord = { ...base, motionPlan: null, action: null, chunk: null, executed: 0, trace: [], after: null, executeError: null, interrupted: false, latencies, ...part };
  o.s.inFlight = null;
  o.s.executed = null;
  o.s.cycles = [...o.s.cycles, record];
  countFormat(o, record.motionPlan);
  countFormat(o, record.action);
  o.s.cycleTimes = [...o.s.cycleTimes, ms];
  const st = o.s.status;
  o.s.status = {
    ...st,
    timings: { ...st.timings, lastCycleMs: ms, medianCycleMs: median(o.s.cycleTimes) },
    lastVerdict: record.verdict,
    cycle: st.cycle + 1,
  };
  o.s.observation = next;
  if (record.verdict.decision === 'proceed') {
    const subtaskIndex = o.s.status.subtaskIndex + 1;
    setStatus(o, { subtaskIndex, retriesOnSubtask: 0, currentSubtask: o.s.status.subtasks[subtaskIndex] ?? null });
  } else if (!record.interrupted) {
    const retries = o.s.status.retriesOnSubtask + 1;
    setStatus(o, { retriesOnSubtask: retries });
    if (retries > o.s.input.limits.maxRetriesPerSubtask) {
      return endEpisode(o, 'retries_exhausted', `subtask ${o.s.status.subtaskIndex + 1} "${o.s.status.currentSubtask ?? ''}" failed ${retries} times: ${record.verdict.reason}`, at);
    }
  }
  nextCycle(o, at);
}

/** Takes the operator's verdict waiting for the cycle in progress (the caller checked there is one). */
function takeOperatorVerdict(o: Out): VerdictRecord {
  const v = o.s.pendingVerdict as OperatorVerdict;
  o.s.pendingVerdict = null;
  return { decision: v.decision, reason: v.reason, by: 'operator', promptVersion: null, raw: null, latencyMs: 0 };
}

function verified(o: Out, verdict: VerdictRecord, at: number): void {
  const cut = o.s.inFlight as InFlightCycle;
  const executed = o.s.executed as ExecuteChunkResult;
  finishCycle(o, { motionPlan: cut.motionPlan, action: cut.action, chunk: cut.chunk, executed: executed.executed, trace: executed.trace, after: executed.after, verdict }, executed.after, at);
}

// --- signals

function onSignal(o: Out, event: Extract<EpisodeEvent, { type: 'station_granted' | 'pause' | 'resume' | 'abort' | 'verdict' }>): boolean {
  const { s } = o;
  switch (event.type) {
    case 'station_granted':
      o.s.granted = true;
      return false;
    case 'pause':
      setStatus(o, { paused: true });
      note(o, event.at, 'pause', 'the episode holds after the current chunk');
      return false;
    case 'resume':
      setStatus(o, { paused: false });
      note(o, event.at, 'resume', '');
      return false;
    case 'abort': {
      const parsed = AbortRequest.safeParse(event.request ?? {});
      const reason = s.abortReason ?? (parsed.success ? parsed.data.reason : 'aborted by the operator');
      o.s.abortReason = reason;
      note(o, event.at, 'abort', reason);
      return true;
    }
    case 'verdict': {
      const parsed = OperatorVerdict.safeParse(event.verdict);
      if (!parsed.success) {
        note(o, event.at, 'verdict_rejected', `not a verdict: ${describeZodIssues(parsed.error, { root: '(body)' })}`);
        return false;
      }
      if (parsed.data.cycle !== undefined && parsed.data.cycle < s.status.cycle) {
        note(o, event.at, 'verdict_ignored', `cycle ${parsed.data.cycle} is over (now ${s.status.cycle})`);
        return false;
      }
      o.s.pendingVerdict = parsed.data;
      note(o, event.at, 'verdict', `${parsed.data.decision}: ${parsed.data.reason}`);
      return false;
    }
  }
}

// --- a step failed

function onStepFailed(o: Out, event: Extract<EpisodeEvent, { type: 'step_failed' }>): void {
  const { s } = o;
  const step = s.step;
  const at = event.at;
  if (step.region === 'cycle' && (step.kind === 'execute' || step.kind === 'verify' || (step.kind === 'policy' && step.input.stage !== 'subtasks'))) {
    stageTook(o, step.kind === 'policy' ? step.input.stage : step.kind, at);
  }
  if (step.region === 'finishing') {
    // Best effort: the episode finishes without it.
    if (step.kind === 'safe_stop') return afterSafeStop(o, at);
    if (step.kind === 'observe_cut') {
      recordCut(o, null);
      return afterCut(o, at);
    }
    if (step.kind === 'evaluate') return finalize(o, at);
    if (step.kind === 'release_arm' && s.written !== null) return done(o, s.written, at);
    throw new Error(`robotEpisode: the ${step.kind} step is not best effort: its failure ends the workflow`);
  }
  if (event.cancelled && s.abortReason !== null) return endEpisode(o, 'aborted', s.abortReason, at);
  if (!event.cancelled && step.kind === 'execute') {
    const cut = o.s.inFlight as InFlightCycle;
    const obs = cut.before;
    if (event.failureType === StationFailure.UnsafeAction) {
      return finishCycle(o, { motionPlan: cut.motionPlan, action: cut.action, chunk: cut.chunk, executeError: event.cause, verdict: episodeVerdict(`unsafe chunk refused before moving: ${event.cause}`) }, obs, at);
    }
    if (event.failureType === StationFailure.StaleObservation || event.failureType === StationFailure.MayHaveMoved) {
      // The arm moved without us seeing the end of it (a lost answer, a restarted worker): look again.
      setStatus(o, { phase: 'observing' });
      return go(o, { kind: 'observe', region: 'cycle', cycle: step.cycle, input: ref(s), why: event.cause }, at);
    }
    return endEpisode(o, 'error', `station ${s.input.stationId}: ${event.cause}`, at);
  }
  if (!event.cancelled && step.kind === 'verify') return endEpisode(o, 'error', `verifier ${s.input.verifier.kind}: ${event.cause}`, at);
  endEpisode(o, 'error', event.cause, at);
}

// --- the transition function

const isSignal = (e: EpisodeEvent): e is Extract<EpisodeEvent, { type: 'station_granted' | 'pause' | 'resume' | 'abort' | 'verdict' }> =>
  e.type === 'station_granted' || e.type === 'pause' || e.type === 'resume' || e.type === 'abort' || e.type === 'verdict';

const malformedChunk = (value: PolicyStageResult['value']): boolean => value === null || !Array.isArray(value) || !Array.isArray(value[0]);

/**
 * The episode's one decision function: the state after `event`, and the step to run next. Signals
 * change the state only (an abort also asks to cancel the cycle in progress); every other event is
 * the result of the step the state says is running, and any other pairing is a bug in the caller.
 */
export function transition(state: EpisodeState, event: EpisodeEvent): EpisodeTransition {
  const o: Out = { s: { ...state }, metrics: [] };
  if (isSignal(event)) {
    const cancelCycle = onSignal(o, event);
    return { state: o.s, step: o.s.step, cancelCycle, metrics: o.metrics };
  }
  const { s } = o;
  const step = s.step;
  const at = event.at;
  const unexpected = (): never => {
    throw new TypeError(`robotEpisode: event ${event.type} does not answer the ${step.kind} step`);
  };
  switch (event.type) {
    case 'start':
      if (step.kind !== 'wait_for_station') return unexpected();
      if (s.abortReason !== null) {
        endEpisode(o, 'aborted', s.abortReason, at);
        break;
      }
      setStatus(o, { phase: 'resetting' });
      go(o, { kind: 'reset', region: 'episode', input: { ...ref(s), instruction: s.input.instruction, ...(s.input.scene !== undefined && { scene: s.input.scene }), ...(s.input.seed !== undefined && { seed: s.input.seed }) } }, at);
      break;
    case 'reset_done':
      if (step.kind !== 'reset') return unexpected();
      setStageMs(o, 'reset', at - s.stepStartedAt);
      o.s.reset = event.observation;
      o.s.observation = event.observation;
      setStatus(o, { phase: 'subtasks' });
      go(o, { kind: 'policy', region: 'episode', input: policyInput(o.s, 'subtasks', { frameUri: event.observation.frameUri, cycle: 0 }) }, at);
      break;
    case 'policy_answered': {
      if (step.kind !== 'policy') return unexpected();
      const { record, value } = event.result;
      if (step.region === 'episode') {
        o.s.subtasksStage = record;
        countFormat(o, record);
        if (value === null || !Array.isArray(value) || value.some((x) => typeof x !== 'string')) {
          endEpisode(o, 'policy_format', `the subtask list is still malformed after ${s.input.limits.maxRepairs} repair(s): ${record.error ?? ''}`, at);
          break;
        }
        const subtasks = value as string[];
        setStatus(o, { subtasks, currentSubtask: subtasks[0] ?? null });
        nextCycle(o, at);
        break;
      }
      const cut = s.inFlight as InFlightCycle;
      if (step.input.stage === 'motion_plan') {
        stageTook(o, 'motion_plan', at);
        if (value === null || typeof value !== 'string') {
          finishCycle(o, { motionPlan: record, verdict: episodeVerdict(`no usable motion plan: ${record.error ?? 'malformed'}`) }, cut.before, at);
          break;
        }
        o.s.inFlight = { ...(o.s.inFlight as InFlightCycle), motionPlan: record };
        setStatus(o, { phase: 'action' });
        go(o, { kind: 'policy', region: 'cycle', cycle: step.cycle, input: policyInput(o.s, 'action', { frameUri: cut.before.frameUri, cycle: step.cycle, motionPlan: value }) }, at);
        break;
      }
      stageTook(o, 'action', at);
      if (malformedChunk(value)) {
        finishCycle(o, { motionPlan: cut.motionPlan, action: record, verdict: episodeVerdict(`no usable action chunk: ${record.error ?? 'malformed'}`) }, cut.before, at);
        break;
      }
      const chunk = value as ActionChunk;
      o.s.inFlight = { ...(o.s.inFlight as InFlightCycle), action: record, chunk };
      setStatus(o, { phase: 'executing' });
      go(o, { kind: 'execute', region: 'cycle', cycle: step.cycle, input: { ...ref(s), chunk, expectedStep: cut.before.step } }, at);
      break;
    }
    case 'executed': {
      if (step.kind !== 'execute') return unexpected();
      stageTook(o, 'execute', at);
      o.s.executed = event.result;
      setStatus(o, { phase: 'verifying' });
      const cut = o.s.inFlight as InFlightCycle;
      const verify: EpisodeStep = {
        kind: 'verify',
        region: 'cycle',
        cycle: step.cycle,
        input: { episodeId: s.id.episodeId, cycle: step.cycle, instruction: s.input.instruction, subtasks: s.status.subtasks, subtaskIndex: s.status.subtaskIndex, before: cut.before, after: event.result.after },
        verifier: s.input.verifier,
      };
      go(o, verify, at);
      // A verdict the operator already gave for this cycle wins without asking the verifier.
      if (operatorVerdictWaiting(o.s, step.cycle)) {
        stageTook(o, 'verify', at);
        verified(o, takeOperatorVerdict(o), at);
      }
      break;
    }
    case 'verified':
      if (step.kind !== 'verify') return unexpected();
      stageTook(o, 'verify', at);
      verified(o, event.verdict, at);
      break;
    case 'operator_verdict_ready':
      if (step.kind !== 'verify' || !operatorVerdictWaiting(s, step.cycle)) return unexpected();
      stageTook(o, 'verify', at);
      verified(o, takeOperatorVerdict(o), at);
      break;
    case 'observed': {
      if (step.kind === 'observe_cut') {
        recordCut(o, event.observation);
        afterCut(o, at);
        break;
      }
      if (step.kind !== 'observe') return unexpected();
      const cut = s.inFlight as InFlightCycle;
      finishCycle(
        o,
        { motionPlan: cut.motionPlan, action: cut.action, chunk: cut.chunk, executeError: step.why, interrupted: true, after: event.observation, verdict: episodeVerdict(`chunk outcome unknown, observed again: ${step.why}`) },
        event.observation,
        at,
      );
      break;
    }
    case 'resume_wait_over':
      if (step.kind !== 'wait_for_resume') return unexpected();
      if (!event.resumed) endEpisode(o, 'time_limit', `${s.input.limits.maxDurationSeconds} s without finishing (paused)`, at);
      else if (!limitReached(o, at)) beginCycle(o, at);
      break;
    case 'safe_stopped':
      if (step.kind !== 'safe_stop') return unexpected();
      afterSafeStop(o, at);
      break;
    case 'evaluated':
      if (step.kind !== 'evaluate') return unexpected();
      o.s.evaluation = event.evaluation;
      finalize(o, at);
      break;
    case 'finalized':
      if (step.kind !== 'finalize') return unexpected();
      o.s.written = event.written;
      if (s.reset !== null) go(o, { kind: 'release_arm', region: 'finishing', bestEffort: true, input: { episodeId: s.id.episodeId } }, at);
      else done(o, event.written, at);
      break;
    case 'arm_released':
      if (step.kind !== 'release_arm' || s.written === null) return unexpected();
      done(o, s.written, at);
      break;
    case 'step_failed':
      if (step.region === 'station' || step.region === 'done') return unexpected();
      onStepFailed(o, event);
      break;
  }
  return { state: o.s, step: o.s.step, cancelCycle: false, metrics: o.metrics };
}
