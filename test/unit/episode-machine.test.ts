import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { z } from 'zod';
import type { ActionChunk } from '../../data-schemas/d-lan';
import { StationFailure } from '../../data-schemas/failures';
import type { PolicyStage } from '../../data-schemas/prompts';
import {
  EpisodeRecord,
  EpisodeRecordActivities,
  RobotEpisodeInput,
  RobotEpisodeResult,
  RobotPolicyActivities,
  StationActivities,
  type ExecuteChunkResult,
  type ObservationRef,
  type PolicyStageResult,
  type RobotEpisodeInputRaw,
  type VerdictRecord,
} from '../../data-schemas/robot';
import {
  episodeStatusView,
  operatorVerdictWaiting,
  resumeWaitOver,
  startEpisode,
  stationWaitOver,
  transition,
  type EpisodeEvent,
  type EpisodeState,
  type EpisodeStep,
} from '../../workflows/robot/episode-machine';

const T0 = Date.parse('2026-01-01T00:00:00.000Z');
const OUT = 'file:///tmp/vla-episode-machine/ep';

const obs = (step: number): ObservationRef => ({
  frameUri: `${OUT}/frames/${step}.jpg`,
  state: [0.3, 0, 0.1 + step * 0.01, 0, 0, 0, 1],
  step,
  timestamp: new Date(T0 + step * 200).toISOString(),
});

const answer = (stage: PolicyStage, value: PolicyStageResult['value'], bad = 0): PolicyStageResult => ({
  record: {
    stage,
    attempts: [...Array.from({ length: bad }, () => ({ prompt: 'p', raw: 'garbled', error: 'not JSON', latencyMs: 5, structured: false })), { prompt: 'p', raw: JSON.stringify(value), error: value === null ? 'still malformed' : null, latencyMs: 5, structured: false }],
    ok: value !== null,
    error: value === null ? 'still malformed' : null,
    latencyMs: 5 * (bad + 1),
  },
  value,
});

const oracle = (decision: VerdictRecord['decision'], reason = `oracle says ${decision}`): VerdictRecord => ({ decision, reason, by: 'oracle', promptVersion: null, raw: null, latencyMs: 1 });
const CHUNK: ActionChunk = [
  [0.01, 0, 0, 1],
  [0.01, 0, 0, 1],
  [0.01, 0, 0, 0],
];

/** The input schema of the activity robot-episode.ts runs for each kind of step (the Gemini verifier takes the oracle's input plus its model). */
const stepInputSchema: Record<Exclude<EpisodeStep['kind'], 'wait_for_station' | 'wait_for_resume' | 'done'>, z.ZodType> = {
  reset: StationActivities.activities.stationReset.input,
  policy: RobotPolicyActivities.activities.policyStage.input,
  execute: StationActivities.activities.stationExecute.input,
  observe: StationActivities.activities.stationObserve.input,
  observe_cut: StationActivities.activities.stationObserve.input,
  verify: StationActivities.activities.verifyOracle.input,
  safe_stop: StationActivities.activities.stationSafeStop.input,
  evaluate: StationActivities.activities.stationEvaluate.input,
  finalize: EpisodeRecordActivities.activities.finalizeEpisode.input,
  release_arm: StationActivities.activities.stationRelease.input,
};

/**
 * The worker parses every activity input against its contract (implement): each step's input must
 * pass unchanged, and the record come out byte for byte as sent (it is written as parsed: a
 * reordered key would change episode.json).
 */
function expectContractInput(step: EpisodeStep): void {
  if (!('input' in step)) return;
  const schema = stepInputSchema[step.kind];
  const parsed = schema.safeParse(step.input);
  expect(parsed.success ? 'valid' : `${step.kind}: ${parsed.error.message}`).toBe('valid');
  expect(parsed.data).toEqual(step.input);
  if (step.kind === 'finalize') expect(JSON.stringify(parsed.data)).toBe(JSON.stringify(step.input));
}

/** An event as the test sends it: the clock is the driver's. */
type Untimed<E> = E extends unknown ? Omit<E, 'at'> : never;

/** Drives the machine as the workflow shell does, with a clock the test moves. */
class Episode {
  state: EpisodeState;
  step: EpisodeStep;
  now = T0;
  cancelled = false;
  metrics: { stage: string; ms: number }[] = [];
  armStep = 0;

  constructor(raw: Partial<RobotEpisodeInputRaw> = {}) {
    const input = RobotEpisodeInput.parse({ stationId: 'sim-1', instruction: 'put the carrot on the plate', outputUri: OUT, ...raw });
    this.state = startEpisode(input, { episodeId: 'ep-1', workflowId: 'ep-1', runId: 'run-1', startedAt: T0 });
    this.step = this.state.step;
  }

  /** Feeds one event `ms` after the previous one. */
  send(event: Untimed<EpisodeEvent>, ms = 100): EpisodeStep {
    this.now += ms;
    const t = transition(this.state, { ...event, at: this.now });
    expectContractInput(t.step);
    this.state = t.state;
    this.step = t.step;
    this.cancelled ||= t.cancelCycle;
    this.metrics.push(...t.metrics);
    return t.step;
  }

  status() {
    return episodeStatusView(this.state, this.now);
  }

  /** Granted, reset, and the subtask list: the first cycle's motion plan is next. */
  begin(subtasks: string[] = ['pick up the carrot', 'put it on the plate']): this {
    this.send({ type: 'station_granted' });
    expect(stationWaitOver(this.state)).toBe(true);
    expect(this.send({ type: 'start' })).toMatchObject({ kind: 'reset', region: 'episode' });
    expect(this.send({ type: 'reset_done', observation: obs(0) })).toMatchObject({ kind: 'policy', region: 'episode', input: { stage: 'subtasks', frameUri: obs(0).frameUri } });
    this.send({ type: 'policy_answered', result: answer('subtasks', subtasks) });
    return this;
  }

  /** Motion plan and chunk answered, the chunk executed: the verify step is next (or done, when an operator verdict waited). */
  toVerify(): EpisodeStep {
    expect(this.step).toMatchObject({ kind: 'policy', region: 'cycle', input: { stage: 'motion_plan' } });
    expect(this.send({ type: 'policy_answered', result: answer('motion_plan', 'move right toward the carrot') })).toMatchObject({ kind: 'policy', input: { stage: 'action', motionPlan: 'move right toward the carrot' } });
    const execute = this.send({ type: 'policy_answered', result: answer('action', CHUNK) });
    expect(execute).toMatchObject({ kind: 'execute', input: { chunk: CHUNK, expectedStep: this.armStep } });
    this.armStep += CHUNK.length;
    const result: ExecuteChunkResult = { executed: CHUNK.length, stopped: false, after: obs(this.armStep), trace: [obs(this.armStep - 2), obs(this.armStep - 1), obs(this.armStep)] };
    return this.send({ type: 'executed', result }, 600);
  }

  /** One whole cycle judged by the automatic verifier. */
  cycle(decision: VerdictRecord['decision']): EpisodeStep {
    expect(this.toVerify()).toMatchObject({ kind: 'verify', verifier: { kind: 'oracle' } });
    return this.send({ type: 'verified', verdict: oracle(decision) }, 50);
  }

  /** Runs the finishing steps (every one answering) and returns the record written and the result. */
  finish(): { record: EpisodeRecord; result: RobotEpisodeResult; kinds: string[] } {
    const kinds: string[] = [];
    let record: EpisodeRecord | undefined;
    while (this.step.region === 'finishing') {
      const step = this.step;
      kinds.push(step.kind);
      if (step.kind === 'safe_stop') this.send({ type: 'safe_stopped' });
      else if (step.kind === 'observe_cut') this.send({ type: 'observed', observation: obs(this.armStep) });
      else if (step.kind === 'evaluate') this.send({ type: 'evaluated', evaluation: null });
      else if (step.kind === 'finalize') {
        record = EpisodeRecord.parse(step.input.record);
        this.send({ type: 'finalized', written: { recordUri: `${OUT}/episode.json`, dRobUri: null, dLanUri: null } });
      } else if (step.kind === 'release_arm') this.send({ type: 'arm_released' });
    }
    expect(this.step.kind).toBe('done');
    if (this.step.kind !== 'done' || !record) throw new Error('the episode did not finish');
    return { record, result: RobotEpisodeResult.parse(this.step.result), kinds };
  }
}

describe('the robotEpisode state machine', () => {
  it('is pure: no Temporal import, no Node built-in', () => {
    const source = readFileSync(new URL('../../workflows/robot/episode-machine.ts', import.meta.url), 'utf8');
    expect(source).not.toMatch(/from '@temporalio|from 'node:/);
  });

  it('waits for the station, resets, plans the subtasks once, then runs cycles from the reset observation', () => {
    const e = new Episode();
    expect(e.step).toEqual({ kind: 'wait_for_station', region: 'station' });
    expect(stationWaitOver(e.state)).toBe(false);
    expect(e.status().phase).toBe('waiting_for_station');
    e.begin();
    expect(e.step).toMatchObject({ kind: 'policy', region: 'cycle', cycle: 0, input: { stage: 'motion_plan', frameUri: obs(0).frameUri, subtaskIndex: 0, subtasks: ['pick up the carrot', 'put it on the plate'] } });
    expect(e.status()).toMatchObject({ phase: 'motion_plan', currentSubtask: 'pick up the carrot', cycle: 0 });
  });

  it('proceeds to the next subtask after a verified success, and completes after the last', () => {
    const e = new Episode().begin();
    expect(e.cycle('proceed')).toMatchObject({ kind: 'policy', cycle: 1, input: { stage: 'motion_plan', subtaskIndex: 1, frameUri: obs(3).frameUri } });
    expect(e.status()).toMatchObject({ subtaskIndex: 1, currentSubtask: 'put it on the plate', retriesOnSubtask: 0, cycle: 1 });
    expect(e.cycle('proceed')).toMatchObject({ kind: 'evaluate', region: 'finishing' });
    const { record, result, kinds } = e.finish();
    expect(kinds).toEqual(['evaluate', 'finalize', 'release_arm']);
    expect(result).toMatchObject({ outcome: 'completed', reason: 'every subtask verified done', cycles: 2, subtasksCompleted: 2 });
    expect(record.cycles.map((c) => [c.subtaskIndex, c.attempt, c.verdict.decision, c.executed, c.after?.step])).toEqual([
      [0, 0, 'proceed', 3, 3],
      [1, 0, 'proceed', 3, 6],
    ]);
    expect(record.cycles[0]?.latencies.map((l) => l.stage)).toEqual(['motion_plan', 'action', 'execute', 'verify', 'cycle']);
    expect(e.status().phase).toBe('done');
  });

  it('retries a subtask the verifier rejects, up to maxRetriesPerSubtask, then ends retries_exhausted', () => {
    const e = new Episode({ limits: { maxRetriesPerSubtask: 2, maxCycles: 40, maxDurationSeconds: 900, maxRepairs: 2 } }).begin();
    expect(e.cycle('retry')).toMatchObject({ kind: 'policy', cycle: 1, input: { subtaskIndex: 0 } });
    expect(e.status().retriesOnSubtask).toBe(1);
    expect(e.cycle('retry')).toMatchObject({ kind: 'policy', cycle: 2, input: { subtaskIndex: 0 } });
    expect(e.status().retriesOnSubtask).toBe(2);
    expect(e.cycle('retry')).toMatchObject({ region: 'finishing' });
    const { record, result } = e.finish();
    expect(result.outcome).toBe('retries_exhausted');
    expect(result.reason).toBe('subtask 1 "pick up the carrot" failed 3 times: oracle says retry');
    expect(record.cycles.map((c) => c.attempt)).toEqual([0, 1, 2]);
  });

  it('counts a refused (unsafe) chunk and a malformed plan as retries, an interrupted chunk not', () => {
    const e = new Episode().begin();
    e.send({ type: 'policy_answered', result: answer('motion_plan', null, 2) });
    expect(e.state.cycles.at(-1)?.verdict).toMatchObject({ decision: 'retry', by: 'episode', reason: 'no usable motion plan: still malformed' });
    expect(e.status().retriesOnSubtask).toBe(1);
    expect(e.state.formatFailures).toBe(3);
    expect(e.state.repairs).toBe(2);

    e.send({ type: 'policy_answered', result: answer('motion_plan', 'move right') });
    e.send({ type: 'policy_answered', result: answer('action', CHUNK) });
    e.send({ type: 'step_failed', cancelled: false, failureType: StationFailure.UnsafeAction, cause: 'Station:unsafe_action: 6 cm step' });
    expect(e.state.cycles.at(-1)).toMatchObject({ executeError: 'Station:unsafe_action: 6 cm step', interrupted: false, verdict: { reason: 'unsafe chunk refused before moving: Station:unsafe_action: 6 cm step' } });
    expect(e.status().retriesOnSubtask).toBe(2);

    e.send({ type: 'policy_answered', result: answer('motion_plan', 'move right') });
    e.send({ type: 'policy_answered', result: answer('action', CHUNK) });
    expect(e.send({ type: 'step_failed', cancelled: false, failureType: StationFailure.StaleObservation, cause: 'Station:stale_observation: moved' })).toMatchObject({ kind: 'observe', region: 'cycle', cycle: 2 });
    expect(e.status().phase).toBe('observing');
    expect(e.send({ type: 'observed', observation: obs(2) })).toMatchObject({ kind: 'policy', cycle: 3, input: { frameUri: obs(2).frameUri } });
    expect(e.state.cycles.at(-1)).toMatchObject({ interrupted: true, after: { step: 2 }, verdict: { reason: 'chunk outcome unknown, observed again: Station:stale_observation: moved' } });
    expect(e.status().retriesOnSubtask).toBe(2);
  });

  it('ends policy_format when the subtask list stays malformed, error on a station or verifier failure', () => {
    const bad = new Episode();
    bad.send({ type: 'station_granted' });
    bad.send({ type: 'start' });
    bad.send({ type: 'reset_done', observation: obs(0) });
    bad.send({ type: 'policy_answered', result: answer('subtasks', null, 2) });
    expect(bad.finish().result).toMatchObject({ outcome: 'policy_format', reason: 'the subtask list is still malformed after 2 repair(s): still malformed', formatFailures: 3, repairs: 2 });

    const station = new Episode().begin();
    station.send({ type: 'policy_answered', result: answer('motion_plan', 'move right') });
    station.send({ type: 'policy_answered', result: answer('action', CHUNK) });
    station.send({ type: 'step_failed', cancelled: false, failureType: 'Station:e_stop', cause: 'Station:e_stop: pressed' });
    expect(station.finish().result).toMatchObject({ outcome: 'error', reason: 'station sim-1: Station:e_stop: pressed' });

    const verifier = new Episode().begin();
    verifier.toVerify();
    verifier.send({ type: 'step_failed', cancelled: false, failureType: null, cause: 'the verifier failed' });
    expect(verifier.finish().result).toMatchObject({ outcome: 'error', reason: 'verifier oracle: the verifier failed' });
  });

  describe('operator verdicts', () => {
    it('one given before the chunk ends wins without asking the verifier', () => {
      const e = new Episode().begin();
      e.send({ type: 'policy_answered', result: answer('motion_plan', 'move right') });
      e.send({ type: 'verdict', verdict: { decision: 'proceed', reason: 'looks done to me' } });
      expect(operatorVerdictWaiting(e.state, 0)).toBe(true);
      e.send({ type: 'policy_answered', result: answer('action', CHUNK) });
      e.armStep = 3;
      expect(e.send({ type: 'executed', result: { executed: 3, stopped: false, after: obs(3), trace: [] } })).toMatchObject({ kind: 'policy', cycle: 1, input: { subtaskIndex: 1 } });
      expect(e.state.cycles[0]?.verdict).toEqual({ decision: 'proceed', reason: 'looks done to me', by: 'operator', promptVersion: null, raw: null, latencyMs: 0 });
      expect(e.state.cycles[0]?.latencies.find((l) => l.stage === 'verify')).toEqual({ stage: 'verify', ms: 0 });
      expect(operatorVerdictWaiting(e.state, 1)).toBe(false);
    });

    it('one given while the verifier runs overrides it', () => {
      const e = new Episode().begin();
      expect(e.toVerify()).toMatchObject({ kind: 'verify', cycle: 0 });
      expect(operatorVerdictWaiting(e.state, 0)).toBe(false);
      e.send({ type: 'verdict', verdict: { decision: 'retry', reason: 'the carrot slipped' } });
      expect(operatorVerdictWaiting(e.state, 0)).toBe(true);
      e.send({ type: 'operator_verdict_ready' });
      expect(e.state.cycles[0]?.verdict).toMatchObject({ decision: 'retry', reason: 'the carrot slipped', by: 'operator' });
      expect(e.status()).toMatchObject({ retriesOnSubtask: 1, lastVerdict: { by: 'operator' } });
    });

    it('one for a given cycle waits for that cycle; one for a cycle that is over, or not a verdict, is noted and ignored', () => {
      const e = new Episode().begin();
      e.send({ type: 'verdict', verdict: { decision: 'proceed', reason: 'for the next one', cycle: 1 } });
      expect(e.cycle('retry')).toMatchObject({ kind: 'policy', cycle: 1 });
      expect(e.state.cycles[0]?.verdict.by).toBe('oracle');
      expect(operatorVerdictWaiting(e.state, 1)).toBe(true);
      expect(e.toVerify()).toMatchObject({ kind: 'policy', cycle: 2, input: { subtaskIndex: 1 } });
      expect(e.state.cycles[1]?.verdict).toMatchObject({ by: 'operator', reason: 'for the next one' });

      e.send({ type: 'verdict', verdict: { decision: 'proceed', reason: 'too late', cycle: 0 } });
      e.send({ type: 'verdict', verdict: { decision: 'maybe' } });
      expect(e.state.pendingVerdict).toBeNull();
      expect(e.state.operatorEvents.map((x) => x.event)).toEqual(['verdict', 'verdict_ignored', 'verdict_rejected']);
      expect(e.state.operatorEvents[1]?.detail).toBe('cycle 0 is over (now 2)');
      expect(e.state.operatorEvents[2]?.detail).toMatch(/^not a verdict: /);
    });

    it('an operator verifier waits for the verdict', () => {
      const e = new Episode({ verifier: { kind: 'operator' } }).begin();
      expect(e.toVerify()).toMatchObject({ kind: 'verify', verifier: { kind: 'operator' } });
      const asked = e.now;
      expect(() => e.send({ type: 'operator_verdict_ready' })).toThrow(/does not answer the verify step/);
      e.send({ type: 'verdict', verdict: { decision: 'proceed', reason: 'done' } });
      e.send({ type: 'operator_verdict_ready' }, 5000);
      expect(e.state.cycles[0]?.latencies.find((l) => l.stage === 'verify')).toEqual({ stage: 'verify', ms: e.now - asked });
      expect(e.now - asked).toBeGreaterThanOrEqual(5000);
    });
  });

  describe('abort', () => {
    it('while queued for the station: no reset, no safe stop, a record of the abort', () => {
      const e = new Episode();
      e.send({ type: 'abort', request: { reason: 'operator went home' } });
      expect(stationWaitOver(e.state)).toBe(true);
      e.send({ type: 'start' });
      const { kinds, result, record } = e.finish();
      expect(kinds).toEqual(['finalize']);
      expect(result).toMatchObject({ outcome: 'aborted', reason: 'operator went home', cycles: 0 });
      expect(record.operatorEvents).toEqual([{ at: new Date(T0 + 100).toISOString(), event: 'abort', detail: 'operator went home' }]);
    });

    it.each([
      ['motion_plan', 0, ['motion_plan']],
      ['action', 0, ['motion_plan', 'action']],
      ['execute', 2, ['motion_plan', 'action', 'execute']],
      ['verify', 2, ['motion_plan', 'action', 'execute', 'verify']],
    ] as const)('during %s: the cycle is cancelled, the arm safe-stopped, the cut cycle recorded as it stood', (stage, armMoved, latencies) => {
      const e = new Episode().begin();
      if (stage !== 'motion_plan') e.send({ type: 'policy_answered', result: answer('motion_plan', 'move right') });
      if (stage === 'execute' || stage === 'verify') e.send({ type: 'policy_answered', result: answer('action', CHUNK) });
      if (stage === 'verify') e.send({ type: 'executed', result: { executed: 3, stopped: false, after: obs(3), trace: [] } });
      expect(e.step).toMatchObject(stage === 'motion_plan' || stage === 'action' ? { kind: 'policy', input: { stage } } : { kind: stage });
      e.send({ type: 'abort', request: {} });
      expect(e.cancelled).toBe(true);
      e.armStep = armMoved;
      expect(e.send({ type: 'step_failed', cancelled: true, failureType: null, cause: 'Activity cancelled' })).toMatchObject({ kind: 'safe_stop', input: { reason: 'aborted by the operator' } });
      const { kinds, record, result } = e.finish();
      expect(kinds).toEqual(['safe_stop', 'observe_cut', 'evaluate', 'finalize', 'release_arm']);
      expect(result).toMatchObject({ outcome: 'aborted', reason: 'aborted by the operator', cycles: 1 });
      const cut = record.cycles[0];
      expect(cut).toMatchObject({ interrupted: true, executeError: 'aborted: aborted by the operator', executed: armMoved, verdict: { by: 'operator', decision: 'retry' } });
      expect(cut?.chunk).toEqual(stage === 'execute' || stage === 'verify' ? CHUNK : null);
      expect(cut?.latencies.map((l) => l.stage)).toEqual(latencies);
    });

    it('records the cut cycle with nothing executed when the arm cannot be read after the stop', () => {
      const e = new Episode().begin();
      e.send({ type: 'policy_answered', result: answer('motion_plan', 'move right') });
      e.send({ type: 'policy_answered', result: answer('action', CHUNK) });
      e.send({ type: 'abort', request: { reason: 'stop' } });
      e.send({ type: 'step_failed', cancelled: true, failureType: null, cause: 'Activity cancelled' });
      e.send({ type: 'safe_stopped' });
      expect(e.step).toMatchObject({ kind: 'observe_cut', bestEffort: true });
      expect(e.send({ type: 'step_failed', cancelled: false, failureType: null, cause: 'camera unplugged' })).toMatchObject({ kind: 'evaluate' });
      expect(e.state.cycles).toEqual([expect.objectContaining({ chunk: CHUNK, executed: 0, after: null, interrupted: true })]);
    });

    it('between cycles: the next cycle does not start, nothing is cut', () => {
      const e = new Episode().begin();
      e.toVerify();
      e.send({ type: 'abort', request: { reason: 'stop' } });
      expect(e.send({ type: 'verified', verdict: oracle('retry') })).toMatchObject({ kind: 'safe_stop' });
      const { kinds, record } = e.finish();
      expect(kinds).toEqual(['safe_stop', 'evaluate', 'finalize', 'release_arm']);
      expect(record.cycles).toHaveLength(1);
      expect(record.cycles[0]?.interrupted).toBe(false);
    });

    it('keeps the first reason when aborted twice', () => {
      const e = new Episode().begin();
      e.send({ type: 'abort', request: { reason: 'first' } });
      e.send({ type: 'abort', request: { reason: 'second' } });
      expect(e.state.abortReason).toBe('first');
      expect(e.state.operatorEvents.map((x) => x.detail)).toEqual(['first', 'first']);
    });

    it('a cancellation without an abort (the workflow cancelled) ends the episode error, without a cut cycle', () => {
      const e = new Episode().begin();
      e.send({ type: 'step_failed', cancelled: true, failureType: null, cause: 'Workflow cancelled' });
      const { kinds, result, record } = e.finish();
      expect(kinds).toEqual(['evaluate', 'finalize', 'release_arm']);
      expect(result).toMatchObject({ outcome: 'error', reason: 'Workflow cancelled' });
      expect(record.cycles).toHaveLength(0);
    });
  });

  describe('pause and resume', () => {
    it('holds before the next cycle until resumed', () => {
      const e = new Episode().begin();
      e.toVerify();
      e.send({ type: 'pause' });
      expect(e.status().paused).toBe(true);
      const wait = e.send({ type: 'verified', verdict: oracle('proceed') });
      expect(wait).toEqual({ kind: 'wait_for_resume', region: 'episode', timeoutMs: T0 + 900_000 - e.now });
      expect(e.status().phase).toBe('paused');
      expect(resumeWaitOver(e.state)).toBe(false);
      e.send({ type: 'resume' }, 60_000);
      expect(resumeWaitOver(e.state)).toBe(true);
      expect(e.send({ type: 'resume_wait_over', resumed: true }, 0)).toMatchObject({ kind: 'policy', cycle: 1, input: { subtaskIndex: 1 } });
      expect(e.state.operatorEvents.map((x) => x.event)).toEqual(['pause', 'resume']);
    });

    it('a pause that outlasts maxDurationSeconds ends time_limit', () => {
      const e = new Episode().begin();
      e.send({ type: 'pause' });
      e.cycle('retry');
      e.send({ type: 'resume_wait_over', resumed: false }, 900_000);
      expect(e.finish().result).toMatchObject({ outcome: 'time_limit', reason: '900 s without finishing (paused)' });
    });

    it('an abort ends a pause', () => {
      const e = new Episode().begin();
      e.send({ type: 'pause' });
      e.cycle('retry');
      e.send({ type: 'abort', request: { reason: 'enough' } });
      expect(resumeWaitOver(e.state)).toBe(true);
      e.send({ type: 'resume_wait_over', resumed: true });
      expect(e.finish().result).toMatchObject({ outcome: 'aborted', reason: 'enough' });
    });
  });

  describe('limits', () => {
    it('maxCycles: no cycle starts once that many have run', () => {
      const e = new Episode({ limits: { maxRetriesPerSubtask: 10, maxCycles: 2, maxDurationSeconds: 900, maxRepairs: 2 } }).begin();
      expect(e.cycle('retry')).toMatchObject({ kind: 'policy', cycle: 1 });
      expect(e.cycle('retry')).toMatchObject({ region: 'finishing' });
      expect(e.finish().result).toMatchObject({ outcome: 'cycle_limit', reason: '2 cycles without finishing (subtask 1 of 2)', cycles: 2 });
    });

    it('maxDurationSeconds: no cycle starts once the deadline has passed', () => {
      const e = new Episode({ limits: { maxRetriesPerSubtask: 10, maxCycles: 40, maxDurationSeconds: 10, maxRepairs: 2 } }).begin();
      expect(e.cycle('retry')).toMatchObject({ kind: 'policy', cycle: 1 });
      e.toVerify();
      expect(e.send({ type: 'verified', verdict: oracle('retry') }, 10_000)).toMatchObject({ region: 'finishing' });
      expect(e.finish().result).toMatchObject({ outcome: 'time_limit', reason: '10 s without finishing' });
    });
  });

  it('the status query shows the phase, subtask, cycle, retries, last verdict and timings', () => {
    const e = new Episode().begin();
    e.cycle('retry');
    e.toVerify();
    e.send({ type: 'verified', verdict: oracle('proceed') }, 250);
    e.now += 1000;
    expect(e.status()).toEqual({
      phase: 'motion_plan',
      paused: false,
      stationId: 'sim-1',
      subtasks: ['pick up the carrot', 'put it on the plate'],
      subtaskIndex: 1,
      currentSubtask: 'put it on the plate',
      cycle: 2,
      retriesOnSubtask: 0,
      lastVerdict: oracle('proceed'),
      timings: {
        elapsedMs: e.now - T0,
        lastCycleMs: 1050,
        medianCycleMs: (850 + 1050) / 2,
        lastStageMs: { reset: 100, motion_plan: 100, action: 100, execute: 600, verify: 250 },
      },
      outcome: null,
    });
    expect(e.metrics.filter((m) => m.stage === 'cycle').map((m) => m.ms)).toEqual([850, 1050]);
  });

  it('refuses an event that does not answer the running step', () => {
    const e = new Episode().begin();
    expect(() => e.send({ type: 'executed', result: { executed: 0, stopped: false, after: obs(0), trace: [] } })).toThrow('robotEpisode: event executed does not answer the policy step');
  });
});
