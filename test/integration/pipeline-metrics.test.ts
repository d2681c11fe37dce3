import { Runtime } from '@temporalio/worker';
import getPort from 'get-port';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  countGeminiUsage,
  countVqaItemsScored,
  countVqaPredictions,
  HISTOGRAM_BUCKETS,
  PIPELINE_METRICS,
  recordEpisodeStage,
  recordTrainingStep,
} from '../../data-schemas/metrics';
import { REPO_ROOT } from '../../infra/config';
import { installWorkerRuntime } from '../../infra/telemetry';
import { scrape, valueOf } from '../helpers/prometheus';

const M = PIPELINE_METRICS;

/**
 * The emitters through the SDK's real runtime and its Prometheus endpoint, in this test's own
 * process (the runtime is installed once per process; vitest runs each file in its own fork).
 * End to end with worker processes: worker-metrics.test.ts (relabel, Gemini, episode, station)
 * and training-metrics.test.ts (training).
 */
describe('pipeline metrics through the SDK runtime (installWorkerRuntime)', () => {
  let address: string;
  let busy: Server;

  beforeAll(async () => {
    busy = createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    address = `127.0.0.1:${await getPort({ host: '127.0.0.1' })}`;
  });
  afterAll(() => new Promise<void>((resolve) => busy.close(() => resolve())));

  it('refuses an address it cannot serve on, naming the variable (and installs nothing)', () => {
    const taken = busy.address() as { port: number };
    expect(() => installWorkerRuntime(`127.0.0.1:${taken.port}`)).toThrow(/VLA_METRICS_ADDRESS=127\.0\.0\.1:\d+: cannot serve metrics there \(.*in use/);
  });

  it('serves training, VQA, Gemini and episode metrics with their names, labels and units', async () => {
    installWorkerRuntime(address);
    const meter = Runtime.instance().metricMeter;
    recordTrainingStep(meter, { step: 12, loss: 1.25, tokensPerSecond: 345.5 });
    recordTrainingStep(meter, { step: 13, loss: Number.NaN });
    countVqaPredictions(meter, 'mmbench_en', 3);
    countVqaPredictions(meter, 'mmbench_en', 2);
    countVqaPredictions(meter, 'ai2d', 0);
    countVqaItemsScored(meter, 'ai2d', 5);
    countGeminiUsage(meter, { model: 'gemini-2.5-flash', use: 'relabel' }, { inputTokens: 1200, outputTokens: 80, costUsd: 0.00056 });
    countGeminiUsage(meter, { model: 'gemini-2.5-flash', use: 'relabel' }, { inputTokens: 10, outputTokens: 1, costUsd: 0.000005 });
    recordEpisodeStage(meter, 'execute', 420);
    recordEpisodeStage(meter, 'execute', 1800);

    const samples = await scrape(address);
    expect(valueOf(samples, M.trainingStep.name)).toBe(13);
    expect(valueOf(samples, M.trainingLoss.name)).toBe(1.25); // a NaN loss keeps the last real one
    expect(valueOf(samples, M.trainingTokensPerSecond.name)).toBe(345.5);
    expect(valueOf(samples, M.vqaPredictions.name, { benchmark: 'mmbench_en' })).toBe(5);
    expect(valueOf(samples, M.vqaPredictions.name, { benchmark: 'ai2d' })).toBeUndefined();
    expect(valueOf(samples, M.vqaItemsScored.name, { benchmark: 'ai2d' })).toBe(5);
    expect(valueOf(samples, M.geminiInputTokens.name, { model: 'gemini-2.5-flash' })).toBe(1210);
    expect(valueOf(samples, M.geminiOutputTokens.name, { model: 'gemini-2.5-flash' })).toBe(81);
    expect(valueOf(samples, M.geminiCost.name, { model: 'gemini-2.5-flash' })).toBe(565_000);
    expect(valueOf(samples, `${M.episodeStageDuration.name}_count`, { stage: 'execute' })).toBe(2);
    expect(valueOf(samples, `${M.episodeStageDuration.name}_sum`, { stage: 'execute' })).toBeCloseTo(2.22, 9);
    const buckets = samples.filter((s) => s.name === `${M.episodeStageDuration.name}_bucket`);
    expect(buckets.map((s) => s.labels.le)).toEqual([...HISTOGRAM_BUCKETS[M.episodeStageDuration.name]!.map(String), '+Inf']);
    expect(valueOf(samples, `${M.episodeStageDuration.name}_bucket`, { le: '0.5' })).toBe(1);
    expect(valueOf(samples, `${M.episodeStageDuration.name}_bucket`, { le: '2.5' })).toBe(2);
  });

  it('every declared metric follows the naming rules and is listed in the README', () => {
    const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
    for (const m of Object.values(M)) {
      expect(m.name).toMatch(/^vla_[a-z0-9_]+$/);
      expect(m.name.endsWith('_total'), m.name).toBe(m.kind === 'counter');
      expect(m.labels.every((l) => !/_?id$/.test(l)), `${m.name} has no id label`).toBe(true);
      expect(readme, `${m.name} is documented`).toContain(`\`${m.name}\``);
    }
  });
});
