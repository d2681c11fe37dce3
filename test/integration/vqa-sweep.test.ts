import { ScheduleOverlapPolicy } from '@temporalio/client';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createObjectStore, FileStore, getJson } from '../../activities/store';
import { withBrowserPage } from '../../activities/vqa/browser';
import { ITEMS_FILE, loadBenchmark } from '../../activities/vqa/loaders';
import { BENCHMARKS } from '../../activities/vqa/scoring';
import { buildTinyModel } from '../../cli/commands/train';
import { fileUri, joinUri, relativeTo } from '../../data-schemas/uri';
import { VqaItem, VqaPrediction, VqaSweepResult, type BenchmarkId, type NightlyEvaluationInputRaw, type VqaSweepInput, type VqaSweepInputRaw } from '../../data-schemas/vqa';
import type { TrainLoraResult } from '../../data-schemas/training';
import { ensureNightlySchedule } from '../../infra/schedules';
import { loadConfig, REPO_ROOT } from '../../infra/config';
import { ensurePythonEnv } from '../../infra/python';
import type { PythonEnv } from '../../activities/runtime/python-env';
import { createCpuWorker } from '../../workers/cpu';
import type { nightlyEvaluation, vqaSweep } from '../../workflows';
import { INVALID_WORKFLOW_INPUT } from '../../workflows/input';
import { VlaRetentionGate } from '../../workflows/search-attributes';
import { createOpenAIServer, type OpenAIServer } from '../fixtures/openai-server';
import { ensureLmmsEvalEnv, lmmsEvalReads } from '../helpers/lmms-eval';
import { connectTestTemporal, recordHistory, uniqueTaskQueue, workflowBundle, type TemporalTestEnv } from '../helpers/temporal';
import { applicationFailureOf } from '../helpers/failures';
import { withCpuAndGpuWorkers } from '../helpers/workers';

const exec = promisify(execFile);
const SAMPLES = join(REPO_ROOT, 'data', 'samples', 'vqa-samples');

/** A LoRA adapter with non-zero weights for the tiny model (what a short trainLora run would give); argv[3]: the seed (default 1). */
const MAKE_ADAPTER = `
import sys, torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForImageTextToText
torch.manual_seed(int(sys.argv[3]) if len(sys.argv) > 3 else 1)
lora = LoraConfig(r=4, lora_alpha=16, target_modules=r".*language_model.*\\.(q_proj|v_proj)", init_lora_weights=False)
get_peft_model(AutoModelForImageTextToText.from_pretrained(sys.argv[1]), lora).save_pretrained(sys.argv[2])
`;

describe('vqaSweep: models x benchmarks through real workers, predictions stored per item, report checked in Chromium', () => {
  const store = new FileStore();
  let env: TemporalTestEnv;
  let dir: string;
  let python: PythonEnv;
  let baseModel: string;
  let adapter: string;
  let server: OpenAIServer;
  /** prompt text -> the right answer, so the served "oracle" model is always right. */
  const oracle = new Map<string, string>();

  const sources = (): VqaSweepInput['benchmarks'] => [
    { benchmark: 'mmbench-en', uri: fileUri(join(SAMPLES, 'mmbench')) },
    { benchmark: 'ai2d', uri: fileUri(join(SAMPLES, 'mmmu-pro-ai2d')) },
  ];

  beforeAll(async () => {
    env = await connectTestTemporal();
    dir = mkdtempSync(join(tmpdir(), 'vla-vqa-sweep-'));
    python = await ensurePythonEnv(loadConfig().cacheDir);
    baseModel = await buildTinyModel(join(dir, 'tiny-vlm'), loadConfig().cacheDir);
    adapter = join(dir, 'adapter');
    await exec(python.python, ['-c', MAKE_ADAPTER, baseModel, adapter], { env: { ...python.env, HF_HUB_OFFLINE: '1' } });
    for (const source of sources()) {
      for (const { item } of await loadBenchmark(store, source.benchmark, source.uri)) {
        oracle.set(BENCHMARKS[source.benchmark].prompt({ ...item, images: ['x.png'] }), item.answers[0]!);
      }
    }
    server = await createOpenAIServer({ models: ['oracle-vlm'], answer: (req) => oracle.get(req.promptText) ?? 'Z' });
  }, 600_000);

  afterAll(async () => {
    await server?.close();
    await env?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** The stored prediction objects of a (model, benchmark): `<item>.<key>.json`. */
  async function predictionUris(outputUri: string, model: string, benchmark: BenchmarkId): Promise<string[]> {
    const uris: string[] = [];
    for await (const info of store.list(`${joinUri(outputUri, 'predictions', model, benchmark)}/`)) uris.push(info.uri);
    return uris.sort();
  }
  const chats = (): number => server.requests.filter((r) => r.path.endsWith('/chat/completions')).length;

  const withWorkers = <T>(fn: (queues: { cpu: string; gpu: string }) => Promise<T>): Promise<T> =>
    withCpuAndGpuWorkers(env, { store, workDir: join(dir, 'gpu-work'), python }, fn);

  const sweepInput = (queues: { cpu: string; gpu: string }, outputUri: string): VqaSweepInputRaw => ({
    models: [
      { name: 'tiny-base', backend: 'local', baseModel },
      { name: 'tiny-lora', backend: 'local', baseModel, adapter, baseOf: 'tiny-base' },
      { name: 'oracle', backend: 'openai', baseUrl: server.baseUrl, model: 'oracle-vlm' },
    ],
    benchmarks: sources(),
    outputUri,
    limit: 4,
    concurrency: 4,
    batchSize: 3,
    maxConcurrentEvaluations: 6,
    taskQueues: { openai: queues.cpu, gemini: queues.cpu, local: queues.gpu },
  });


  it('scores every (model, benchmark), computes retention, writes a report a browser shows, and a re-run redoes no item', async () => {
    await withWorkers(async (queues) => {
      const outputUri = fileUri(join(dir, 'sweep-a'));
      const input = sweepInput(queues, outputUri);
      const result = await env.client.workflow.execute<typeof vqaSweep>('vqaSweep', { taskQueue: queues.cpu, workflowId: `vqa-${randomUUID()}`, args: [input] });
      expect(VqaSweepResult.parse(result)).toEqual(result);
      const benchmarks: BenchmarkId[] = ['mmbench-en', 'ai2d'];
      for (const model of ['tiny-base', 'tiny-lora', 'oracle']) for (const b of benchmarks) expect(result.scores[model]?.[b]?.items).toBe(4);
      // The served oracle answers every item right; scoring is the benchmarks' own rules.
      expect(result.scores.oracle?.['mmbench-en']?.value).toBe(100);
      expect(result.scores.oracle?.ai2d?.value).toBe(100);
      expect(result.retention).toHaveLength(1);
      expect(result.retention[0]).toMatchObject({ model: 'tiny-lora', base: 'tiny-base' });
      expect(result.predictions.made).toBe(3 * 2 * 4);
      expect(server.requests.filter((r) => r.path.endsWith('/chat/completions'))).toHaveLength(8);

      // Every prediction is stored per item and key, with the prompt the benchmark defines.
      const items = (await store.get(joinUri(result.itemSets['mmbench-en']!, ITEMS_FILE))).toString('utf8').trim().split('\n').map((l) => VqaItem.parse(JSON.parse(l)));
      expect(items).toHaveLength(4);
      const loraFiles = await predictionUris(outputUri, 'tiny-lora', 'mmbench-en');
      expect(loraFiles).toHaveLength(4);
      const stored = await getJson(store, loraFiles.find((u) => u.includes(`/${items[0]!.id}.`))!, VqaPrediction);
      expect(stored.prompt).toBe(BENCHMARKS['mmbench-en'].prompt(items[0]!));
      // The local backend marks an answer cut at max_new_tokens.
      if (stored.truncated) expect(stored.usage?.outputTokens).toBe(stored.generation.maxNewTokens);
      for (const model of ['tiny-base', 'tiny-lora', 'oracle']) for (const b of benchmarks) expect(result.scores[model]?.[b]?.stderr).toBeGreaterThanOrEqual(0);
      expect(result.scores.oracle?.ai2d?.stderr).toBe(0);

      await withBrowserPage(async (page) => {
        await page.goto(result.reportUri);
        expect(await page.locator('#scores tr[data-model="oracle"] td[data-benchmark="ai2d"]').innerText()).toBe('100.0 ± 0.0');
        expect(await page.locator('#retention tr[data-retention="tiny-lora"]').count()).toBe(1);
        expect(await page.locator('#chart rect.bar').count()).toBe(6);
        // The report links each model's lmms-eval files, relative to itself.
        expect(await page.locator('#lmms-eval li[data-model="oracle"] a').allInnerTexts()).toEqual(['results', 'mmbench-en samples', 'ai2d samples']);
        expect(await page.locator('#lmms-eval li[data-model="oracle"] a').first().getAttribute('href')).toBe(relativeTo(outputUri, result.lmmsEval.oracle!.results));
      });
      expect((await store.head(result.chartUri))?.bytes).toBeGreaterThan(1000);
      // lmms-eval's files of every model: a results file and a per-sample file per benchmark, in its per-model folder.
      expect(Object.keys(result.lmmsEval).sort()).toEqual(['oracle', 'tiny-base', 'tiny-lora']);
      for (const [model, files] of Object.entries(result.lmmsEval)) {
        expect(files.results).toMatch(new RegExp(`/lmms-eval/${model}/\\d{8}_\\d{6}_results\\.json$`));
        expect(Object.keys(files.samples).sort()).toEqual(['ai2d', 'mmbench-en']);
        expect(files.samples['mmbench-en']).toMatch(/_samples_mmbench_en_dev\.jsonl$/);
        for (const uri of [files.results, ...Object.values(files.samples)]) expect(await store.head(uri)).toBeTruthy();
      }

      // Half the oracle's predictions lost (a crashed worker's unfinished items): only they are redone.
      const before = chats();
      for (const uri of (await predictionUris(outputUri, 'oracle', 'mmbench-en')).slice(0, 2)) await store.delete(uri);
      const again = await env.client.workflow.execute<typeof vqaSweep>('vqaSweep', { taskQueue: queues.cpu, workflowId: `vqa-${randomUUID()}`, args: [input] });
      expect(again.predictions).toEqual({ made: 2, reused: 3 * 2 * 4 - 2, truncated: result.predictions.truncated, withheld: 0 });
      expect(chats() - before).toBe(2);
      expect(again.scores).toEqual(result.scores);

      // New weights behind the same adapter path (a re-trained run): the fine-tuned model predicts
      // again, on the warm GPU worker; the base and the oracle are reused; the old answers stay.
      await exec(python.python, ['-c', MAKE_ADAPTER, baseModel, adapter, '2'], { env: { ...python.env, HF_HUB_OFFLINE: '1' } });
      const retrained = await env.client.workflow.execute<typeof vqaSweep>('vqaSweep', { taskQueue: queues.cpu, workflowId: `vqa-${randomUUID()}`, args: [input] });
      expect(retrained.predictions).toMatchObject({ made: 2 * 4, reused: 2 * 2 * 4 });
      expect(await predictionUris(outputUri, 'tiny-lora', 'mmbench-en')).toHaveLength(2 * 4);
      const fresh = await Promise.all((await predictionUris(outputUri, 'tiny-lora', 'mmbench-en')).map((u) => getJson(store, u, VqaPrediction)));
      expect(new Set(fresh.map((p) => p.modelKey)).size).toBe(2);
      await withBrowserPage(async (page) => {
        await page.goto(retrained.reportUri);
        expect(await page.locator('#predictions').innerText()).toBe(
          'Predictions: 8 made by this run, 16 reused from earlier runs (same model content, prompt, settings and item).',
        );
      });
    });
    // Three models x two benchmarks, a re-run and a retrained adapter on the tiny local model: ~75 s
    // on a 2-core machine with other tests running beside it, 330-460 s when the machine is loaded
    // several times over; 600 s keeps it a test of behaviour, not of the machine's load.
  }, 600_000);

  it('honours limit (2, then 4 predicts the 2 new items) and counts answers cut at the token limit as wrong, the same way for every backend', async () => {
    await withWorkers(async (queues) => {
      const outputUri = fileUri(join(dir, 'sweep-limit'));
      const input = (limit: number): VqaSweepInputRaw => ({
        ...sweepInput(queues, outputUri),
        models: [{ name: 'oracle', backend: 'openai', baseUrl: server.baseUrl, model: 'oracle-vlm' }],
        benchmarks: [{ benchmark: 'ai2d', uri: fileUri(join(SAMPLES, 'mmmu-pro-ai2d')) }],
        limit,
      });
      const run = (limit: number) => env.client.workflow.execute<typeof vqaSweep>('vqaSweep', { taskQueue: queues.cpu, workflowId: `vqa-${randomUUID()}`, args: [input(limit)] });
      // The third item's answer starts right but rambles past max_tokens: the server stops it ("length").
      const items = (await loadBenchmark(store, 'ai2d', fileUri(join(SAMPLES, 'mmmu-pro-ai2d')))).map((l) => l.item);
      const rambling = BENCHMARKS.ai2d.prompt({ ...items[2]!, images: ['x.png'] });
      server.setAnswer((req) => (req.promptText === rambling ? `${items[2]!.answers[0]} because ${'it is so '.repeat(400)}` : (oracle.get(req.promptText) ?? 'Z')));
      try {
        const two = await run(2);
        expect(two.scores.oracle?.ai2d).toMatchObject({ items: 2, value: 100, truncated: 0, stderr: 0 });
        const four = await run(4);
        expect(four.scores.oracle?.ai2d).toMatchObject({ items: 4, value: 75, truncated: 1, missing: 0, stderrMethod: 'mean' });
        // [1, 1, 0, 1]: sample sd 0.5, / sqrt(4), in %.
        expect(four.scores.oracle?.ai2d?.stderr).toBeCloseTo(25, 10);
        expect(four.predictions).toEqual({ made: 2, reused: 2, truncated: 1, withheld: 0 });
        expect(four.itemSets.ai2d).not.toBe(two.itemSets.ai2d);
        const truncated = (await Promise.all((await predictionUris(outputUri, 'oracle', 'ai2d')).map((u) => getJson(store, u, VqaPrediction)))).filter((p) => p.truncated);
        expect(truncated.map((p) => p.itemId)).toEqual([items[2]!.id]);
        // lmms-eval's own code reads the lmms-eval files and, aggregating the per-sample metrics, gets the sweep's score.
        const lmms = four.lmmsEval.oracle!;
        const reads = await lmmsEvalReads((await ensureLmmsEvalEnv(loadConfig().cacheDir, python)).python, fileURLToPath(lmms.results));
        expect(Object.keys(reads.tasks)).toEqual(['ai2d']);
        expect(reads.tasks.ai2d).toMatchObject({ n_samples: 4, n_effective: 4, loaded_rows: 4, doc_ids: [0, 1, 2, 3] });
        expect(reads.tasks.ai2d?.loaded_columns).toEqual(expect.arrayContaining(['doc_id', 'target', 'filtered_resps', 'exact_match', 'doc_hash', 'input']));
        expect(reads.tasks.ai2d?.metrics['exact_match,flexible-extract']).toEqual({ file: 0.75, lmms_eval: 0.75 });
        const stderr = reads.tasks.ai2d?.metrics['exact_match_stderr,flexible-extract'];
        expect(stderr?.lmms_eval).toBeCloseTo(0.25, 12);
        expect(stderr?.file).toBeCloseTo(0.25, 12);
        await withBrowserPage(async (page) => {
          await page.goto(four.reportUri);
          expect(await page.locator('#truncated .count').innerText()).toBe('1');
        });
      } finally {
        server.setAnswer((req) => oracle.get(req.promptText) ?? 'Z');
      }
    });
  }, 180_000);

  it('stores an answer the provider withheld (content filter) as withheld, scores it as wrong and counts it', async () => {
    await withWorkers(async (queues) => {
      const outputUri = fileUri(join(dir, 'sweep-withheld'));
      const input: VqaSweepInputRaw = {
        ...sweepInput(queues, outputUri),
        models: [{ name: 'oracle', backend: 'openai', baseUrl: server.baseUrl, model: 'oracle-vlm' }],
        benchmarks: [{ benchmark: 'ai2d', uri: fileUri(join(SAMPLES, 'mmmu-pro-ai2d')) }],
        limit: 2,
      };
      // The next chat answer is withheld; the other item gets the oracle's right answer.
      server.script({ text: '', finishReason: 'content_filter' });
      const result = await env.client.workflow.execute<typeof vqaSweep>('vqaSweep', { taskQueue: queues.cpu, workflowId: `vqa-${randomUUID()}`, args: [input] });
      expect(result.scores.oracle?.ai2d).toMatchObject({ items: 2, value: 50, truncated: 0, withheld: 1, missing: 0 });
      expect(result.predictions).toEqual({ made: 2, reused: 0, truncated: 0, withheld: 1 });
      const stored = await Promise.all((await predictionUris(outputUri, 'oracle', 'ai2d')).map((u) => getJson(store, u, VqaPrediction)));
      const withheld = stored.filter((p) => p.withheld !== undefined);
      expect(withheld).toHaveLength(1);
      expect(withheld[0]).toMatchObject({ response: '', truncated: false });
      expect(withheld[0]!.withheld).toContain('finish_reason content_filter');
      await withBrowserPage(async (page) => {
        await page.goto(result.reportUri);
        expect(await page.locator('#withheld .count').innerText()).toBe('1');
      });
    });
  }, 180_000);

  it("writes each model's lmms-eval files, which lmms-eval's own code reads back to the sweep's AI2D and MMMU scores", async () => {
    await withWorkers(async (queues) => {
      const source = fileUri(join(SAMPLES, 'mmmu-pro-ai2d'));
      const outputUri = fileUri(join(dir, 'sweep-lmms-eval'));
      const input: VqaSweepInputRaw = {
        ...sweepInput(queues, outputUri),
        models: [{ name: 'oracle', backend: 'openai', baseUrl: server.baseUrl, model: 'oracle-vlm' }],
        benchmarks: [
          { benchmark: 'ai2d', uri: source },
          { benchmark: 'mmmu', uri: source },
        ],
        limit: 4,
      };
      // The oracle answers every AI2D item right and the first MMMU item wrong (a letter it does not hold).
      const mmmuItems = (await loadBenchmark(store, 'mmmu', source)).map((l) => l.item).slice(0, 4);
      const answers = new Map(oracle);
      for (const [n, item] of mmmuItems.entries()) answers.set(BENCHMARKS.mmmu.prompt({ ...item, images: ['x.png'] }), n === 0 ? (item.answers[0] === 'A' ? 'B' : 'A') : item.answers[0]!);
      server.setAnswer((req) => answers.get(req.promptText) ?? 'Z');
      try {
        const result = await env.client.workflow.execute<typeof vqaSweep>('vqaSweep', { taskQueue: queues.cpu, workflowId: `vqa-${randomUUID()}`, args: [input] });
        expect(result.scores.oracle?.ai2d?.value).toBe(100);
        expect(result.scores.oracle?.mmmu?.value).toBe(75);
        const files = result.lmmsEval.oracle!;
        expect(Object.keys(files.samples)).toEqual(['ai2d', 'mmmu']);
        expect(files.samples.mmmu).toMatch(/\/lmms-eval\/oracle\/\d{8}_\d{6}_samples_mmmu_val\.jsonl$/);
        const reads = await lmmsEvalReads((await ensureLmmsEvalEnv(loadConfig().cacheDir, python)).python, fileURLToPath(files.results));
        expect(Object.keys(reads.tasks).sort()).toEqual(['ai2d', 'mmmu_val']);
        expect(reads.tasks.mmmu_val?.metrics['mmmu_acc,none']).toEqual({ file: 0.75, lmms_eval: 0.75 });
        expect(reads.tasks.ai2d?.metrics['exact_match,flexible-extract']).toEqual({ file: 1, lmms_eval: 1 });
        expect(reads.tasks.ai2d?.metrics['exact_match_stderr,flexible-extract']).toEqual({ file: 0, lmms_eval: 0 });
        for (const task of ['ai2d', 'mmmu_val']) expect(reads.tasks[task]).toMatchObject({ n_samples: 4, n_effective: 4, loaded_rows: 4, doc_ids: [0, 1, 2, 3] });
      } finally {
        server.setAnswer((req) => oracle.get(req.promptText) ?? 'Z');
      }
    });
  }, 180_000);

  it('stages a base model kept as an s3:// directory on the GPU worker; keyed by content, a sweep of the local copy reuses its prediction', async () => {
    const s3 = inject('s3');
    const routing = createObjectStore({ roots: 'unconfined', s3: { endpoint: s3.endpoint, region: s3.region, credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey } } });
    const root = `s3://${s3.bucket}/vqa-models-${randomUUID().slice(0, 8)}`;
    for (const entry of readdirSync(baseModel, { recursive: true, withFileTypes: true }).filter((e) => e.isFile())) {
      const path = join(entry.parentPath, entry.name);
      await routing.put(joinUri(root, 'base', relative(baseModel, path).split(sep).join('/')), readFileSync(path));
    }
    const gpuWorkDir = join(dir, 'gpu-work-s3');
    await withCpuAndGpuWorkers(env, { store: routing, workDir: gpuWorkDir, python }, async (queues) => {
      const run = (base: string, outputUri: string) =>
        env.client.workflow.execute<typeof vqaSweep>('vqaSweep', {
          taskQueue: queues.cpu,
          workflowId: `vqa-${randomUUID()}`,
          args: [
            {
              models: [{ name: 'tiny-base', backend: 'local', baseModel: base }],
              benchmarks: [{ benchmark: 'mmbench-en', uri: fileUri(join(SAMPLES, 'mmbench')) }],
              outputUri,
              limit: 1,
              concurrency: 1,
              taskQueues: { openai: queues.cpu, gemini: queues.cpu, local: queues.gpu },
            },
          ],
        });
      const outputUri = `${root}/sweep`;
      const fromS3 = await run(`${root}/base`, outputUri);
      expect(fromS3.predictions).toMatchObject({ made: 1, reused: 0 });
      const staged = readdirSync(join(gpuWorkDir, 'adapters'));
      expect(staged).toHaveLength(1);
      expect(readFileSync(join(gpuWorkDir, 'adapters', staged[0]!, 'config.json'))).toEqual(readFileSync(join(baseModel, 'config.json')));
      // The same model content from its local folder has the same identity: nothing is predicted again.
      const fromFolder = await run(baseModel, outputUri);
      expect(fromFolder.predictions).toMatchObject({ made: 0, reused: 1 });

      const missing = await applicationFailureOf(run(`${root}/nothing`, `${root}/sweep-missing`));
      expect(missing.type).toBe('BackendCheckFailed');
      expect(missing.message).toContain(`no base model at ${root}/nothing (config.json missing)`);
    });
    // Two sweeps of one item and their local model starts on the tiny model; 300 s leaves a real
    // margin on a 2-core machine shared with other test files.
  }, 300_000);

  it('refuses bad input early, naming it: unknown benchmark, unknown base, wrong layout, unreachable server, a model the server does not serve', async () => {
    await withWorkers(async (queues) => {
      const start = (input: unknown) => env.client.workflow.execute<typeof vqaSweep>('vqaSweep', { taskQueue: queues.cpu, workflowId: `vqa-${randomUUID()}`, args: [input] });
      const base = sweepInput(queues, fileUri(join(dir, 'sweep-bad')));

      const unknown = await applicationFailureOf(start({ ...base, benchmarks: [{ benchmark: 'mmlu', uri: fileUri(SAMPLES) }] }));
      expect(unknown.type).toBe(INVALID_WORKFLOW_INPUT);
      expect(unknown.message).toMatch(/benchmarks\[0\]\.benchmark: Invalid option/);
      const orphan = await applicationFailureOf(start({ ...base, models: [{ ...base.models[1]!, baseOf: 'nobody' }] }));
      expect(orphan.type).toBe(INVALID_WORKFLOW_INPUT);
      expect(orphan.message).toMatch(/models\[0\]\.baseOf: no model named nobody/);

      const layout = await applicationFailureOf(start({ ...base, outputUri: fileUri(join(dir, 'sweep-layout')), benchmarks: [{ benchmark: 'docvqa', uri: fileUri(join(SAMPLES, 'mmbench')) }] }));
      expect(layout.type).toBe('BenchmarkLayout');
      expect(layout.message).toMatch(/mmbench holds no docvqa items/);

      const unreachable = await applicationFailureOf(
        start({ ...base, outputUri: fileUri(join(dir, 'sweep-down')), models: [{ name: 'down', backend: 'openai', baseUrl: 'http://127.0.0.1:9/v1', model: 'x' }] }),
      );
      expect(unreachable.type).toBe('BackendCheckFailed');
      expect(unreachable.message).toMatch(/model down: .*127\.0\.0\.1:9/);

      const notServed = await applicationFailureOf(start({ ...base, outputUri: fileUri(join(dir, 'sweep-ns')), models: [{ name: 'nope', backend: 'openai', baseUrl: server.baseUrl, model: 'not-served' }] }));
      expect(notServed.message).toMatch(/not-served.*is not served/);
    });
  });
});


describe('the nightly evaluation and its Schedule', () => {
  const store = new FileStore();
  let env: TemporalTestEnv;
  let dir: string;
  let python: PythonEnv;

  beforeAll(async () => {
    env = await connectTestTemporal();
    dir = mkdtempSync(join(tmpdir(), 'vla-nightly-'));
    python = await ensurePythonEnv(loadConfig().cacheDir);
  });
  afterAll(async () => {
    await env?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('evaluates the newest finished run against its base, and a night without a new checkpoint ends at once', async () => {
    const baseModel = await buildTinyModel(join(dir, 'tiny-vlm'), loadConfig().cacheDir);
    const runsUri = fileUri(join(dir, 'runs'));
    // A finished trainLora run as the training pipeline leaves it: config.json, adapter/, result.json.
    const runUri = joinUri(runsUri, 'tiny-r1');
    await exec(python.python, ['-c', MAKE_ADAPTER, baseModel, join(dir, 'runs', 'tiny-r1', 'adapter')], { env: { ...python.env, HF_HUB_OFFLINE: '1' } });
    await store.put(joinUri(runUri, 'config.json'), JSON.stringify({ input: { shardsUri: fileUri('/x/shards.json'), baseModel, outputUri: runUri }, gitRevision: 't', shardsManifestSha256: 'a'.repeat(64), createdAt: '2026-11-22T00:00:00Z' }));
    const result: TrainLoraResult = { runUri, adapterUri: joinUri(runUri, 'adapter'), resultUri: joinUri(runUri, 'result.json'), steps: 2, metrics: {}, gitRevision: 't', actionRepresentation: 'language', attempts: 1, resumedFromStep: 0 };
    await store.put(result.resultUri, JSON.stringify(result));

    await withCpuAndGpuWorkers(env, { store, workDir: join(dir, 'gpu-work'), python }, async (queues) => {
      const input: NightlyEvaluationInputRaw = {
        runsUri,
        outputUri: fileUri(join(dir, 'nightly')),
        benchmarks: [{ benchmark: 'ai2d', uri: fileUri(join(SAMPLES, 'mmmu-pro-ai2d')) }],
        limit: 2,
        concurrency: 2,
        localTaskQueue: queues.gpu,
        // Above any ratio two items allow (at most 2 = 100% / 50%): the gate must fail either way. The
        // untrained tiny base answers no item right, so there is no retention to measure at all.
        retentionThreshold: 3,
      };
      const night = (id: string) => env.client.workflow.execute<typeof nightlyEvaluation>('nightlyEvaluation', { taskQueue: queues.cpu, workflowId: id, args: [input] });
      const firstId = `nightly-${randomUUID()}`;
      const first = await night(firstId);
      expect(first).toMatchObject({ status: 'evaluated', run: 'tiny-r1', adapterUri: result.adapterUri, retentionGate: 'failed', retentionThreshold: 3 });
      expect(first.overallRetention).toBe(0);
      expect((await store.head(first.reportUri!))?.bytes).toBeGreaterThan(0);
      expect((await store.get(first.reportUri!)).toString('utf8')).toMatch(/Retention gate FAILED: no benchmark on which \S+ scores above 0, so tiny-r1's retention cannot be measured\./);
      // The failed gate is a search attribute: the alert's list query finds this night (visibility is eventually consistent).
      const query = `WorkflowId = '${firstId}' AND VlaRetentionGate = 'failed'`;
      let found: string[] = [];
      for (let attempt = 0; attempt < 100 && found.length === 0; attempt++) {
        found = [];
        for await (const w of env.client.workflow.list({ query })) found.push(w.workflowId);
        if (found.length === 0) await new Promise((r) => setTimeout(r, 200));
      }
      expect(found).toEqual([firstId]);
      expect((await env.client.workflow.getHandle(firstId).describe()).typedSearchAttributes.get(VlaRetentionGate)).toBe('failed');
      // The night's one child is its sweep, which watches the local backend's queue and runs one vqaEvaluate per model.
      const childIds = async (workflowId: string): Promise<string[]> =>
        ((await env.client.workflow.getHandle(workflowId).fetchHistory()).events ?? []).flatMap((e) => e.childWorkflowExecutionStartedEventAttributes?.workflowExecution?.workflowId ?? []);
      const nightChildren = await childIds(firstId);
      expect(nightChildren).toHaveLength(1);
      const sweepId = nightChildren[0]!;
      const evaluateIds = await childIds(sweepId);
      expect(evaluateIds).toHaveLength(2);
      await recordHistory(env, 'nightlyEvaluation-evaluated', firstId);
      await recordHistory(env, 'vqaSweep-nightly', sweepId);
      await recordHistory(env, 'vqaEvaluate-nightly', evaluateIds[0]!);

      const secondId = `nightly-${randomUUID()}`;
      const second = await night(secondId);
      expect(second).toMatchObject({ status: 'no-new-checkpoint', run: 'tiny-r1', reportUri: first.reportUri });
      const history = await env.client.workflow.getHandle(secondId).fetchHistory();
      expect(history.events?.some((e) => e.startChildWorkflowExecutionInitiatedEventAttributes)).toBe(false);
      await recordHistory(env, 'nightlyEvaluation-no-new-checkpoint', secondId);
    });
    // Builds the tiny model and runs two sweeps through the local backend: ~25 s on an idle 2-core
    // machine, too close to the default 60 s when other tests share it; 180 s leaves ~7x.
  }, 180_000);

  it('the Schedule is created once and updated after, keeps a pause made in the UI, skips overlaps, and a trigger starts a night', async () => {
    const scheduleId = `nightly-${randomUUID().slice(0, 8)}`;
    const queue = uniqueTaskQueue('nightly-schedule');
    const input: NightlyEvaluationInputRaw = {
      runsUri: fileUri(join(dir, 'no-runs-yet')),
      outputUri: fileUri(join(dir, 'nightly-empty')),
      benchmarks: [{ benchmark: 'ai2d', uri: fileUri(join(SAMPLES, 'mmmu-pro-ai2d')) }],
      concurrency: 4,
      localTaskQueue: 'vla-gpu',
    };
    expect(await ensureNightlySchedule(env.client, { scheduleId, input, taskQueue: queue })).toEqual({ scheduleId, created: true });
    const handle = env.client.schedule.getHandle(scheduleId);
    try {
      await handle.pause('paused from the UI');
      expect(await ensureNightlySchedule(env.client, { scheduleId, input, taskQueue: queue, cron: '30 3 * * *', catchupWindow: '12 hours' })).toEqual({ scheduleId, created: false });
      const described = await handle.describe();
      expect(described.state.paused).toBe(true);
      expect(described.spec.calendars?.[0]).toMatchObject({ hour: [{ start: 3, end: 3, step: 1 }], minute: [{ start: 30, end: 30, step: 1 }] });
      expect(described.policies.overlap).toBe(ScheduleOverlapPolicy.SKIP);
      expect(described.policies.catchupWindow).toBe(12 * 3600 * 1000);

      const worker = await createCpuWorker({ connection: env.nativeConnection, namespace: env.namespace, taskQueue: queue, workflowBundle: await workflowBundle(), deps: { store } });
      await worker.runUntil(async () => {
        await handle.trigger();
        for (;;) {
          const recent = (await handle.describe()).info.recentActions;
          const started = recent[0]?.action.workflow;
          if (started) {
            const outcome = await env.client.workflow.getHandle(started.workflowId, started.firstExecutionRunId).result();
            expect(outcome).toEqual({ status: 'no-runs' });
            break;
          }
          await new Promise((r) => setTimeout(r, 200));
        }
      });
    } finally {
      await handle.delete();
    }
  });
});
