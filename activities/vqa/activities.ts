/**
 * Activities of the VQA sweep. Layout under the sweep's `outputUri`:
 *
 *   items/<benchmark>/<set>/items.jsonl + images/     the benchmark, materialised (loaders.ts); <set> is a
 *                                                     hash of the source (URI and listing) and `limit`
 *   items/<benchmark>/<set>/item-sha256.json          each item's content hash (fields and image bytes)
 *   predictions/<model>/<benchmark>/<item>.<key>.json one VqaPrediction per item and key, create-if-absent
 *   scores/<model>/<benchmark>.json                   BenchmarkScore of the latest sweep
 *   lmms-eval/<model>/<date>_results.json             lmms-eval's files of each model's scores (lmms-eval.ts)
 *   lmms-eval/<model>/<date>_samples_<task>.jsonl
 *   report.json, report.html, chart.png               written last
 *
 * A prediction's key hashes everything that made it (prediction-key.ts): the model's identity (backend,
 * base model, adapter content), the prompt version and text, the generation settings and the item's content. A
 * re-run or a retried activity predicts only the items that lack a prediction under their current key;
 * predictions under other keys (another adapter, prompt, item set) stay beside them, unused.
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import { statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { implement, type RolesOf } from '../../data-schemas/activity-contract';
import { joinUri, relativeTo } from '../../data-schemas/uri';
import {
  BenchmarkResult,
  ItemHashes,
  VqaFailure,
  VqaInferenceActivities,
  VqaItem,
  VqaPrediction,
  VqaStoreActivities,
  VqaStoreFile,
  type BenchmarkId,
  type ModelIdentity,
  type ModelSpec,
  type ResolvedModel,
  type Retention,
  type VqaSweepResult,
} from '../../data-schemas/vqa';
import type { PythonEnv } from '../runtime/python-env';
import { forEachConcurrent } from '../data/pool';
import { classifyActivityError } from '../failures';
import { countVqaItemsScored, countVqaPredictions } from '../../data-schemas/metrics';
import { countGeminiCall } from '../gemini/pricing';
import { getJson, getJsonIfExists, parseStoredJson, putJson, sha256Hex, stageDirectory } from '../store';
import type { ObjectStore } from '../store/types';
import { openAIBaseUrl } from './backends/openai';
import type { InferencePool } from './backends/pool';
import { BackendError, createBackend, type InferenceBackend } from './backends/types';
import { screenshotElement } from './browser';
import { lmmsEvalFiles, lmmsModelFolder, type LmmsBenchmarkInput } from './lmms-eval';
import { BenchmarkLayoutError, limitItems, loadBenchmark, materializeItems, mimeTypeOf } from './loaders';
import { directorySha256, itemSha256, modelKeyOf, predictionFile, predictionKey } from './prediction-key';
import { computeRetention, renderReportHtml, type PairedIntervals, type ScoreTable } from './report';
import { BENCHMARKS } from './scoring';
import { pairedRetentionIntervals, scoreStderr, type PairedBenchmark } from './uncertainty';

export interface VqaDeps {
  store: ObjectStore;
  /** From the worker's environment, never from workflow input. */
  geminiApiKey?: string;
  geminiBaseUrl?: string;
  openaiApiKey?: string;
  /** The Python environment, for the local backend (GPU workers). */
  python?: () => Promise<PythonEnv>;
  /** The worker's bound on loaded local models (GPU workers). */
  inferencePool?: InferencePool;
  /** Where adapters and base models kept in S3 are staged for the local backend. @default `<tmp>/vla-adapters` */
  adapterCacheDir?: string;
}

/** Bumped when the item-set recipe changes. */
const ITEM_SET_RECIPE = 'vqa-item-set/1';

const predictionsRoot = (outputUri: string, model: string, benchmark: BenchmarkId): string => joinUri(outputUri, 'predictions', model, benchmark);
export const scoreUri = (outputUri: string, model: string, benchmark: BenchmarkId): string => joinUri(outputUri, 'scores', model, `${benchmark}.json`);

/** A path of the worker's machine, from a path or a file:// URI. */
const localPathOf = (value: string): string => (value.startsWith('file://') ? fileURLToPath(value) : value);
const isDirectory = (path: string): boolean => {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
};

/** An item set and what each item's prediction key needs. */
interface ItemSet {
  items: VqaItem[];
  sha256: Map<string, string>;
}

/** The key of an item's prediction by a model. */
function keyOf(benchmark: BenchmarkId, item: VqaItem, set: ItemSet, modelKey: string): string {
  const definition = BENCHMARKS[benchmark];
  const sha = set.sha256.get(item.id);
  if (sha === undefined) throw new BenchmarkLayoutError(`item ${item.id} of ${benchmark} has no content hash in ${VqaStoreFile.itemHashes}`);
  return predictionKey({ modelKey, promptVersion: definition.promptVersion, prompt: definition.prompt(item), generation: definition.generation, itemSha256: sha });
}

/** The sweep's activities, plus `close` for the worker's shutdown (stops local inference processes). */
export function createVqaRuntime(deps: VqaDeps) {
  const { store } = deps;

  /** The model behind a spec, as it is now: an adapter's content is hashed, not its name. */
  const identify = async (spec: ModelSpec): Promise<{ identity: ModelIdentity; adapterDir?: string; baseModelDir?: string }> => {
    switch (spec.backend) {
      case 'openai':
        // A served name is all a client can see; docs/vqa.md asks for a new served name per adapter version.
        return { identity: { backend: 'openai', baseUrl: openAIBaseUrl(spec.baseUrl), model: spec.model } };
      case 'gemini':
        return { identity: { backend: 'gemini', model: spec.model, thinkingBudget: spec.thinkingBudget ?? null } };
      case 'local': {
        // An s3:// base model (workers on several hosts share no folder) is staged like an adapter; its identity is its content either way.
        const staged = spec.baseModel.startsWith('s3://') ? await stageModelDirectory(spec.baseModel, 'config.json', 'base model') : undefined;
        const base = staged ?? localPathOf(spec.baseModel);
        const baseModel = isDirectory(base) ? await directorySha256(base) : `hub:${spec.baseModel}`;
        const baseModelDir = staged !== undefined ? { baseModelDir: staged } : {};
        if (spec.adapter === undefined) return { identity: { backend: 'local', baseModel, adapter: null }, ...baseModelDir };
        const adapterDir = spec.adapter.startsWith('s3://') ? await stageModelDirectory(spec.adapter, 'adapter_config.json', 'LoRA adapter') : localPathOf(spec.adapter);
        if (!isDirectory(adapterDir)) throw new BackendError('not_found', `model ${spec.name}: adapter directory ${spec.adapter} does not exist`);
        return { identity: { backend: 'local', baseModel, adapter: await directorySha256(adapterDir) }, adapterDir, ...baseModelDir };
      }
    }
  };

  /** One backend per model spec per worker (the local one is a child process kept warm across activities), replaced when the model behind the spec changes. */
  const backends = new Map<string, { modelKey: string; backend: Promise<InferenceBackend> }>();
  const resolving = new Map<string, Promise<ResolvedModel & { backend: InferenceBackend }>>();
  const resolve = async (spec: ModelSpec, specKey: string): Promise<ResolvedModel & { backend: InferenceBackend }> => {
    const { identity, adapterDir, baseModelDir } = await identify(spec);
    const modelKey = modelKeyOf(identity);
    let entry = backends.get(specKey);
    if (entry && entry.modelKey !== modelKey) {
      // A warm local process still holds the old weights.
      void entry.backend.then((b) => b.close()).catch(() => undefined);
      backends.delete(specKey);
      entry = undefined;
    }
    if (!entry) {
      const backend = makeBackend(
        spec.backend === 'local' ? { ...spec, ...(baseModelDir !== undefined && { baseModel: baseModelDir }), ...(adapterDir !== undefined && { adapter: adapterDir }) } : spec,
      );
      const created = { modelKey, backend };
      backends.set(specKey, created);
      // A failed start is not cached: the next attempt tries again.
      backend.catch(() => {
        if (backends.get(specKey) === created) backends.delete(specKey);
      });
      entry = created;
    }
    return { identity, modelKey, backend: await entry.backend };
  };
  const backendFor = (spec: ModelSpec): Promise<ResolvedModel & { backend: InferenceBackend }> => {
    const specKey = JSON.stringify(spec);
    let pending = resolving.get(specKey);
    if (!pending) {
      pending = resolve(spec, specKey).finally(() => resolving.delete(specKey));
      resolving.set(specKey, pending);
    }
    return pending;
  };
  const makeBackend = (spec: ModelSpec): Promise<InferenceBackend> =>
    Promise.resolve().then(() =>
      createBackend(spec, {
        ...(deps.geminiApiKey !== undefined && { geminiApiKey: deps.geminiApiKey }),
        ...(deps.geminiBaseUrl !== undefined && { geminiBaseUrl: deps.geminiBaseUrl }),
        ...(deps.openaiApiKey !== undefined && { openaiApiKey: deps.openaiApiKey }),
        ...(deps.python !== undefined && { python: deps.python }),
        ...(deps.inferencePool !== undefined && { inferencePool: deps.inferencePool }),
      }),
    );
  /** An adapter or base model directory kept in the store, downloaded once per content into the local cache. */
  const stageModelDirectory = async (uri: string, required: string, what: string): Promise<string> => {
    const dir = await stageDirectory(store, uri, { cacheRoot: deps.adapterCacheDir ?? join(tmpdir(), 'vla-adapters'), required });
    if (dir === undefined) throw new BackendError('not_found', `no ${what} at ${uri} (${required} missing)`);
    return dir;
  };

  const itemSets = new Map<string, ItemSet>();
  /** An item set is written once under its content-derived folder, so it is cached by URI. */
  async function readItemSet(itemsUri: string): Promise<ItemSet> {
    const cached = itemSets.get(itemsUri);
    if (cached) return cached;
    const itemsFileUri = joinUri(itemsUri, VqaStoreFile.items);
    const lines = (await store.get(itemsFileUri)).toString('utf8').split('\n');
    const items = lines.flatMap((l, n) => (l.trim() ? [parseStoredJson(`${itemsFileUri} line ${n + 1}`, l, VqaItem, `a VQA item (${VqaStoreFile.items})`)] : []));
    const hashes = await getJson(store, joinUri(itemsUri, VqaStoreFile.itemHashes), ItemHashes, `item content hashes (${VqaStoreFile.itemHashes})`);
    const set = { items, sha256: new Map(Object.entries(hashes)) };
    itemSets.set(itemsUri, set);
    return set;
  }

  /** Names of the prediction objects stored for a (model, benchmark). */
  async function storedPredictionFiles(outputUri: string, model: string, benchmark: BenchmarkId): Promise<Set<string>> {
    const root = predictionsRoot(outputUri, model, benchmark);
    const names = new Set<string>();
    for await (const info of store.list(`${root}/`)) {
      const rel = relativeTo(root, info.uri);
      if (rel?.endsWith('.json')) names.add(rel);
    }
    return names;
  }

  /** The stored predictions of a model for an item set, under their current keys. */
  async function readPredictions(input: { outputUri: string; itemsUri: string; model: string; modelKey: string; benchmark: BenchmarkId }): Promise<Map<string, VqaPrediction>> {
    const set = await readItemSet(input.itemsUri);
    const root = predictionsRoot(input.outputUri, input.model, input.benchmark);
    const predictions = new Map<string, VqaPrediction>();
    await forEachConcurrent(set.items, 16, async (item) => {
      const prediction = await getJsonIfExists(store, joinUri(root, predictionFile(item.id, keyOf(input.benchmark, item, set, input.modelKey))), VqaPrediction);
      if (prediction) predictions.set(item.id, prediction);
    });
    return predictions;
  }

  /** `model_args` as lmms-eval would be given them for this model. */
  const lmmsModelArgs = (spec: ModelSpec): string => {
    switch (spec.backend) {
      case 'local':
        return spec.adapter === undefined ? `pretrained=${spec.baseModel}` : `pretrained=${spec.baseModel},peft=${spec.adapter}`;
      case 'openai':
        return `model=${spec.model},base_url=${spec.baseUrl}`;
      case 'gemini':
        return `model=${spec.model}`;
    }
  };

  /** Writes lmms-eval's result and per-sample files of each model (lmms-eval.ts) from its scores and stored predictions. */
  async function writeLmmsEvalFiles(input: {
    outputUri: string;
    models: readonly ModelSpec[];
    benchmarks: readonly BenchmarkId[];
    scores: ScoreTable;
    modelKeys: Readonly<Record<string, string>>;
    itemsUris: Partial<Record<BenchmarkId, string>>;
    limit: number | undefined;
  }): Promise<VqaSweepResult['lmmsEval']> {
    const date = new Date();
    const written: VqaSweepResult['lmmsEval'] = {};
    for (const model of input.models) {
      const modelKey = input.modelKeys[model.name];
      if (modelKey === undefined) continue;
      const benchmarks: LmmsBenchmarkInput[] = [];
      for (const benchmark of input.benchmarks) {
        const score = input.scores[model.name]?.[benchmark];
        const itemsUri = input.itemsUris[benchmark];
        if (score === undefined || itemsUri === undefined) continue;
        const { items } = await readItemSet(itemsUri);
        const predictions = await readPredictions({ outputUri: input.outputUri, itemsUri, model: model.name, modelKey, benchmark });
        const scored = scoredResponses(predictions);
        benchmarks.push({ benchmark, score, samples: items.map((item) => ({ item, response: predictions.get(item.id)?.response ?? '', scored: scored.get(item.id) })) });
      }
      if (benchmarks.length === 0) continue;
      const files = lmmsEvalFiles({ model: { name: model.name, args: lmmsModelArgs(model), backend: model.backend }, date, limit: input.limit, benchmarks, hash: sha256Hex });
      const folder = joinUri(input.outputUri, 'lmms-eval', lmmsModelFolder(model.name));
      const samples: Partial<Record<BenchmarkId, string>> = {};
      for (const [name, { benchmark, lines }] of files.samples) {
        const uri = joinUri(folder, name);
        await store.put(uri, lines.map((line) => `${JSON.stringify(line)}\n`).join(''));
        samples[benchmark] = uri;
      }
      // The results file last: present means its samples are complete, as with lmms-eval's own runs.
      const results = joinUri(folder, files.resultsName);
      await store.put(results, JSON.stringify(files.results, null, 2));
      written[model.name] = { results, samples };
    }
    return written;
  }

  /** The answers a scorer sees: a truncated or withheld answer is left out, so it scores as wrong (docs/vqa.md "Truncated and withheld answers"). */
  const scoredResponses = (predictions: ReadonlyMap<string, VqaPrediction>): Map<string, string> =>
    new Map([...predictions].flatMap(([id, p]) => (p.truncated || p.withheld !== undefined ? [] : [[id, p.response] as const])));

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

  const onStore = implement(VqaStoreActivities, 'cpu', {
    /**
     * Loads a benchmark from the user's layout and materialises it into the item set of this source
     * (its URI and the listing under it) and `limit`; an item set already written is reused.
     */
    prepareBenchmark: wrap(async (input) => {
      const { benchmark, uri } = input.source;
      const listing: [string, number, string | null][] = [];
      for await (const info of store.list(`${uri.replace(/\/$/, '')}/`)) listing.push([info.uri, info.bytes, info.etag ?? null]);
      listing.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
      const setKey = sha256Hex(JSON.stringify([ITEM_SET_RECIPE, benchmark, uri, input.limit ?? null, listing])).slice(0, 16);
      const itemsUri = joinUri(input.outputUri, 'items', benchmark, setKey);
      // The hashes are written after items.jsonl: both present means the set is complete.
      if (await store.head(joinUri(itemsUri, VqaStoreFile.itemHashes))) return { benchmark, items: (await readItemSet(itemsUri)).items.length, itemsUri };
      const loaded = limitItems(await loadBenchmark(store, benchmark, uri, input.limit), input.limit);
      if (loaded.length === 0) throw new BenchmarkLayoutError(`${uri} holds no ${benchmark} items`);
      const { items } = await materializeItems(store, loaded, itemsUri);
      const hashes = Object.fromEntries(loaded.map(({ item, images }) => [item.id, itemSha256(item, images.map((image) => sha256Hex(image.data)))]));
      await putJson(store, joinUri(itemsUri, VqaStoreFile.itemHashes), hashes);
      return { benchmark, items: items.length, itemsUri };
    }),

    /** Item ids of a benchmark that still lack a prediction of this model under their current key. */
    pendingItems: wrap(
      async (input) => {
        const set = await readItemSet(input.itemsUri);
        const stored = await storedPredictionFiles(input.outputUri, input.model, input.benchmark);
        const pending = set.items.filter((item) => !stored.has(predictionFile(item.id, keyOf(input.benchmark, item, set, input.modelKey))));
        return { pending: pending.map((i) => i.id), total: set.items.length };
      },
    ),

    /** Scores a (model, benchmark) from its stored predictions, with the standard error and the truncated answers, and stores the score. */
    scoreBenchmark: wrap(async (input) => {
      const { items } = await readItemSet(input.itemsUri);
      const predictions = await readPredictions(input);
      const responses = scoredResponses(predictions);
      const definition = BENCHMARKS[input.benchmark];
      const { stderr, method } = scoreStderr(definition, items, responses, `stderr|${input.modelKey}|${input.itemsUri}`);
      const score = BenchmarkResult.parse({
        ...definition.score(items, responses),
        stderr,
        stderrMethod: method,
        truncated: [...predictions.values()].filter((p) => p.truncated).length,
        withheld: [...predictions.values()].filter((p) => p.withheld !== undefined).length,
        missing: items.length - predictions.size,
      });
      await putJson(store, scoreUri(input.outputUri, input.model, input.benchmark), score);
      countVqaItemsScored(Context.current().metricMeter, input.benchmark, items.length);
      return score;
    }),

    /** report.json, report.html (self-contained) and chart.png (Chromium's rendering of its chart). */
    writeReport: wrap(
      async (input) => {
        const scores: ScoreTable = {};
        const itemCounts: Partial<Record<BenchmarkId, number>> = {};
        for (const model of input.models) {
          for (const b of input.benchmarks) {
            const score = await getJsonIfExists(store, scoreUri(input.outputUri, model.name, b), BenchmarkResult);
            if (score) (scores[model.name] ??= {})[b] = score;
            if (score) itemCounts[b] = score.items;
          }
        }
        // Paired data first (store reads), then the pure bootstrap per (model, base).
        const pairedData = new Map<string, PairedBenchmark[]>();
        const pairedItems = new Map<string, Partial<Record<BenchmarkId, number>>>();
        for (const model of input.models) {
          if (model.baseOf === undefined) continue;
          const benchmarks: PairedBenchmark[] = [];
          const counts: Partial<Record<BenchmarkId, number>> = {};
          for (const b of input.benchmarks) {
            const itemsUri = input.itemsUris[b];
            const ftKey = input.modelKeys[model.name];
            const baseKey = input.modelKeys[model.baseOf];
            if (itemsUri === undefined || ftKey === undefined || baseKey === undefined) continue;
            const ft = await readPredictions({ outputUri: input.outputUri, itemsUri, model: model.name, modelKey: ftKey, benchmark: b });
            const base = await readPredictions({ outputUri: input.outputUri, itemsUri, model: model.baseOf, modelKey: baseKey, benchmark: b });
            const items = (await readItemSet(itemsUri)).items.filter((item) => ft.has(item.id) && base.has(item.id));
            counts[b] = items.length;
            if (items.length > 0) benchmarks.push({ definition: BENCHMARKS[b], items, fineTuned: scoredResponses(ft), base: scoredResponses(base) });
          }
          pairedData.set(model.name, benchmarks);
          pairedItems.set(model.name, counts);
        }
        const paired = (model: string, base: string, benchmarks: readonly BenchmarkId[]): PairedIntervals => {
          const data = (pairedData.get(model) ?? []).filter((p) => benchmarks.includes(p.definition.id));
          const intervals = pairedRetentionIntervals(data, `retention|${input.modelKeys[model]}|${input.modelKeys[base]}`);
          return { ...intervals, pairedItems: pairedItems.get(model) ?? {} };
        };
        const retention: Retention[] = computeRetention(input.models, scores, input.benchmarks, { threshold: input.retentionThreshold, paired });
        const countOf = (field: 'truncated' | 'withheld'): number => Object.values(scores).reduce((a, row) => a + Object.values(row).reduce((t, score) => t + score[field], 0), 0);
        const lmmsEval = await writeLmmsEvalFiles({ ...input, scores, limit: input.limit });
        const html = renderReportHtml({
          title: input.title,
          models: input.models,
          benchmarks: input.benchmarks,
          scores,
          retention,
          generatedAt: new Date().toISOString(),
          items: itemCounts,
          predictions: { made: input.made, reused: input.reused },
          threshold: input.retentionThreshold,
          lmmsEvalLinks: Object.fromEntries(
            Object.entries(lmmsEval).map(([model, files]) => [
              model,
              Object.fromEntries(
                [['results', files.results] as const, ...Object.entries(files.samples).map(([b, uri]) => [`${b} samples`, uri] as const)].flatMap(([label, uri]) => {
                  const href = uri === undefined ? undefined : relativeTo(input.outputUri, uri);
                  return href === undefined ? [] : [[label, href]];
                }),
              ),
            ]),
          ),
        });
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
          itemSets: Object.fromEntries(Object.entries(input.itemsUris).filter((e): e is [string, string] => e[1] !== undefined)),
          predictions: { made: input.made, reused: input.reused, truncated: countOf('truncated'), withheld: countOf('withheld') },
          lmmsEval,
        };
        await putJson(store, joinUri(input.outputUri, 'report.json'), result);
        return result;
      },
    ),
  });

  /** Model calls, registered by each kind of worker that serves a backend (BACKEND_WORKER in data-schemas/vqa.ts). */
  const inference = (role: RolesOf<typeof VqaInferenceActivities>) =>
    implement(VqaInferenceActivities, role, {
      /** Fails early, and for good, when a model cannot be reached or does not fit its base; returns the model's identity and key. */
      checkBackend: wrap(async (spec) => {
        try {
          const resolved = await backendFor(spec);
          await resolved.backend.check();
          return { identity: resolved.identity, modelKey: resolved.modelKey };
        } catch (err) {
          if (err instanceof BackendError && err.code !== 'adapter_mismatch') {
            throw ApplicationFailure.nonRetryable(`model ${spec.name}: ${err.message}`, VqaFailure.backendCheck);
          }
          throw err;
        }
      }),

      /** Predicts the given items (those already predicted under their key are skipped), `concurrency` requests at a time. */
      predictItems: wrap(
        async (input) => {
          const definition = BENCHMARKS[input.benchmark];
          const set = await readItemSet(input.itemsUri);
          const items = new Map(set.items.map((i) => [i.id, i]));
          const { backend, modelKey } = await backendFor(input.model);
          if (modelKey !== input.modelKey) {
            // Answers of other weights must not be stored under the checked model's key.
            throw ApplicationFailure.nonRetryable(
              `model ${input.model.name} changed after the sweep checked it (its base model or adapter content differs); start the sweep again to evaluate the new one`,
              VqaFailure.modelChanged,
            );
          }
          const root = predictionsRoot(input.outputUri, input.model.name, input.benchmark);
          const ctx = Context.current();
          let made = 0;
          let reused = 0;
          // The first request may (re)load a local model the worker's pool released: beats go on while it loads.
          const keepAlive = setInterval(() => ctx.heartbeat({ made, reused }), 10_000);
          await forEachConcurrent(input.itemIds, input.concurrency, async (id) => {
            const item = items.get(id);
            if (!item) throw new BenchmarkLayoutError(`item ${id} is not in ${input.benchmark}'s items`);
            const key = keyOf(input.benchmark, item, set, modelKey);
            const uri = joinUri(root, predictionFile(id, key));
            if (await store.head(uri)) {
              reused++;
              return;
            }
            const images = await Promise.all(
              item.images.map(async (p) => ({ mimeType: mimeTypeOf(p.slice(p.lastIndexOf('.') + 1)), data: new Uint8Array(await store.get(joinUri(input.itemsUri, p))) })),
            );
            const prompt = definition.prompt(item);
            const started = performance.now();
            const answer = await backend.generate({ prompt, images, generation: definition.generation }, ctx.cancellationSignal);
            // Billed whether or not the answer is kept.
            if (input.model.backend === 'gemini' && answer.usage) countGeminiCall(ctx.metricMeter, input.model.model, 'vqa', answer.usage);
            const prediction: VqaPrediction = {
              itemId: id,
              benchmark: input.benchmark,
              model: input.model.name,
              key,
              modelKey,
              itemSha256: set.sha256.get(id) ?? '',
              generation: definition.generation,
              prompt,
              response: answer.text,
              truncated: answer.truncated === true,
              ...(answer.withheld !== undefined && { withheld: answer.withheld }),
              latencyMs: performance.now() - started,
              ...(answer.usage && { usage: answer.usage }),
            };
            // Two attempts racing on one item keep the first answer.
            const put = await putJson(store, uri, prediction, { ifAbsent: true });
            if (put.created) {
              made++;
              countVqaPredictions(ctx.metricMeter, input.benchmark, 1);
            } else reused++;
            ctx.heartbeat({ made, reused });
          }).finally(() => clearInterval(keepAlive));
          return { made, reused };
        },
      ),
    });
  return {
    /** The store side, for the CPU worker. */
    store: onStore,
    /** The inference side, for a worker of the given kind. */
    inference,
    async close(): Promise<void> {
      await Promise.all([...backends.values()].map(async (entry) => (await entry.backend.catch(() => undefined))?.close()));
      backends.clear();
    },
  };
}

