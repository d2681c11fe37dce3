/**
 * Activities of the VQA sweep. Layout under the sweep's `outputUri`:
 *
 *   items/<benchmark>/items.jsonl + images/        the benchmark, materialised (loaders.ts)
 *   predictions/<model>/<benchmark>/<item>.json    one VqaPrediction per item, create-if-absent
 *   scores/<model>/<benchmark>.json                BenchmarkScore, from the stored predictions
 *   report.json, report.html, chart.png            written last
 *
 * A prediction is written once and never redone: a re-run or a retried activity asks which items
 * still lack one and predicts only those.
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { joinUri, relativeTo } from '../../data-schemas/uri';
import {
  BenchmarkId,
  BenchmarkScore,
  ModelSpec,
  VqaItem,
  VqaPrediction,
  type BenchmarkSource,
  type Retention,
  type VqaSweepResult,
} from '../../data-schemas/vqa';
import type { PythonEnv } from '../../infra/python';
import { forEachConcurrent } from '../data/pool';
import { classifyActivityError } from '../failures';
import { getJson, getJsonIfExists, ObjectNotFoundError, putJson, sha256Hex } from '../store';
import type { ObjectStore } from '../store/types';
import { BackendError, createBackend, type InferenceBackend } from './backends/types';
import { screenshotElement } from './browser';
import { BenchmarkLayoutError, ITEMS_FILE, limitItems, loadBenchmark, materializeItems, mimeTypeOf } from './loaders';
import { computeRetention, renderReportHtml, type ScoreTable } from './report';
import { BENCHMARKS } from './scoring';

/** Failure types of the sweep that no retry heals. */
export const VqaFailure = {
  benchmarkLayout: 'BenchmarkLayout',
  backendCheck: 'BackendCheckFailed',
} as const;

export interface VqaDeps {
  store: ObjectStore;
  /** From the worker's environment, never from workflow input. */
  geminiApiKey?: string;
  geminiBaseUrl?: string;
  openaiApiKey?: string;
  /** The Python environment, for the local backend (GPU workers). */
  python?: () => Promise<PythonEnv>;
  /** Where adapters kept in S3 are staged for the local backend. @default `<tmp>/vla-adapters` */
  adapterCacheDir?: string;
}

const itemsRoot = (outputUri: string, benchmark: BenchmarkId): string => joinUri(outputUri, 'items', benchmark);
const predictionsRoot = (outputUri: string, model: string, benchmark: BenchmarkId): string => joinUri(outputUri, 'predictions', model, benchmark);
export const scoreUri = (outputUri: string, model: string, benchmark: BenchmarkId): string => joinUri(outputUri, 'scores', model, `${benchmark}.json`);

/** The sweep's activities, plus `close` for the worker's shutdown (stops local inference processes). */
export function createVqaRuntime(deps: VqaDeps) {
  const { store } = deps;
  /** One backend per model spec per worker: the local one is a child process kept warm across activities. */
  const backends = new Map<string, Promise<InferenceBackend>>();
  const backendFor = (spec: ModelSpec): Promise<InferenceBackend> => {
    const key = JSON.stringify(spec);
    let backend = backends.get(key);
    if (!backend) {
      backend = makeBackend(spec);
      backends.set(key, backend);
      // A failed start is not cached: the next attempt tries again.
      backend.catch(() => backends.delete(key));
    }
    return backend;
  };
  const makeBackend = async (spec: ModelSpec): Promise<InferenceBackend> => {
    // An adapter in S3 (a trainLora output) is staged on this machine first; file:// is read in place.
    const resolved = spec.backend === 'local' && spec.adapter?.startsWith('s3://') ? { ...spec, adapter: await stageAdapter(spec.adapter) } : spec;
    return createBackend(resolved, {
        ...(deps.geminiApiKey !== undefined && { geminiApiKey: deps.geminiApiKey }),
        ...(deps.geminiBaseUrl !== undefined && { geminiBaseUrl: deps.geminiBaseUrl }),
        ...(deps.openaiApiKey !== undefined && { openaiApiKey: deps.openaiApiKey }),
        ...(deps.python !== undefined && { python: deps.python }),
    });
  };
  /** Downloads an adapter directory from the store into the local cache (once per URI). */
  const stageAdapter = async (uri: string): Promise<string> => {
    const dir = join(deps.adapterCacheDir ?? join(tmpdir(), 'vla-adapters'), sha256Hex(uri).slice(0, 16));
    if (existsSync(join(dir, '.complete'))) return dir;
    const prefix = `${uri.replace(/\/$/, '')}/`;
    for await (const info of store.list(prefix)) {
      const target = join(dir, ...info.uri.slice(prefix.length).split('/'));
      mkdirSync(dirname(target), { recursive: true });
      writeFileSync(target, await store.get(info.uri));
    }
    if (!existsSync(join(dir, 'adapter_config.json'))) throw new BackendError('not_found', `no LoRA adapter at ${uri} (adapter_config.json missing)`);
    writeFileSync(join(dir, '.complete'), '');
    return dir;
  };

  const itemCache = new Map<string, VqaItem[]>();
  async function readItems(outputUri: string, benchmark: BenchmarkId): Promise<VqaItem[]> {
    const uri = joinUri(itemsRoot(outputUri, benchmark), ITEMS_FILE);
    const cached = itemCache.get(uri);
    if (cached) return cached;
    const lines = (await store.get(uri)).toString('utf8').split('\n').filter((l) => l.trim());
    const items = lines.map((l) => VqaItem.parse(JSON.parse(l)));
    itemCache.set(uri, items);
    return items;
  }

  async function predictedIds(outputUri: string, model: string, benchmark: BenchmarkId): Promise<Set<string>> {
    const root = predictionsRoot(outputUri, model, benchmark);
    const ids = new Set<string>();
    for await (const info of store.list(`${root}/`)) {
      const rel = relativeTo(root, info.uri);
      if (rel?.endsWith('.json')) ids.add(rel.slice(0, -'.json'.length));
    }
    return ids;
  }

  const wrap = <A extends unknown[], R>(fn: (...args: A) => Promise<R>) =>
    async (...args: A): Promise<R> => {
      try {
        return await fn(...args);
      } catch (err) {
        if (err instanceof BenchmarkLayoutError) throw ApplicationFailure.nonRetryable(err.message, VqaFailure.benchmarkLayout);
        // BackendErrors are ApplicationFailures typed by their code, retryable or not already.
        throw classifyActivityError(err);
      }
    };

  const activities = {
    /** Loads a benchmark from the user's layout and materialises it (once) into the sweep. */
    prepareBenchmark: wrap(async (input: { source: BenchmarkSource; outputUri: string; limit?: number }): Promise<{ benchmark: BenchmarkId; items: number }> => {
      const root = itemsRoot(input.outputUri, input.source.benchmark);
      if (await store.head(joinUri(root, ITEMS_FILE))) return { benchmark: input.source.benchmark, items: (await readItems(input.outputUri, input.source.benchmark)).length };
      const loaded = limitItems(await loadBenchmark(store, input.source.benchmark, input.source.uri), input.limit);
      if (loaded.length === 0) throw new BenchmarkLayoutError(`${input.source.uri} holds no ${input.source.benchmark} items`);
      const { items } = await materializeItems(store, loaded, root);
      return { benchmark: input.source.benchmark, items: items.length };
    }),

    /** Fails early, and for good, when a model cannot be reached or does not fit its base. */
    checkBackend: wrap(async (spec: ModelSpec): Promise<void> => {
      try {
        await (await backendFor(ModelSpec.parse(spec))).check();
      } catch (err) {
        if (err instanceof BackendError && err.code !== 'adapter_mismatch') {
          throw ApplicationFailure.nonRetryable(`model ${spec.name}: ${err.message}`, VqaFailure.backendCheck);
        }
        throw err;
      }
    }),

    /** Item ids of a benchmark that still lack a prediction of this model. */
    pendingItems: wrap(async (input: { outputUri: string; model: string; benchmark: BenchmarkId }): Promise<{ pending: string[]; total: number }> => {
      const items = await readItems(input.outputUri, input.benchmark);
      const done = await predictedIds(input.outputUri, input.model, input.benchmark);
      return { pending: items.filter((i) => !done.has(i.id)).map((i) => i.id), total: items.length };
    }),

    /** Predicts the given items (those already predicted are skipped), `concurrency` requests at a time. */
    predictItems: wrap(
      async (input: { outputUri: string; model: ModelSpec; benchmark: BenchmarkId; itemIds: string[]; concurrency: number }): Promise<{ made: number; reused: number }> => {
        const definition = BENCHMARKS[input.benchmark];
        const items = new Map((await readItems(input.outputUri, input.benchmark)).map((i) => [i.id, i]));
        const backend = await backendFor(input.model);
        const root = predictionsRoot(input.outputUri, input.model.name, input.benchmark);
        const ctx = Context.current();
        let made = 0;
        let reused = 0;
        await forEachConcurrent(input.itemIds, input.concurrency, async (id) => {
          const item = items.get(id);
          if (!item) throw new BenchmarkLayoutError(`item ${id} is not in ${input.benchmark}'s items`);
          const uri = joinUri(root, `${id}.json`);
          if (await store.head(uri)) {
            reused++;
            return;
          }
          const images = await Promise.all(
            item.images.map(async (p) => ({ mimeType: mimeTypeOf(p.slice(p.lastIndexOf('.') + 1)), data: new Uint8Array(await store.get(joinUri(itemsRoot(input.outputUri, input.benchmark), p))) })),
          );
          const prompt = definition.prompt(item);
          const started = performance.now();
          const answer = await backend.generate({ prompt, images, generation: definition.generation }, ctx.cancellationSignal);
          const prediction: VqaPrediction = {
            itemId: id,
            benchmark: input.benchmark,
            model: input.model.name,
            prompt,
            response: answer.text,
            latencyMs: performance.now() - started,
            ...(answer.usage && { usage: answer.usage }),
          };
          // Two attempts racing on one item keep the first answer.
          const put = await putJson(store, uri, prediction, { ifAbsent: true });
          if (put.created) made++;
          else reused++;
          ctx.heartbeat({ made, reused });
        });
        return { made, reused };
      },
    ),

    /** Scores a (model, benchmark) from its stored predictions and stores the score. */
    scoreBenchmark: wrap(async (input: { outputUri: string; model: string; benchmark: BenchmarkId }): Promise<BenchmarkScore> => {
      const items = await readItems(input.outputUri, input.benchmark);
      const root = predictionsRoot(input.outputUri, input.model, input.benchmark);
      const predictions = new Map<string, string>();
      await forEachConcurrent(items, 16, async (item) => {
        try {
          predictions.set(item.id, (await getJson(store, joinUri(root, `${item.id}.json`), VqaPrediction)).response);
        } catch (err) {
          if (!(err instanceof ObjectNotFoundError)) throw err;
        }
      });
      const score = BenchmarkScore.parse(BENCHMARKS[input.benchmark].score(items, predictions));
      await putJson(store, scoreUri(input.outputUri, input.model, input.benchmark), score);
      return score;
    }),

    /** report.json, report.html (self-contained) and chart.png (Chromium's rendering of its chart). */
    writeReport: wrap(
      async (input: { outputUri: string; title: string; models: ModelSpec[]; benchmarks: BenchmarkId[]; made: number; reused: number }): Promise<VqaSweepResult> => {
        const scores: ScoreTable = {};
        const itemCounts: Partial<Record<BenchmarkId, number>> = {};
        for (const model of input.models) {
          for (const b of input.benchmarks) {
            const score = await getJsonIfExists(store, scoreUri(input.outputUri, model.name, b), BenchmarkScore);
            if (score) (scores[model.name] ??= {})[b] = score;
            if (score) itemCounts[b] = score.items;
          }
        }
        const retention: Retention[] = computeRetention(input.models, scores, input.benchmarks);
        const html = renderReportHtml({ title: input.title, models: input.models, benchmarks: input.benchmarks, scores, retention, generatedAt: new Date().toISOString(), items: itemCounts });
        const reportUri = joinUri(input.outputUri, 'report.html');
        const chartUri = joinUri(input.outputUri, 'chart.png');
        await store.put(chartUri, await screenshotElement(html, '#chart'));
        await store.put(reportUri, html);
        const result: VqaSweepResult = {
          outputUri: input.outputUri,
          scores,
          retention,
          reportUri,
          chartUri,
          predictions: { made: input.made, reused: input.reused },
        };
        await putJson(store, joinUri(input.outputUri, 'report.json'), result);
        return result;
      },
    ),
  };
  return {
    activities,
    async close(): Promise<void> {
      await Promise.all([...backends.values()].map(async (b) => (await b.catch(() => undefined))?.close()));
      backends.clear();
    },
  };
}

export type VqaActivities = ReturnType<typeof createVqaRuntime>['activities'];
