import getPort from 'get-port';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { readManifest } from '../../activities/data';
import { PIPELINE_METRICS } from '../../data-schemas/metrics';
import { FileStore } from '../../activities/store';
import type { LabelerChoice } from '../../data-schemas/relabel';
import { fileUri } from '../../data-schemas/uri';
import { loadConfig, REPO_ROOT } from '../../infra/config';
import { waitForPollers } from '../../infra/dev-stack';
import { startProcess, stopProcess, type StartedProcess } from '../../activities/runtime/processes';
import type { relabelDataset } from '../../workflows';
import { getJson } from '../../activities/store';
import { EpisodeRecord, RobotEpisodeResult } from '../../data-schemas/robot';
import { joinUri } from '../../data-schemas/uri';
import type { robotEpisode, vqaSweep } from '../../workflows';
import { createGeminiServer, type GeminiServer, type RecordedRequest } from '../fixtures/gemini-server';
import { priceFor, usageCost } from '../../activities/gemini/pricing';
import { closedPort } from '../helpers/net';
import { createOpenAIServer } from '../fixtures/openai-server';
import type { VqaSweepInput } from '../../data-schemas/vqa';
import type { z } from 'zod';
import { startStationProcess, type StationProcess } from '../helpers/stations';
import { simulateSample } from '../helpers/datasets';
import { scrape, valueOf, type Sample } from '../helpers/prometheus';
import { connectTestTemporal, uniqueTaskQueue, workflowBundle, type TemporalTestEnv } from '../helpers/temporal';

const API_KEY = 'AIzaTEST-key-for-the-metrics-test-000001';
const GEMINI: LabelerChoice = { name: 'gemini', model: 'gemini-2.5-flash' };
const M = PIPELINE_METRICS;
const VERIFIER_MODEL = 'gemini-2.5-pro';
const VQA_MODEL = 'gemini-2.5-flash-lite';

/** The Gemini counters of one use equal the tokens the server reported for `calls`, and the spend their list price. */
function expectSpend(metrics: Sample[], tags: { model: string; use: string }, calls: RecordedRequest[]): void {
  const input = calls.reduce((n, r) => n + (r.usage?.promptTokenCount ?? 0), 0);
  const output = calls.reduce((n, r) => n + (r.usage?.candidatesTokenCount ?? 0) + (r.usage?.thoughtsTokenCount ?? 0), 0);
  expect(input, tags.use).toBeGreaterThan(0);
  expect(valueOf(metrics, M.geminiInputTokens.name, tags), tags.use).toBe(input);
  expect(valueOf(metrics, M.geminiOutputTokens.name, tags), tags.use).toBe(output);
  const price = priceFor(tags.model);
  expect(price.known).toBe(true);
  const nanodollars = calls.reduce((n, r) => n + Math.round(usageCost(r.usage?.promptTokenCount ?? 0, (r.usage?.candidatesTokenCount ?? 0) + (r.usage?.thoughtsTokenCount ?? 0), price.price).costUsd * 1e9), 0);
  expect(valueOf(metrics, M.geminiCost.name, tags), tags.use).toBe(nanodollars);
}

interface WorkerProcess {
  proc: StartedProcess;
  metricsAddress: string;
  taskQueue: string;
  logFile: string;
}

/**
 * Real worker processes (`vla worker cpu` and `vla worker gemini`, as deployed) serving their
 * Prometheus endpoint on VLA_METRICS_ADDRESS: the SDK's metrics come with the runtime, and the
 * pipelines' counters equal what the runs did.
 */
describe('worker processes serve Prometheus metrics (the SDK runtime and the pipelines)', () => {
  const store = new FileStore();
  let env: TemporalTestEnv;
  let gemini: GeminiServer;
  let dir: string;
  let datasetUri: string;
  let spoonIds: string[];
  let cpu: WorkerProcess;
  let model: WorkerProcess;
  const stations: StationProcess[] = [];

  async function startWorker(kind: 'cpu' | 'gemini', extraEnv: Record<string, string>, extraArgs: string[] = []): Promise<WorkerProcess> {
    const taskQueue = uniqueTaskQueue(`metrics-${kind}`);
    const metricsAddress = `127.0.0.1:${await getPort({ host: '127.0.0.1' })}`;
    const workerEnv: NodeJS.ProcessEnv = {
      ...process.env,
      TEMPORAL_ADDRESS: inject('temporal').address,
      TEMPORAL_NAMESPACE: env.namespace,
      VLA_STATE_DIR: join(dir, 'state'),
      VLA_STORE_URI: fileUri(dir),
      VLA_METRICS_ADDRESS: metricsAddress,
      ...extraEnv,
    };
    delete workerEnv.VLA_STORE_ROOTS;
    delete workerEnv.OTEL_EXPORTER_OTLP_ENDPOINT;
    const logFile = join(dir, `worker-${kind}.log`);
    const proc = startProcess(join(REPO_ROOT, 'node_modules', '.bin', 'tsx'), [join(REPO_ROOT, 'cli', 'main.ts'), 'worker', kind, '--task-queue', taskQueue, ...extraArgs], {
      logFile,
      env: workerEnv,
      cwd: REPO_ROOT,
      detached: true,
    });
    await waitForPollers(loadConfig(workerEnv), taskQueue, 'activity', proc.pid, logFile, 180_000);
    return { proc, metricsAddress, taskQueue, logFile };
  }

  beforeAll(async () => {
    env = await connectTestTemporal();
    gemini = await createGeminiServer({ apiKey: API_KEY, thoughtsTokens: 7 });
    dir = mkdtempSync(join(tmpdir(), 'vla-worker-metrics-'));
    datasetUri = fileUri(join(dir, 'sim'));
    await simulateSample(store, datasetUri, ['put the carrot on the plate', 'pick up the eggplant', 'put the spoon on the towel'], 2, 3);
    spoonIds = (await readManifest(store, datasetUri)).trajectories.map((t) => t.id).filter((id) => id.includes('spoon'));
    const bundleFile = join(dir, 'workflow-bundle.js');
    writeFileSync(bundleFile, (await workflowBundle()).code);
    [cpu, model] = await Promise.all([
      startWorker('cpu', { VLA_WORKFLOW_BUNDLE: bundleFile }),
      startWorker('gemini', { GEMINI_API_KEY: API_KEY, GOOGLE_GEMINI_BASE_URL: gemini.baseUrl }, ['--rate', '50']),
    ]);
  }, 300_000);
  afterAll(async () => {
    for (const w of [cpu, model]) if (w) await stopProcess(w.proc.pid, { graceMs: 10_000, group: true });
    await Promise.all(stations.map((s) => s.stop()));
    await env?.close();
    await gemini?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a heuristic relabel: the SDK metrics and one labelled count per record written', { timeout: 240_000 }, async () => {
    const before = await scrape(cpu.metricsAddress);
    // Served from the start: the runtime's pollers and slots.
    expect(valueOf(before, 'temporal_num_pollers', { task_queue: cpu.taskQueue })).toBeGreaterThan(0);
    expect(valueOf(before, M.trajectoriesLabelled.name, { labeler: 'heuristic' })).toBeUndefined();

    const result = await env.client.workflow.execute<typeof relabelDataset>('relabelDataset', {
      taskQueue: cpu.taskQueue,
      workflowId: `${cpu.taskQueue}-heuristic`,
      args: [{ datasetUri, outputUri: fileUri(join(dir, 'labels-heuristic')) }],
    });
    expect(result.counts).toMatchObject({ total: 6, done: 6, quarantined: 0, failed: 0 });

    const after = await scrape(cpu.metricsAddress);
    expect(valueOf(after, M.trajectoriesLabelled.name, { labeler: 'heuristic', taskQueue: cpu.taskQueue })).toBe(6);
    expect(valueOf(after, M.trajectoriesQuarantined.name)).toBeUndefined();
    // The SDK's own: activity and workflow task latencies (histograms) and poll outcomes.
    expect(valueOf(after, 'temporal_activity_execution_latency_count', { activity_type: 'writeRelabelRecord' })).toBe(6);
    expect(valueOf(after, 'temporal_workflow_task_execution_latency_count', { workflow_type: 'relabelTrajectory' })).toBeGreaterThanOrEqual(6);
    expect(valueOf(after, 'temporal_workflow_completed', { workflow_type: 'relabelDataset' })).toBe(1);
    expect(after.some((s) => s.name.startsWith('temporal_worker_task_slots_available'))).toBe(true);

    // Running it again writes nothing new, so nothing more is counted.
    const again = await env.client.workflow.execute<typeof relabelDataset>('relabelDataset', {
      taskQueue: cpu.taskQueue,
      workflowId: `${cpu.taskQueue}-heuristic-again`,
      args: [{ datasetUri, outputUri: fileUri(join(dir, 'labels-heuristic')) }],
    });
    expect(again.counts.skipped + again.counts.done).toBe(6);
    expect(valueOf(await scrape(cpu.metricsAddress), M.trajectoriesLabelled.name, { labeler: 'heuristic' })).toBe(6);
  });

  it('a Gemini relabel: labelled and quarantined counts, tokens as the server reported them, spend as the ledger', { timeout: 300_000 }, async () => {
    gemini.reset();
    gemini.scriptFor(/Instruction: ".*spoon/, 'safety'); // every answer about the spoon is blocked: quarantined
    gemini.scriptFor(/Instruction: ".*carrot/, 'schema_violation', 1); // one bad answer, then a good one
    const result = await env.client.workflow.execute<typeof relabelDataset>('relabelDataset', {
      taskQueue: cpu.taskQueue,
      workflowId: `${cpu.taskQueue}-gemini`,
      args: [{ datasetUri, outputUri: fileUri(join(dir, 'labels-gemini')), labeler: GEMINI, maxReprompts: 1, geminiTaskQueue: model.taskQueue, maxConcurrent: 3 }],
    });
    expect(result.counts).toMatchObject({ total: 6, done: 4, quarantined: 2, failed: 0 });
    expect(result.quarantined.map((q) => q.trajectoryId).sort()).toEqual([...spoonIds].sort());

    const cpuMetrics = await scrape(cpu.metricsAddress);
    expect(valueOf(cpuMetrics, M.trajectoriesLabelled.name, { labeler: 'gemini' })).toBe(4);
    expect(valueOf(cpuMetrics, M.trajectoriesQuarantined.name, { labeler: 'gemini' })).toBe(2);

    const geminiMetrics: Sample[] = await scrape(model.metricsAddress);
    const tags = { model: GEMINI.model, use: 'relabel' };
    const reported = gemini.requests.map((r) => r.usage ?? {});
    const input = reported.reduce((n, u) => n + (u.promptTokenCount ?? 0), 0);
    const output = reported.reduce((n, u) => n + (u.candidatesTokenCount ?? 0) + (u.thoughtsTokenCount ?? 0), 0);
    expect(gemini.requests).toHaveLength(6 + 1 + 2); // a first answer each, one re-prompt for a carrot, one for each spoon
    expect(input).toBeGreaterThan(0);
    expect(valueOf(geminiMetrics, M.geminiInputTokens.name, tags)).toBe(input);
    expect(valueOf(geminiMetrics, M.geminiOutputTokens.name, tags)).toBe(output);
    // The ledger: the run's usage, summed by the workflows from each call's cost.
    expect(valueOf(geminiMetrics, M.geminiInputTokens.name, tags)).toBe(result.usage.inputTokens);
    expect(valueOf(geminiMetrics, M.geminiOutputTokens.name, tags)).toBe(result.usage.outputTokens);
    expect(Math.abs(valueOf(geminiMetrics, M.geminiCost.name, tags)! - result.usage.costUsd * 1e9)).toBeLessThan(1);
    expect(valueOf(geminiMetrics, 'temporal_activity_execution_latency_count', { activity_type: 'labelGemini' })).toBe(gemini.requests.length);
  });

  it('a station worker: episode stage latencies from the workflow, the station available, then not when its arm stops answering', { timeout: 300_000 }, async () => {
    const storeUri = fileUri(join(dir, 'store'));
    const metricsAddress = `127.0.0.1:${await getPort({ host: '127.0.0.1' })}`;
    const station = await startStationProcess({ stateDir: join(dir, 'state'), storeUri, env: { VLA_METRICS_ADDRESS: metricsAddress } });
    stations.push(station);
    // Available from the start, before any episode.
    expect(valueOf(await scrape(metricsAddress), M.stationAvailable.name, { station: station.stationId })).toBe(1);

    // The Gemini verifier (on the Gemini worker process) judges every chunk: its spend is counted there.
    gemini.reset();
    gemini.scriptFor((r) => r.model === VERIFIER_MODEL, { text: JSON.stringify({ decision: 'proceed', reason: 'the gripper is where the subtask wants it' }) });
    const workflowId = `${station.stationId}-episode`;
    const result = RobotEpisodeResult.parse(
      await env.client.workflow.execute<typeof robotEpisode>('robotEpisode', {
        taskQueue: `vla-station-${station.stationId}`,
        workflowId,
        args: [
          {
            stationId: station.stationId,
            outputUri: joinUri(storeUri, 'episodes', workflowId),
            instruction: 'put the carrot on the plate',
            seed: 3,
            policy: { kind: 'scripted', seed: 1, actionStdMeters: 0, formatErrorRate: 0 },
            verifier: { kind: 'gemini', model: VERIFIER_MODEL, taskQueue: model.taskQueue },
          },
        ],
      }),
    );
    expect(result.outcome).toBe('completed');
    const record = await getJson(store, result.recordUri, EpisodeRecord);
    expect(record.cycles.map((c) => c.verdict.by)).toEqual(record.cycles.map(() => `gemini:${VERIFIER_MODEL}`));
    const verifierCalls = gemini.requests.filter((r) => r.model === VERIFIER_MODEL);
    expect(verifierCalls).toHaveLength(record.cycles.length);
    expectSpend(await scrape(model.metricsAddress), { model: VERIFIER_MODEL, use: 'verifier' }, verifierCalls);
    const metrics = await scrape(metricsAddress);
    // One observation per stage and cycle the episode recorded, in seconds.
    for (const stage of ['motion_plan', 'action', 'execute', 'verify', 'cycle']) {
      const recorded = record.cycles.flatMap((c) => c.latencies).filter((l) => l.stage === stage);
      expect(recorded.length, stage).toBeGreaterThan(0);
      expect(valueOf(metrics, `${M.episodeStageDuration.name}_count`, { stage, workflowType: 'robotEpisode' }), stage).toBe(recorded.length);
      const seconds = recorded.reduce((sum, l) => sum + l.ms, 0) / 1000;
      expect(valueOf(metrics, `${M.episodeStageDuration.name}_sum`, { stage })!, stage).toBeCloseTo(seconds, 6);
    }
    // The project's buckets (seconds), not the SDK's default ones (milliseconds).
    expect(metrics.filter((s) => s.name === `${M.episodeStageDuration.name}_bucket` && s.labels.stage === 'cycle').map((s) => s.labels.le)).toContain('0.5');
    expect(valueOf(metrics, M.stationAvailable.name, { station: station.stationId })).toBe(1);

    // A real-arm station whose arm server is gone: the first reset finds nobody, and the gauge says so.
    const goneAddress = `127.0.0.1:${await getPort({ host: '127.0.0.1' })}`;
    const gone = await startStationProcess({ stateDir: join(dir, 'state'), storeUri, url: `http://127.0.0.1:${await closedPort()}`, env: { VLA_METRICS_ADDRESS: goneAddress } });
    stations.push(gone);
    expect(valueOf(await scrape(goneAddress), M.stationAvailable.name, { station: gone.stationId })).toBe(1);
    const goneId = `${gone.stationId}-episode`;
    const handle = await env.client.workflow.start<typeof robotEpisode>('robotEpisode', {
      taskQueue: `vla-station-${gone.stationId}`,
      workflowId: goneId,
      args: [{ stationId: gone.stationId, outputUri: joinUri(storeUri, 'episodes', goneId), instruction: 'put the carrot on the plate', policy: { kind: 'scripted', seed: 1, actionStdMeters: 0, formatErrorRate: 0 }, verifier: { kind: 'operator' } }],
    });
    let available: number | undefined = 1;
    for (let i = 0; i < 300 && available !== 0; i++) {
      await sleep(200);
      available = valueOf(await scrape(goneAddress), M.stationAvailable.name, { station: gone.stationId });
    }
    expect(available).toBe(0);
    await handle.terminate('the test is done with it').catch(() => undefined);
  });

  it('a VQA sweep: predictions made and items scored per benchmark; a re-run predicts nothing new', { timeout: 300_000 }, async () => {
    const samples = join(REPO_ROOT, 'data', 'samples', 'vqa-samples');
    const server = await createOpenAIServer({ models: ['served-vlm'], answer: () => 'A' });
    try {
      const input: z.input<typeof VqaSweepInput> = {
        models: [
          { name: 'served', backend: 'openai', baseUrl: server.baseUrl, model: 'served-vlm' },
          { name: 'gemini-lite', backend: 'gemini', model: VQA_MODEL },
        ],
        benchmarks: [
          { benchmark: 'mmbench-en', uri: fileUri(join(samples, 'mmbench')) },
          { benchmark: 'ai2d', uri: fileUri(join(samples, 'mmmu-pro-ai2d')) },
        ],
        outputUri: fileUri(join(dir, 'vqa')),
        limit: 3,
        taskQueues: { openai: cpu.taskQueue, gemini: model.taskQueue, local: cpu.taskQueue },
      };
      const sweep = (n: number) => env.client.workflow.execute<typeof vqaSweep>('vqaSweep', { taskQueue: cpu.taskQueue, workflowId: `${cpu.taskQueue}-vqa-${n}`, args: [input] });
      gemini.reset();
      gemini.scriptFor((r) => r.model === VQA_MODEL, { text: 'A' });
      const first = await sweep(1);
      expect(first.predictions.made).toBe(12);
      let metrics = await scrape(cpu.metricsAddress);
      let geminiMetrics = await scrape(model.metricsAddress);
      for (const benchmark of ['mmbench-en', 'ai2d']) {
        // Predictions are counted where they are made: the OpenAI model's on the CPU worker, Gemini's on the Gemini worker.
        expect(valueOf(metrics, M.vqaPredictions.name, { benchmark }), benchmark).toBe(3);
        expect(valueOf(geminiMetrics, M.vqaPredictions.name, { benchmark }), benchmark).toBe(3);
        expect(valueOf(metrics, M.vqaItemsScored.name, { benchmark }), benchmark).toBe(6);
      }
      const answered = gemini.requests.filter((r) => r.model === VQA_MODEL && r.path.endsWith(':generateContent') && r.usage !== undefined);
      expect(answered.length).toBeGreaterThanOrEqual(6);
      expectSpend(geminiMetrics, { model: VQA_MODEL, use: 'vqa' }, answered);
      const second = await sweep(2);
      expect(second.predictions.made).toBe(0);
      metrics = await scrape(cpu.metricsAddress);
      geminiMetrics = await scrape(model.metricsAddress);
      for (const benchmark of ['mmbench-en', 'ai2d']) {
        expect(valueOf(metrics, M.vqaPredictions.name, { benchmark }), benchmark).toBe(3);
        expect(valueOf(metrics, M.vqaItemsScored.name, { benchmark }), benchmark).toBe(12);
      }
      // Nothing was asked again, so nothing more was spent.
      expectSpend(geminiMetrics, { model: VQA_MODEL, use: 'vqa' }, answered);
    } finally {
      await server.close();
    }
  });
});
