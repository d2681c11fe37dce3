import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileStore, getJson } from '../../activities/store';
import { DLanRecord } from '../../data-schemas/d-lan';
import { DRobTrajectory } from '../../data-schemas/d-rob';
import { DatasetManifest } from '../../data-schemas/manifest';
import { EpisodeRecord, RobotEpisodeResult, type EpisodeStatus, type RobotEpisodeInputRaw } from '../../data-schemas/robot';
import { fileUri, joinUri } from '../../data-schemas/uri';
import { TaskQueue } from '../../data-schemas/workflows';
import type { robotEpisode } from '../../workflows';
import { INVALID_WORKFLOW_INPUT } from '../../workflows/input';
import { connectTestTemporal, recordHistory, uniqueTaskQueue, type TemporalTestEnv } from '../helpers/temporal';
import { withCpuWorker } from '../helpers/workers';
import { startStationProcess, uniqueStationId, type StationProcess } from '../helpers/stations';
import { createGeminiServer } from '../fixtures/gemini-server';
import { createOpenAIServer } from '../fixtures/openai-server';
import { startFakeArm } from '../fixtures/widowx-server';
import { createGeminiWorker } from '../../workers/gemini';

/**
 * robotEpisode end to end: a real dev server, the workflow on an in-process CPU worker, and real
 * station worker processes (`vla worker station`) driving the simulator.
 */
describe('robotEpisode on real station worker processes', () => {
  const store = new FileStore();
  let env: TemporalTestEnv;
  let dir: string;
  let storeUri: string;
  const stations: StationProcess[] = [];

  beforeAll(async () => {
    env = await connectTestTemporal();
    dir = mkdtempSync(join(tmpdir(), 'vla-episode-'));
    storeUri = fileUri(join(dir, 'store'));
  }, 120_000);

  afterAll(async () => {
    await Promise.all(stations.map((s) => s.stop()));
    await env?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  const station = async (opts: { stepDelayMs?: number; stationId?: string; url?: string } = {}): Promise<StationProcess> => {
    const s = await startStationProcess({ stateDir: join(dir, 'state'), storeUri, ...opts });
    stations.push(s);
    return s;
  };

  let n = 0;
  const start = (input: Omit<RobotEpisodeInputRaw, 'outputUri'>, taskQueue: string = TaskQueue.station(input.stationId)): Promise<WorkflowHandle<typeof robotEpisode>> => {
    const id = `episode-test-${Date.now()}-${n++}`;
    return env.client.workflow.start<typeof robotEpisode>('robotEpisode', { taskQueue, workflowId: id, args: [{ outputUri: joinUri(storeUri, 'episodes', id), ...input }] });
  };
  const status = (h: WorkflowHandle): Promise<EpisodeStatus> => h.query<EpisodeStatus>('status');
  const waitFor = async (h: WorkflowHandle, pred: (s: EpisodeStatus) => boolean, what: string): Promise<EpisodeStatus> => {
    for (let i = 0; i < 600; i++) {
      const s = await status(h);
      if (pred(s)) return s;
      await sleep(100);
    }
    throw new Error(`the episode never reached: ${what}`);
  };
  const recordOf = (result: RobotEpisodeResult): Promise<EpisodeRecord> => getJson(store, result.recordUri, EpisodeRecord);
  const exact = { seed: 1, actionStdMeters: 0, formatErrorRate: 0 } as const;

  it('proceeds through every subtask, succeeds in the simulator, and records the episode as D_rob + D_lan', async () => {
    const s = await station();
    const h = await start({ stationId: s.stationId, instruction: 'put the carrot on the plate', seed: 3, policy: { kind: 'scripted', ...exact } });
    const result = RobotEpisodeResult.parse(await h.result());
    expect(result).toMatchObject({ outcome: 'completed', success: true, formatFailures: 0, repairs: 0 });
    expect(result.subtasksCompleted).toBe(result.subtasks.length);
    expect(result.subtasks[0]).toMatch(/^Move to/);

    const record = await recordOf(result);
    expect(record.cycles.length).toBeGreaterThanOrEqual(result.subtasks.length);
    for (const c of record.cycles) {
      expect(c.motionPlan?.ok && c.action?.ok).toBe(true);
      expect(c.verdict.by).toBe('oracle');
      expect(c.latencies.map((l) => l.stage)).toEqual(expect.arrayContaining(['motion_plan', 'action', 'execute', 'verify', 'cycle']));
    }
    // Cycles chain: each starts where the previous one ended.
    record.cycles.slice(1).forEach((c, i) => expect(c.before.step).toBe(record.cycles[i]?.after?.step));
    expect(record.evaluation).toMatchObject({ success: true });

    const dRob = await getJson(store, joinUri(result.dRobUri as string, 'manifest.json'), DatasetManifest);
    const traj = await getJson(store, joinUri(result.dRobUri as string, dRob.trajectories[0]?.record as string), DRobTrajectory);
    const lastStep = record.cycles[record.cycles.length - 1]?.after?.step as number;
    expect(traj.steps).toHaveLength(lastStep + 1);
    expect(traj.source).toMatchObject({ kind: 'robot_episode', station: s.stationId, workflowId: h.workflowId });
    const dLanManifest = await getJson(store, joinUri(result.dLanUri as string, 'manifest.json'), DatasetManifest);
    const dLan = await getJson(store, joinUri(result.dLanUri as string, dLanManifest.trajectories[0]?.record as string), DLanRecord);
    expect(dLan.steps).toHaveLength(record.cycles.length);
    expect(dLan.steps.map((st) => st.subtask)).toEqual(record.cycles.map((c) => c.subtask));
    expect(dLan.auxiliary.subtaskCompletion).toHaveLength(result.subtasks.length);
    expect(dLan.labeler.name).toBe('policy');
  }, 180_000);

  it('sets up and judges the episode by its own instruction: one the station cannot set up is refused before the arm moves', async () => {
    const s = await station();
    // The scene has carrot and plate; the instruction asks only to pick the carrot up: that is the task.
    const own = await start({ stationId: s.stationId, instruction: 'pick up the carrot', scene: 'put the carrot on the plate', seed: 4, policy: { kind: 'scripted', ...exact } });
    const ownResult = RobotEpisodeResult.parse(await own.result());
    expect(ownResult).toMatchObject({ outcome: 'completed', success: true });
    expect(ownResult.evaluation?.task).toBe('pick up the carrot');
    expect(ownResult.evaluation?.milestones.map((m) => m.name)).toEqual(['grasp the carrot', 'lift the carrot']);
    const armLog = readFileSync(join(s.stateDir, 'sim-arm.jsonl'), 'utf8');

    const moon = await start({ stationId: s.stationId, instruction: 'fly to the moon', policy: { kind: 'scripted', ...exact } });
    const refused = RobotEpisodeResult.parse(await moon.result());
    expect(refused).toMatchObject({ outcome: 'error', success: null, evaluation: null, cycles: 0, subtasks: [] });
    // The reason names the station's failure type, not only its message.
    expect(refused.reason).toMatch(/^Station:bad_request: the episode names no scene and the simulator cannot set up its instruction: cannot simulate "fly to the moon"/);
    expect(refused.reason).toMatch(/Supported tasks: "put the carrot on the plate"/);
    const record = await recordOf(refused);
    expect(record).toMatchObject({ reset: null, cycles: [], evaluation: null, subtasksStage: null });
    // The arm was not touched: its log is the previous episode's, and no episode holds it.
    expect(readFileSync(join(s.stateDir, 'sim-arm.jsonl'), 'utf8')).toBe(armLog);
    expect(existsSync(join(s.stateDir, 'owner.json'))).toBe(false);
  }, 180_000);

  it('rejects invalid input naming the fields', async () => {
    const err = await withCpuWorker(env, store, 'episode-cpu', async (cpuQueue): Promise<unknown> => {
      const h = await env.client.workflow.start<typeof robotEpisode>('robotEpisode', { taskQueue: cpuQueue, workflowId: `episode-bad-${Date.now()}`, args: [{ stationId: 'has space', instruction: '', outputUri: 'ftp://x' }] });
      return h.result().catch((e: unknown) => e);
    });
    expect(err).toBeInstanceOf(WorkflowFailedError);
    const cause = (err as WorkflowFailedError).cause as { type?: string; message: string };
    expect(cause.type).toBe(INVALID_WORKFLOW_INPUT);
    expect(cause.message).toMatch(/stationId/);
    expect(cause.message).toMatch(/instruction/);
    expect(cause.message).toMatch(/outputUri/);
  });

  it("refuses to run anywhere but on its station's task queue", async () => {
    const err = await withCpuWorker(env, store, 'episode-cpu', async (cpuQueue): Promise<unknown> => {
      const h = await start({ stationId: 'nowhere', instruction: 'pick up the eggplant' }, cpuQueue);
      return h.result().catch((e: unknown) => e);
    });
    expect(err).toBeInstanceOf(WorkflowFailedError);
    expect(((err as WorkflowFailedError).cause as { type?: string }).type).toBe('WrongTaskQueue');
    expect(((err as WorkflowFailedError).cause as Error).message).toMatch(/start it on vla-station-nowhere/);
  });

  it('retries a subtask the oracle rejects, and gives up once the retries are spent', async () => {
    const s = await station();
    // Noisy actions miss the 5 mm alignment the strict verifier asks for: retries happen.
    const noisy = await start({ stationId: s.stationId, instruction: 'pick up the eggplant', seed: 2, policy: { kind: 'scripted', seed: 7, actionStdMeters: 0.01, formatErrorRate: 0 }, limits: { maxRetriesPerSubtask: 30, maxCycles: 200 } });
    const noisyRecord = await recordOf(RobotEpisodeResult.parse(await noisy.result()));
    const retries = noisyRecord.cycles.filter((c) => c.verdict.decision === 'retry');
    expect(retries.length).toBeGreaterThan(0);
    expect(retries[0]?.verdict.by).toBe('oracle');
    expect(retries[0]?.verdict.reason.length).toBeGreaterThan(5);
    const retried = retries[0] as EpisodeRecord['cycles'][number];
    expect(noisyRecord.cycles.find((c) => c.cycle === retried.cycle + 1)?.subtaskIndex).toBe(retried.subtaskIndex);

    const strict = await start({ stationId: s.stationId, instruction: 'pick up the eggplant', seed: 2, policy: { kind: 'scripted', seed: 7, actionStdMeters: 0.01, formatErrorRate: 0 }, limits: { maxRetriesPerSubtask: 0 } });
    const result = RobotEpisodeResult.parse(await strict.result());
    expect(result.outcome).toBe('retries_exhausted');
    expect(result.reason).toMatch(/failed 1 times/);
  }, 240_000);

  it('pauses between chunks, resumes, and takes an operator verdict over the verifier', async () => {
    const s = await station({ stepDelayMs: 30 });
    const h = await start({ stationId: s.stationId, instruction: 'put the carrot on the plate', seed: 4, policy: { kind: 'scripted', ...exact } });
    await waitFor(h, (st) => st.phase === 'executing', 'a chunk executing');
    await h.signal('pause');
    const paused = await waitFor(h, (st) => st.phase === 'paused', 'paused');
    await sleep(1500);
    const still = await status(h);
    expect(still.phase).toBe('paused');
    expect(still.cycle).toBe(paused.cycle);
    // The operator overrules the (oracle) verifier for the next cycle.
    await h.signal('verdict', { decision: 'retry', reason: 'operator: not aligned from here', cycle: paused.cycle });
    await h.signal('resume');
    const result = RobotEpisodeResult.parse(await h.result());
    expect(result.outcome).toBe('completed');
    const record = await recordOf(result);
    const overruled = record.cycles.find((c) => c.cycle === paused.cycle);
    expect(overruled?.verdict).toMatchObject({ decision: 'retry', by: 'operator', reason: 'operator: not aligned from here' });
    expect(record.operatorEvents.map((e) => e.event)).toEqual(expect.arrayContaining(['pause', 'verdict', 'resume']));
    await recordHistory(env, 'robotEpisode-signals', h.workflowId);
  }, 180_000);

  it('aborts mid-chunk: the arm stops after the action in progress', async () => {
    const s = await station({ stepDelayMs: 150 });
    const h = await start({ stationId: s.stationId, instruction: 'put the carrot on the plate', seed: 5, policy: { kind: 'scripted', ...exact } });
    await waitFor(h, (st) => st.phase === 'executing', 'a chunk executing');
    await sleep(300);
    await h.signal('abort', { reason: 'operator pressed stop' });
    const result = RobotEpisodeResult.parse(await h.result());
    expect(result).toMatchObject({ outcome: 'aborted', reason: 'operator pressed stop' });
    const record = await recordOf(result);
    const cut = record.cycles[record.cycles.length - 1];
    expect(cut?.executeError).toMatch(/aborted/);
    expect(cut?.chunk).not.toBeNull();
    // Stopped part-way: fewer actions ran than the chunk had.
    expect(cut?.executed).toBeLessThan(cut?.chunk?.length ?? 0);
    // Nothing moved after the episode ended.
    const stepAtEnd = cut?.after?.step;
    await sleep(500);
    const log = readFileSync(join(s.stateDir, 'sim-arm.jsonl'), 'utf8').trim().split('\n');
    expect((JSON.parse(log[log.length - 1] as string) as { actions: number }).actions).toBe(stepAtEnd);
  }, 180_000);

  it('repairs malformed policy answers, and ends the episode when the subtask list stays malformed', async () => {
    const s = await station();
    const flaky = await start({ stationId: s.stationId, instruction: 'pick up the eggplant', seed: 1, policy: { kind: 'scripted', seed: 3, actionStdMeters: 0, formatErrorRate: 0.4 }, limits: { maxRepairs: 5 } });
    const repaired = RobotEpisodeResult.parse(await flaky.result());
    expect(repaired.outcome).toBe('completed');
    expect(repaired.repairs).toBeGreaterThan(0);
    expect(repaired.formatFailures).toBeGreaterThan(0);
    const record = await recordOf(repaired);
    const attempts = [record.subtasksStage, ...record.cycles.flatMap((c) => [c.motionPlan, c.action])].flatMap((st) => st?.attempts ?? []);
    expect(attempts.some((a) => a.error !== null)).toBe(true);

    const broken = await start({ stationId: s.stationId, instruction: 'pick up the eggplant', seed: 1, policy: { kind: 'scripted', seed: 3, actionStdMeters: 0, formatErrorRate: 1 }, limits: { maxRepairs: 2 } });
    const abandoned = RobotEpisodeResult.parse(await broken.result());
    expect(abandoned.outcome).toBe('policy_format');
    expect(abandoned.formatFailures).toBe(3);
    expect((await recordOf(abandoned)).subtasksStage?.attempts).toHaveLength(3);
  }, 180_000);

  it('drives a real-arm station (WidowX HTTP protocol) with a model policy and the Gemini verifier', async () => {
    // The arm: the fake WidowX action server; the VLA: an OpenAI-compatible server answering the
    // three prompts; the verifier: Gemini's wire format. All through the real clients.
    const arm = await startFakeArm({ task: 'pick up the eggplant', actionDelayMs: 1 });
    const vla = await createOpenAIServer({
      models: ['vlm2vla'],
      answer: (req) =>
        req.promptText.includes('list every high-level subtask')
          ? '1. Move to eggplant\n2. Grasp eggplant'
          : req.promptText.includes('Output only the action chunk')
            ? '[[0.010, 0.000, -0.005, 1], [0.010, 0.000, -0.005, 1]]'
            : 'Move forward and slightly down, gripper open.',
    });
    const gemini = await createGeminiServer({ apiKey: 'test-key', respond: () => ({ text: JSON.stringify({ decision: 'proceed', reason: 'the gripper is where the subtask wants it' }) }) });
    const geminiQueue = uniqueTaskQueue('episode-gemini');
    const geminiWorker = await createGeminiWorker({ connection: env.nativeConnection, namespace: env.namespace, taskQueue: geminiQueue, deps: { store, gemini: { apiKey: 'test-key', baseUrl: gemini.baseUrl } } });
    try {
      const s = await station({ url: arm.url });
      const h = await start({
        stationId: s.stationId,
        instruction: 'pick up the eggplant',
        policy: { kind: 'model', model: { name: 'vlm2vla', backend: 'openai', baseUrl: vla.baseUrl, model: 'vlm2vla' }, structuredDecoding: true },
        verifier: { kind: 'gemini', model: 'gemini-2.5-pro', taskQueue: geminiQueue },
      });
      const result = RobotEpisodeResult.parse(await geminiWorker.runUntil(h.result()));
      // A real arm has no ground truth: nothing judges success, the verifier's verdicts are all there is.
      expect(result).toMatchObject({ outcome: 'completed', success: null, evaluation: null, subtasks: ['Move to eggplant', 'Grasp eggplant'], cycles: 2 });
      const record = await recordOf(result);
      expect(record.cycles.map((c) => c.verdict.by)).toEqual(['gemini:gemini-2.5-pro', 'gemini:gemini-2.5-pro']);
      expect(record.cycles.every((c) => c.action?.attempts[0]?.structured === true)).toBe(true);
      // Every chunk went to the arm with the step it was planned at.
      const acts = arm.requests.filter((r) => r.path === '/act').map((r) => r.body as { expected_step: number; actions: unknown[] });
      expect(acts.map((a) => a.expected_step)).toEqual([0, 2]);
      // The VLA saw the paper's decoding and the structured-output schema for chunks only.
      const chunkCalls = vla.requests.filter((r) => r.promptText.includes('Output only the action chunk'));
      expect(chunkCalls.every((r) => r.temperature === 0.5 && (r.body as { response_format?: unknown }).response_format !== undefined)).toBe(true);
      expect(vla.requests.find((r) => r.promptText.includes('list every high-level subtask'))?.temperature).toBe(0.5);
      expect(gemini.requests.every((r) => r.imageCount === 2)).toBe(true);
      // Recorded as data: one D_rob step per arm step (the server sends per-action observations).
      const dRob = await getJson(store, joinUri(result.dRobUri as string, 'manifest.json'), DatasetManifest);
      expect(dRob.counts.steps).toBe(5);
    } finally {
      await Promise.all([arm.close(), vla.close(), gemini.close()]);
    }
  }, 180_000);

  it('hands the arm on when the episode holding it is terminated', async () => {
    const s = await station({ stepDelayMs: 100 });
    const first = await start({ stationId: s.stationId, instruction: 'put the carrot on the plate', seed: 8, policy: { kind: 'scripted', ...exact } });
    await waitFor(first, (st) => st.phase === 'executing', 'a chunk executing');
    const second = await start({ stationId: s.stationId, instruction: 'pick up the eggplant', seed: 8, policy: { kind: 'scripted', ...exact } });
    expect((await status(second)).phase).toBe('waiting_for_station');
    // Terminated, the first episode never releases the arm: the lock notices it is gone.
    await first.terminate('operator terminated the run');
    const result = RobotEpisodeResult.parse(await second.result());
    expect(result).toMatchObject({ outcome: 'completed', success: true });
    await recordHistory(env, 'stationLock-holder-terminated', `station-lock-${s.stationId}`);
  }, 180_000);

  it('survives a SIGKILLed station worker: no chunk runs twice, the episode observes again and finishes', async () => {
    const stationId = uniqueStationId('kill');
    const first = await station({ stationId, stepDelayMs: 120 });
    const h = await start({ stationId, instruction: 'put the carrot on the plate', seed: 6, policy: { kind: 'scripted', ...exact } });
    // The first chunk (moving to the carrot) is several actions long: the kill lands inside it.
    await waitFor(h, (st) => st.phase === 'executing' && st.cycle === 0, 'the first chunk executing');
    await sleep(400);
    first.kill();
    await sleep(500);
    await station({ stationId, stepDelayMs: 0 });
    const result = RobotEpisodeResult.parse(await h.result());
    expect(result.outcome).toBe('completed');
    const record = await recordOf(result);
    const interrupted = record.cycles.filter((c) => c.interrupted);
    expect(interrupted).toHaveLength(1);
    const cut = interrupted[0] as EpisodeRecord['cycles'][number];
    expect(cut.executeError).toMatch(/planned at step \d+ but the arm is at step \d+/);
    // The arm moved part of the chunk once, never more than the chunk.
    const moved = (cut.after?.step ?? 0) - cut.before.step;
    expect(moved).toBeGreaterThan(0);
    expect(moved).toBeLessThanOrEqual(cut.chunk?.length ?? 0);
    record.cycles.slice(1).forEach((c, i) => expect(c.before.step).toBe(record.cycles[i]?.after?.step));
    // The arm's own log agrees: every step it took is accounted for by the recorded cycles.
    const log = readFileSync(join(first.stateDir, 'sim-arm.jsonl'), 'utf8').trim().split('\n');
    const lastLogged = (JSON.parse(log[log.length - 1] as string) as { actions: number }).actions;
    expect(lastLogged).toBe(record.cycles[record.cycles.length - 1]?.after?.step);
    await recordHistory(env, 'robotEpisode-worker-killed', h.workflowId);
  }, 240_000);
});
