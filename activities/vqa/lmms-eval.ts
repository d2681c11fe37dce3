/**
 * A sweep's scores in lmms-eval's own result files, so a sweep and an lmms-eval run can be diffed file by
 * file (docs/vqa.md, "lmms-eval result files"). Follows lmms-eval 0.7.3 (PyPI): the per-model folder,
 * `<date>_results.json` as `EvaluationTracker.save_results_aggregated` writes it and
 * `<date>_samples_<task>.jsonl` as `save_results_samples` writes it, with each task's per-item metric
 * in the shape its `process_results` returns. Pure: no Node imports, no I/O.
 */
import type { BenchmarkId, BenchmarkResult, VqaItem } from '../../data-schemas/vqa';
import { BENCHMARKS, MMMU_OFFICIAL_BREAKDOWN } from './scoring';
import { extractMcqAnswer } from './scoring/choice';
import { MME_PERCEPTION, mmeItemCorrect } from './scoring/mme';
import { mmbenchGroup } from './scoring/mmbench';
import { isMultipleChoice, mmmuSubject, parseMultiChoice, parseOpenResponse, type Normalised } from './scoring/mmmu';
import { HME_CATEGORY, isHme } from './scoring/ocrbench';
import { pyFloatStr, pyStrip } from './scoring/py';
import { normalizeVqaAnswer } from './scoring/vqa-accuracy';

export const LMMS_EVAL_VERSION = '0.7.3';

/** One item's answer as the sweep scores it: `undefined` when missing, truncated or withheld (scored as wrong). */
export interface ScoredSample {
  item: VqaItem;
  /** The raw response as stored (empty when withheld or missing). */
  response: string;
  /** The response the scorer sees, or undefined when it scores as wrong. */
  scored: string | undefined;
}

type MetricValue = number | Record<string, unknown>;

interface LmmsTask {
  /** lmms-eval's task name (`task:` of its YAML). */
  task: string;
  /** The filter its metrics are keyed under: `none` unless the YAML has a `filter_list`. */
  filter: string;
  /** `metric_list` of the YAML: name and how it aggregates (`mean`, or a custom function of the task's utils). */
  metrics: readonly { metric: string; aggregation: string }[];
  /** `dataset_path` and `test_split` of the YAML, for the `configs` entry. */
  datasetPath: string;
  testSplit: string;
  /** `doc_to_target`, as lmms-eval's `str()` prints it. */
  target(item: VqaItem): string;
  /** What the task's filter leaves of a response (the response itself without a filter). */
  filtered(item: VqaItem, response: string): string;
  /** The per-item metric values `process_results` returns, from our item score. */
  sampleMetrics(sample: ScoredSample, docId: number, itemScore: number): Record<string, MetricValue>;
  /** Values of the custom aggregations, on lmms-eval's scale, from our score (mean-aggregated metrics are computed from the samples). */
  customAggregates?(score: BenchmarkResult): Record<string, number>;
}

const mean = (metric: string) => ({ metric, aggregation: 'mean' });
const custom = (metric: string, fn: string) => ({ metric, aggregation: fn });
const meta = (item: VqaItem, field: string): string | number | undefined => item.meta[field];

/** Python's `repr` of a str, as `str(list)` prints each element. */
export function pyRepr(value: string): string {
  const quote = value.includes("'") && !value.includes('"') ? '"' : "'";
  let out = quote;
  for (const ch of value) {
    const code = ch.codePointAt(0)!;
    if (ch === '\\') out += '\\\\';
    else if (ch === quote) out += `\\${quote}`;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (code < 0x20 || code === 0x7f) out += `\\x${code.toString(16).padStart(2, '0')}`;
    else out += ch;
  }
  return out + quote;
}
const pyList = (values: readonly string[]): string => `[${values.map(pyRepr).join(', ')}]`;
/** A single accepted answer as the release's string, several as Python prints the list. */
const answerTarget = (item: VqaItem): string => (item.answers.length === 1 ? item.answers[0]! : pyList(item.answers));
const firstAnswer = (item: VqaItem): string => item.answers[0] ?? '';
const asIs = (_item: VqaItem, response: string): string => response;

/**
 * `parsed_pred` of `mmmu_process_results`: one entry per response, the letter `parse_multi_choice_response`
 * picks, or the whole candidate list of `parse_open_response` (lmms-eval 0.7.3 keeps the list). A
 * response scored as wrong (missing, truncated, withheld) has no entry, so `evaluate_mmmu` judges it wrong.
 */
function mmmuParsed(item: VqaItem, response: string | undefined): (string | Normalised[])[] {
  if (response === undefined) return [];
  const pred = pyStrip(response);
  if (isMultipleChoice(item)) {
    const options = item.options ?? [];
    return [parseMultiChoice(pred, options.map((o) => o.label), new Map(options.map((o) => [o.label, o.text])), item.id).letter];
  }
  return [parseOpenResponse(pred)];
}

const scored = (s: ScoredSample): string => (s.scored === undefined ? '' : pyStrip(s.scored));

export const LMMS_TASKS: Record<BenchmarkId, LmmsTask> = {
  mmmu: {
    task: 'mmmu_val',
    filter: 'none',
    metrics: [custom('mmmu_acc', 'mmmu_aggregate_results')],
    datasetPath: 'lmms-lab-encoder/MMMU',
    testSplit: 'validation',
    target: firstAnswer,
    filtered: asIs,
    sampleMetrics: ({ item, scored: response }) => {
      const parsed = mmmuParsed(item, response);
      const acc = {
        id: item.id,
        subdomain: mmmuSubject(item),
        question_type: isMultipleChoice(item) ? 'multiple-choice' : 'open',
        answer: item.answers.length === 1 ? item.answers[0] : item.answers,
        parsed_pred: parsed,
      };
      // to_submission_answer: the letter, or the first candidate as str() prints it.
      const first = parsed[0];
      const candidate = Array.isArray(first) ? first[0] : first;
      const submission = candidate === undefined ? '' : typeof candidate === 'number' ? pyFloatStr(candidate) : candidate;
      return { mmmu_acc: acc, mmmu_acc_pass_at_k: acc, submission: { [item.id]: submission } };
    },
    // lmms-eval 0.7.3 judges every candidate of an open answer: the official MMMU rule, which our
    // headline (lmms-eval's earlier rule) keeps in its breakdown. mmmu_aggregate_results rounds to 5 places.
    customAggregates: (score) => ({ mmmu_acc: Math.round((score.breakdown[MMMU_OFFICIAL_BREAKDOWN] ?? score.value) * 1000) / 100_000 }),
  },
  mmstar: {
    task: 'mmstar',
    filter: 'none',
    metrics: ['coarse perception', 'fine-grained perception', 'instance reasoning', 'logical reasoning', 'science & technology', 'math', 'average'].map((m) =>
      custom(m, 'mmstar_aggregate_results'),
    ),
    datasetPath: 'Lin-Chen/MMStar',
    testSplit: 'val',
    target: firstAnswer,
    filtered: asIs,
    sampleMetrics: ({ item }, docId, itemScore) => {
      const entry = { question_id: meta(item, 'index') ?? docId, l2_category: meta(item, 'l2category') ?? meta(item, 'category') ?? 'unknown', score: itemScore };
      return { [String(meta(item, 'category') ?? 'unknown')]: entry, average: entry };
    },
    customAggregates: (score) => ({
      average: score.value / 100,
      ...Object.fromEntries(Object.entries(score.breakdown).flatMap(([k, v]) => (k.startsWith('category/') ? [[k.slice('category/'.length), v / 100]] : []))),
    }),
  },
  mme: {
    task: 'mme',
    filter: 'none',
    metrics: [custom('mme_perception_score', 'mme_aggregate_results'), custom('mme_cognition_score', 'mme_aggregate_results')],
    datasetPath: 'lmms-lab-encoder/MME',
    testSplit: 'test',
    target: firstAnswer,
    filtered: asIs,
    sampleMetrics: ({ item, scored: response }) => {
      const category = String(meta(item, 'subtask') ?? 'unknown');
      const key = (MME_PERCEPTION as readonly string[]).includes(category) ? 'mme_perception_score' : 'mme_cognition_score';
      return { [key]: { question_id: meta(item, 'imageId') ?? item.id, category, score: mmeItemCorrect(item, response) ? 1.0 : 0.0 } };
    },
    customAggregates: (score) => ({ mme_perception_score: score.value, mme_cognition_score: score.breakdown.cognition ?? 0 }),
  },
  ocrbench: {
    task: 'ocrbench',
    filter: 'none',
    metrics: [custom('ocrbench_accuracy', 'ocrbench_aggregate_accuracy')],
    datasetPath: 'echo840/OCRBench',
    testSplit: 'test',
    target: answerTarget,
    filtered: asIs,
    sampleMetrics: (sample, _docId, itemScore) => ({
      ocrbench_accuracy: {
        question_type: meta(sample.item, 'category') ?? (isHme(sample.item) ? HME_CATEGORY : 'unknown'),
        score: itemScore,
        prediction: scored(sample),
        ground_truth: sample.item.answers.length === 1 ? sample.item.answers[0] : sample.item.answers,
      },
    }),
    // Hits / 1000; our headline is hits / 10.
    customAggregates: (score) => ({ ocrbench_accuracy: score.value / 100 }),
  },
  'mmbench-en': mmbench('mmbench_en_dev', 'en_utils.mmbench_aggregate_dev_results_eval'),
  'mmbench-cn': mmbench('mmbench_cn_dev', 'cn_utils.mmbench_aggregate_dev_results_eval'),
  textvqa: {
    task: 'textvqa_val',
    filter: 'none',
    metrics: [mean('exact_match')],
    datasetPath: 'lmms-lab-encoder/textvqa',
    testSplit: 'validation',
    target: (item) => pyList(item.answers),
    filtered: asIs,
    sampleMetrics: (sample, docId, itemScore) => ({
      exact_match: itemScore,
      submission: { question_id: meta(sample.item, 'questionId') ?? docId, answer: normalizeVqaAnswer(scored(sample)) },
    }),
  },
  docvqa: anlsTask('docvqa_val', 'lmms-lab-encoder/DocVQA'),
  infovqa: anlsTask('infovqa_val', 'lmms-lab-encoder/DocVQA'),
  ai2d: {
    task: 'ai2d',
    filter: 'flexible-extract',
    metrics: [mean('exact_match')],
    datasetPath: 'lmms-lab-encoder/ai2d',
    testSplit: 'test',
    target: firstAnswer,
    filtered: (item, response) => extractMcqAnswer(response, (item.options ?? []).map((o) => o.label)),
    sampleMetrics: (_sample, _docId, itemScore) => ({ exact_match: itemScore }),
  },
  chartqa: {
    task: 'chartqa',
    filter: 'none',
    metrics: [mean('relaxed_overall'), mean('relaxed_human_split'), mean('relaxed_augmented_split')],
    datasetPath: 'lmms-lab-encoder/ChartQA',
    testSplit: 'test',
    target: firstAnswer,
    filtered: asIs,
    sampleMetrics: ({ item }, _docId, itemScore) => {
      const type = meta(item, 'type');
      return {
        relaxed_overall: itemScore,
        ...(type === 'human_test' && { relaxed_human_split: itemScore }),
        ...(type === 'augmented_test' && { relaxed_augmented_split: itemScore }),
      };
    },
  },
  realworldqa: {
    task: 'realworldqa',
    filter: 'none',
    metrics: [mean('exact_match')],
    datasetPath: 'lmms-lab-encoder/RealWorldQA',
    testSplit: 'test',
    target: firstAnswer,
    filtered: asIs,
    sampleMetrics: (_sample, _docId, itemScore) => ({ exact_match: itemScore }),
  },
};

function mmbench(task: string, aggregation: string): LmmsTask {
  return {
    task,
    filter: 'none',
    // `submission` (the other metric of the YAML) writes a file for the official server and returns no score.
    metrics: [custom('gpt_eval_score', aggregation)],
    datasetPath: 'lmms-lab-encoder/MMBench',
    testSplit: 'dev',
    target: firstAnswer,
    filtered: asIs,
    sampleMetrics: (sample) => {
      const { item } = sample;
      const row = {
        index: meta(item, 'index') ?? Number(mmbenchGroup(item)),
        question: item.question,
        answer: firstAnswer(item),
        prediction: scored(sample),
        hint: item.hint ?? 'nan',
        source: meta(item, 'source') ?? '',
        split: 'dev',
        category: meta(item, 'category') ?? '',
        'L2-category': meta(item, 'l2category') ?? '',
      };
      return { gpt_eval_score: row, submission: row };
    },
    customAggregates: (score) => ({ gpt_eval_score: score.value }),
  };
}

function anlsTask(task: string, datasetPath: string): LmmsTask {
  return {
    task,
    filter: 'none',
    metrics: [mean('anls')],
    datasetPath,
    testSplit: 'validation',
    target: (item) => pyList(item.answers),
    filtered: asIs,
    sampleMetrics: (_sample, _docId, itemScore) => ({ anls: itemScore }),
  };
}

/** A task's per-sample line, after `save_results_samples`' flattening. */
export interface LmmsSampleLine {
  doc_id: number;
  target: string;
  resps?: string[];
  filtered_resps: string;
  token_counts: null[];
  doc_hash: string;
  input: string;
  [metric: string]: unknown;
}

export interface LmmsBenchmarkInput {
  benchmark: BenchmarkId;
  score: BenchmarkResult;
  samples: ScoredSample[];
}

export interface LmmsModelFiles {
  /** `<date>_results.json` */
  resultsName: string;
  results: Record<string, unknown>;
  /** `<date>_samples_<task>.jsonl` -> its lines */
  samples: Map<string, { benchmark: BenchmarkId; lines: LmmsSampleLine[] }>;
}

/** `datetime_str` as lmms-eval's `get_datetime_str` formats it (`%Y%m%d_%H%M%S`), here in UTC. */
export function lmmsDateId(date: Date): string {
  return date.toISOString().replace(/[-:]/g, '').replace('T', '_').slice(0, 15);
}

/** `sanitize_model_name`: the last two `/` parts, each run of `"<>:/\|?*[]` replaced by `__`. */
export function lmmsModelFolder(modelName: string): string {
  const parts = modelName.split('/');
  return parts.slice(-2).join('/').replace(/["<>:/|\\?*[\]]+/g, '__');
}

const sampleStd = (values: readonly number[]): number => {
  const m = values.reduce((a, b) => a + b, 0) / values.length;
  return Math.sqrt(values.reduce((a, b) => a + (b - m) ** 2, 0) / (values.length - 1));
};
/** `mean_stderr` (lmms_eval/api/metrics.py) and the CLT stderr, both the sample sd over sqrt(n); "N/A" for fewer than 2. */
const meanStderr = (values: readonly number[]): number | 'N/A' => (values.length > 1 ? sampleStd(values) / Math.sqrt(values.length) : 'N/A');
/** The number behind a per-item value for the CLT stderr: itself, or a dict's `score`. */
const numericOf = (v: unknown): number | undefined =>
  typeof v === 'number' ? v : typeof v === 'object' && v !== null && typeof (v as { score?: unknown }).score === 'number' ? (v as { score: number }).score : undefined;

/**
 * The files lmms-eval would write for one model's run of these benchmarks. `hash` is SHA-256 hex of a
 * UTF-8 string (lmms-eval's `hash_string`); the caller passes it so this module stays free of Node.
 */
export function lmmsEvalFiles(input: {
  model: { name: string; args: string; backend: string };
  date: Date;
  limit: number | undefined;
  benchmarks: readonly LmmsBenchmarkInput[];
  hash: (text: string) => string;
}): LmmsModelFiles {
  const dateId = lmmsDateId(input.date);
  const results: Record<string, Record<string, unknown>> = {};
  const configs: Record<string, unknown> = {};
  const versions: Record<string, number> = {};
  const nShot: Record<string, number> = {};
  const higherIsBetter: Record<string, Record<string, boolean>> = {};
  const nSamples: Record<string, { original: number; effective: number }> = {};
  const taskHashes: Record<string, string> = {};
  const samples = new Map<string, { benchmark: BenchmarkId; lines: LmmsSampleLine[] }>();

  for (const { benchmark, score, samples: scoredSamples } of input.benchmarks) {
    const spec = LMMS_TASKS[benchmark];
    const definition = BENCHMARKS[benchmark];
    const lines = scoredSamples.map((sample, docId): LmmsSampleLine => {
      const { item, response } = sample;
      const filtered = spec.filtered(item, response);
      const metrics = spec.sampleMetrics(sample, docId, definition.itemScore(item, sample.scored));
      return {
        doc_id: docId,
        target: spec.target(item),
        ...(filtered !== response && { resps: [response] }),
        filtered_resps: filtered,
        token_counts: [null],
        // lmms-eval hashes its dataset row (images included), which this project does not have: the item's own JSON stands in.
        doc_hash: input.hash(JSON.stringify(item, null, 2)),
        ...metrics,
        input: definition.prompt(item),
      };
    });
    samples.set(`${dateId}_samples_${spec.task}.jsonl`, { benchmark, lines });
    taskHashes[spec.task] = input.hash(lines.map((l, i) => `sample_${i}${l.doc_hash}`).join(''));

    const custom = spec.customAggregates?.(score) ?? {};
    const taskResults: Record<string, unknown> = { alias: spec.task };
    for (const { metric, aggregation } of spec.metrics) {
      const values = lines.flatMap((l) => (metric in l ? [l[metric]] : []));
      // lmms-eval aggregates only the metrics some sample returned.
      if (values.length === 0) continue;
      const numeric = values.flatMap((v) => {
        const n = numericOf(v);
        return n === undefined ? [] : [n];
      });
      const key = `${metric},${spec.filter}`;
      if (aggregation === 'mean') {
        taskResults[key] = numeric.reduce((a, b) => a + b, 0) / numeric.length;
        taskResults[`${metric}_stderr,${spec.filter}`] = meanStderr(numeric);
      } else {
        const value = custom[metric];
        if (value === undefined) throw new Error(`lmms-eval task ${spec.task}: no value for its metric ${metric} in the ${benchmark} score`);
        taskResults[key] = value;
        // stderr_for_metric knows no stderr for a task's own aggregation function.
        taskResults[`${metric}_stderr,${spec.filter}`] = 'N/A';
      }
      taskResults[`${metric}_stderr_clt,${spec.filter}`] = meanStderr(numeric);
      taskResults[`${metric}_stderr_clustered,${spec.filter}`] = 'N/A';
    }
    results[spec.task] = taskResults;
    configs[spec.task] = {
      task: spec.task,
      dataset_path: spec.datasetPath,
      test_split: spec.testSplit,
      output_type: 'generate_until',
      generation_kwargs: {
        max_new_tokens: definition.generation.maxNewTokens,
        temperature: definition.generation.temperature,
        ...(definition.generation.topP !== undefined && { top_p: definition.generation.topP }),
        do_sample: false,
      },
      metric_list: spec.metrics.map((m) => ({ metric: m.metric, aggregation: m.aggregation, higher_is_better: true })),
      ...(spec.filter !== 'none' && { filter_list: [{ name: spec.filter }] }),
      metadata: [{ version: 0.0 }],
    };
    versions[spec.task] = 0;
    nShot[spec.task] = 0;
    higherIsBetter[spec.task] = Object.fromEntries(spec.metrics.map((m) => [m.metric, true]));
    nSamples[spec.task] = { original: score.items, effective: score.items };
  }

  const sorted = <T>(record: Record<string, T>): Record<string, T> => Object.fromEntries(Object.entries(record).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  const folder = lmmsModelFolder(input.model.name);
  return {
    resultsName: `${dateId}_results.json`,
    samples,
    results: {
      results,
      group_subtasks: Object.fromEntries(Object.keys(results).reverse().map((t) => [t, []])),
      configs: sorted(configs),
      versions: sorted(versions),
      'n-shot': sorted(nShot),
      higher_is_better: sorted(higherIsBetter),
      'n-samples': nSamples,
      config: {
        model: input.model.backend,
        model_args: input.model.args,
        model_backend: `vla-pipelines vqaSweep (${input.model.backend})`,
        batch_size: null,
        batch_sizes: [],
        device: null,
        use_cache: null,
        limit: input.limit ?? null,
        offset: 0,
        bootstrap_iters: 100_000,
        gen_kwargs: '',
        random_seed: 0,
        numpy_seed: 1234,
        torch_seed: 1234,
        fewshot_seed: 1234,
      },
      git_hash: null,
      git_branch: null,
      lmms_eval_version: `vla-pipelines (lmms-eval ${LMMS_EVAL_VERSION} layout)`,
      date: dateId,
      task_hashes: taskHashes,
      model_source: input.model.backend,
      model_name: input.model.name,
      model_name_sanitized: folder,
      system_instruction: null,
      system_instruction_sha: null,
      fewshot_as_multiturn: false,
      chat_template: null,
      chat_template_sha: null,
      start_time: null,
      end_time: null,
      total_evaluation_time_seconds: null,
    },
  };
}
