/**
 * The twelve VQA benchmarks of the paper's Table 1 (docs/method.md, "VQA retention"): for each, the prompt
 * and decoding lmms-eval uses with its default `lmms_eval_specific_kwargs`, and its official scorer,
 * giving the numbers lmms-eval gives on the same responses. Pure: no Node imports, no I/O.
 *
 * Reference: github.com/EvolvingLMMs-Lab/lmms-eval at commit
 * 75571cfe0fa36ca5ec2e6aa2bb268f9d38295af3 (2026-08-06), `lmms_eval/tasks/<task>/utils.py` and the
 * task YAMLs; each module names the functions it follows. Tasks: mmmu_val, mmstar, mme, ocrbench,
 * mmbench_en_dev / mmbench_cn_dev (static, no GPT judge), textvqa_val, docvqa_val, infovqa_val,
 * ai2d, chartqa, realworldqa.
 *
 * Every response is stripped (Python `str.strip()`) before scoring, as lmms-eval's
 * `Task.process_results` does. A missing prediction counts as wrong (0).
 *
 * Decoding: greedy (temperature 0) everywhere; max_new_tokens from the task YAML. MMStar and TextVQA
 * set none, so the model class's default applies: 128 for lmms-eval's `gemma3` model (the paper's
 * base model; its OpenAI-compatible client would use 1024).
 *
 * `VqaItem.meta` fields the scorers read (the loaders fill them):
 * - MMBench (en, cn): `index` (number or numeric string) — the release's row index: circular
 *   rotations of one source question carry `i`, `i + 1e6`, `i + 2e6`, ... (or all the same `i`);
 *   grouped by `index mod 1e6`. Without it an item is its own group. `category` and `l2category`
 *   (the release's `L2-category`), optional, for the breakdown. Options A-E in `options`, the hint
 *   in `hint` (absent when the release has NaN), the gold letter in `answers[0]`.
 * - MMStar: `l2category` (the release's `l2_category`, e.g. "image scene and topic") — the headline is
 *   the mean over l2 categories of their accuracy; `category` (e.g. "coarse perception") for the
 *   breakdown. Without `l2category`, `category` is the averaging unit. Options inside `question`
 *   (Lin-Chen/MMStar) or in `options` (VLMEvalKit's columns A-D); the prompt shows them either way.
 * - MME: `subtask` (lmms-eval's `category`, e.g. "existence", "OCR", "code_reasoning") and `imageId`
 *   (lmms-eval's `question_id`, the image file both of its questions share); `answers[0]` "Yes"/"No".
 * - MMMU: `questionType` ("multiple-choice" | "open"; absent: multiple choice when `options` exist);
 *   `subject` only when the item id is not lmms-eval's "validation_<Subject>_<n>". MC gold: the
 *   letter; open gold: the answer string(s).
 * - OCRBench: `category` (lmms-eval's `question_type`, one of `OCRBENCH_CATEGORIES`) and `dataset`
 *   (the source, e.g. "HME100k"; absent: HME100k ⇔ the "Handwritten Mathematical Expression
 *   Recognition" category). `answers`: every accepted answer.
 * - ChartQA: `type` ("human_test" | "augmented_test"), optional, for the breakdown.
 * - RealWorldQA: none (options inside `question` or in `options`; `answers[0]` a letter or a short answer).
 * - AI2D: none (`options` in order; `answers[0]` the gold letter).
 * - TextVQA: none (`answers`: the 10 human answers). DocVQA, InfoVQA: none.
 */
import type { BenchmarkId, BenchmarkScore, GenerationSettings, VqaItem } from '../../../data-schemas/vqa';
import { anls } from './anls';
import { relaxedCorrectness } from './chartqa';
import { ai2dCorrect, mmstarCorrect, mmstarPrompt, realworldqaCorrect, realworldqaPrompt } from './choice';
import { mmbenchCircular, mmbenchItemCorrect, mmbenchPrompt } from './mmbench';
import { mmeItemCorrect, mmePrompt, mmeScore } from './mme';
import { isMultipleChoice, mmmuItem, mmmuPrompt, mmmuSubject } from './mmmu';
import { HME_CATEGORY, isHme, OCRBENCH_CATEGORIES, OCRBENCH_RECOGNITION, ocrbenchHit } from './ocrbench';
import { pyCapitalize, pyStrip } from './py';
import { vqaAccuracy } from './vqa-accuracy';

export interface BenchmarkDefinition {
  id: BenchmarkId;
  title: string;
  /** Builds the text prompt from an item (images are passed separately, in item order). */
  prompt(item: VqaItem): string;
  /**
   * Names the rule `prompt` follows: bumped whenever `prompt` can give a different text for the
   * same item, so predictions made with an older prompt can be told apart (and recomputed).
   */
  promptVersion: string;
  generation: GenerationSettings;
  /** Scores items against their predictions (matched by item id; a missing prediction counts as wrong). */
  score(items: VqaItem[], predictions: Map<string, string>): BenchmarkScore;
  /**
   * Per-item correctness for reports (1/0, or the item's partial score). Where the metric is not
   * per item (MME acc+ per image pair, MMBench circular per group) this is the item's plain
   * correctness.
   */
  itemScore(item: VqaItem, prediction: string | undefined): number;
}

const SHORT_ANSWER = '\nAnswer the question using a single word or phrase.';
const LETTER_DIRECTLY = "\nAnswer with the option's letter from the given choices directly.";

const greedy = (maxNewTokens: number, topP?: number): GenerationSettings =>
  topP === undefined ? { maxNewTokens, temperature: 0 } : { maxNewTokens, temperature: 0, topP };

const pct = (hits: number, n: number): number => (n === 0 ? 0 : (100 * hits) / n);

/** Mean of per-item scores in %, with a missing prediction scoring 0. */
function meanPercent(items: readonly VqaItem[], predictions: ReadonlyMap<string, string>, itemScore: (item: VqaItem, p: string | undefined) => number): number {
  let total = 0;
  for (const item of items) total += itemScore(item, predictions.get(item.id));
  return pct(total, items.length);
}

/** Accuracy in % of the items grouped by a meta field. */
function percentBy(
  items: readonly VqaItem[],
  predictions: ReadonlyMap<string, string>,
  key: (item: VqaItem) => string | undefined,
  itemScore: (item: VqaItem, p: string | undefined) => number,
  prefix: string,
): Record<string, number> {
  const acc = new Map<string, [number, number]>();
  for (const item of items) {
    const k = key(item);
    if (k === undefined) continue;
    const cur = acc.get(k) ?? [0, 0];
    acc.set(k, [cur[0] + itemScore(item, predictions.get(item.id)), cur[1] + 1]);
  }
  return Object.fromEntries([...acc].map(([k, [s, n]]) => [`${prefix}${k}`, pct(s, n)]));
}

const metaString = (item: VqaItem, field: string): string | undefined => {
  const v = item.meta[field];
  return v === undefined ? undefined : String(v);
};

/** Runs a rule on the stripped response; a missing response scores 0. */
const onStripped =
  (rule: (item: VqaItem, response: string) => number) =>
  (item: VqaItem, prediction: string | undefined): number =>
    prediction === undefined ? 0 : rule(item, pyStrip(prediction));

const firstAnswer = (item: VqaItem): string => item.answers[0] ?? '';

function simpleBenchmark(
  id: BenchmarkId,
  title: string,
  metric: string,
  prompt: (item: VqaItem) => string,
  promptVersion: string,
  generation: GenerationSettings,
  itemScore: (item: VqaItem, prediction: string | undefined) => number,
  breakdown?: (items: VqaItem[], predictions: Map<string, string>) => Record<string, number>,
): BenchmarkDefinition {
  return {
    id,
    title,
    prompt,
    promptVersion,
    generation,
    itemScore,
    score: (items, predictions) => ({
      benchmark: id,
      value: meanPercent(items, predictions, itemScore),
      metric,
      items: items.length,
      breakdown: breakdown ? breakdown(items, predictions) : {},
    }),
  };
}

// --- MMMU -------------------------------------------------------------------------------------

/** The breakdown entry that judges every candidate of an open answer (the official MMMU rule, and lmms-eval 0.7.3's). */
export const MMMU_OFFICIAL_BREAKDOWN = 'accuracy (official MMMU open rule)';

const mmmuItemScore = (item: VqaItem, prediction: string | undefined): number => (mmmuItem(item, prediction).correct ? 1 : 0);

const mmmu: BenchmarkDefinition = {
  id: 'mmmu',
  title: 'MMMU (val)',
  prompt: mmmuPrompt,
  promptVersion: 'v1',
  generation: greedy(128),
  itemScore: mmmuItemScore,
  score(items, predictions) {
    let correct = 0;
    let official = 0;
    let guessed = 0;
    const mc = { hits: 0, n: 0 };
    const open = { hits: 0, n: 0 };
    for (const item of items) {
      const r = mmmuItem(item, predictions.get(item.id));
      correct += r.correct ? 1 : 0;
      official += r.officialCorrect ? 1 : 0;
      guessed += r.guessed ? 1 : 0;
      const bucket = isMultipleChoice(item) ? mc : open;
      bucket.hits += r.correct ? 1 : 0;
      bucket.n += 1;
    }
    return {
      benchmark: 'mmmu',
      value: pct(correct, items.length),
      metric: 'accuracy',
      items: items.length,
      breakdown: {
        [MMMU_OFFICIAL_BREAKDOWN]: pct(official, items.length),
        'multiple-choice accuracy': pct(mc.hits, mc.n),
        'multiple-choice items': mc.n,
        'open accuracy': pct(open.hits, open.n),
        'open items': open.n,
        'random guesses': guessed,
        ...percentBy(items, predictions, mmmuSubject, mmmuItemScore, 'subject/'),
      },
    };
  },
};

// --- MMStar -----------------------------------------------------------------------------------

const mmstarItemScore = onStripped((item, r) => (mmstarCorrect(r, firstAnswer(item)) ? 1 : 0));
const mmstarUnit = (item: VqaItem): string => metaString(item, 'l2category') ?? metaString(item, 'category') ?? 'unknown';

/** Mean over averaging units (l2 categories) of their accuracy, in %. */
function macroPercent(items: readonly VqaItem[], predictions: ReadonlyMap<string, string>): number {
  const per = percentBy(items, predictions, mmstarUnit, mmstarItemScore, '');
  const values = Object.values(per);
  return values.length === 0 ? 0 : values.reduce((a, b) => a + b, 0) / values.length;
}

const mmstar: BenchmarkDefinition = {
  id: 'mmstar',
  title: 'MMStar',
  prompt: mmstarPrompt,
  // v2: options given in columns (VLMEvalKit's MMStar.tsv) are shown; v1 showed the question only.
  promptVersion: 'v2',
  generation: greedy(128),
  itemScore: mmstarItemScore,
  score(items, predictions) {
    const categories = new Set(items.map((i) => metaString(i, 'category')).filter((c): c is string => c !== undefined));
    const breakdown: Record<string, number> = { 'micro accuracy': meanPercent(items, predictions, mmstarItemScore) };
    for (const c of categories) breakdown[`category/${c}`] = macroPercent(items.filter((i) => metaString(i, 'category') === c), predictions);
    Object.assign(breakdown, percentBy(items, predictions, (i) => metaString(i, 'l2category'), mmstarItemScore, 'l2/'));
    return { benchmark: 'mmstar', value: macroPercent(items, predictions), metric: 'average accuracy over l2 categories', items: items.length, breakdown };
  },
};

// --- MME --------------------------------------------------------------------------------------

const mmeItemScore = (item: VqaItem, prediction: string | undefined): number => (mmeItemCorrect(item, prediction) ? 1 : 0);

const mme: BenchmarkDefinition = {
  id: 'mme',
  title: 'MME',
  prompt: mmePrompt,
  promptVersion: 'v1',
  generation: greedy(16, 1),
  itemScore: mmeItemScore,
  score(items, predictions) {
    const r = mmeScore(items, predictions);
    return {
      benchmark: 'mme',
      value: r.perception,
      metric: 'perception',
      items: items.length,
      breakdown: {
        cognition: r.cognition,
        total: r.perception + r.cognition,
        'question accuracy': meanPercent(items, predictions, mmeItemScore),
        ...Object.fromEntries(Object.entries(r.subtasks).map(([k, v]) => [`subtask/${k}`, v])),
      },
    };
  },
};

// --- OCRBench ---------------------------------------------------------------------------------

const ocrbenchItemScore = onStripped((item, r) => (ocrbenchHit(r, item.answers, isHme(item)) ? 1 : 0));

const ocrbench: BenchmarkDefinition = {
  id: 'ocrbench',
  title: 'OCRBench',
  prompt: (item) => pyStrip(item.question),
  promptVersion: 'v1',
  generation: greedy(128, 1),
  itemScore: ocrbenchItemScore,
  score(items, predictions) {
    const byCategory = new Map<string, number>();
    let hits = 0;
    for (const item of items) {
      const hit = ocrbenchItemScore(item, predictions.get(item.id));
      hits += hit;
      const c = metaString(item, 'category') ?? (isHme(item) ? HME_CATEGORY : 'unknown');
      byCategory.set(c, (byCategory.get(c) ?? 0) + hit);
    }
    const recognition = OCRBENCH_RECOGNITION.reduce((a, c) => a + (byCategory.get(c) ?? 0), 0);
    const breakdown: Record<string, number> = {
      hits,
      'accuracy %': pct(hits, items.length),
      'hits per 1000': items.length === 0 ? 0 : (hits * 1000) / items.length,
      'Text Recognition': recognition,
    };
    for (const c of OCRBENCH_CATEGORIES) if (byCategory.has(c)) breakdown[`category/${c}`] = byCategory.get(c)!;
    for (const [c, v] of byCategory) if (!(OCRBENCH_CATEGORIES as readonly string[]).includes(c)) breakdown[`category/${c}`] = v;
    // lmms-eval: Final_score / 1000 (not rescaled on a subset); ×100 for Table 1's %.
    return { benchmark: 'ocrbench', value: hits / 10, metric: 'final score / 1000 (%)', items: items.length, breakdown };
  },
};

// --- MMBench ----------------------------------------------------------------------------------

function mmbench(lang: 'en' | 'cn'): BenchmarkDefinition {
  const id: BenchmarkId = lang === 'en' ? 'mmbench-en' : 'mmbench-cn';
  const itemScore = (item: VqaItem, prediction: string | undefined): number => (mmbenchItemCorrect(item, prediction) ? 1 : 0);
  return {
    id,
    title: lang === 'en' ? 'MMBench (en)' : 'MMBench (cn)',
    prompt: (item) => mmbenchPrompt(item, lang),
    promptVersion: 'v1',
    generation: greedy(lang === 'en' ? 1024 : 256, 1),
    itemScore,
    score(items, predictions) {
      const r = mmbenchCircular(items, predictions);
      return {
        benchmark: id,
        value: r.circular,
        metric: 'circular accuracy',
        items: items.length,
        breakdown: {
          'single-pass accuracy': r.single,
          groups: r.groups,
          ...Object.fromEntries(Object.entries(r.byCategory).map(([k, v]) => [`category/${k}`, v])),
          ...Object.fromEntries(Object.entries(r.byL2Category).map(([k, v]) => [`l2/${k}`, v])),
        },
      };
    },
  };
}

// --- The rest: one mean over items ------------------------------------------------------------

const textvqa = simpleBenchmark(
  'textvqa',
  'TextVQA (val)',
  'VQA accuracy',
  (item) => `${pyCapitalize(item.question)}${SHORT_ANSWER}`,
  'v1',
  greedy(128),
  onStripped((item, r) => vqaAccuracy(r, item.answers)),
);

const docvqa = simpleBenchmark(
  'docvqa',
  'DocVQA (val)',
  'ANLS',
  (item) => `${item.question}${SHORT_ANSWER}`,
  'v1',
  greedy(32),
  onStripped((item, r) => anls(r, item.answers)),
);

const infovqa = simpleBenchmark(
  'infovqa',
  'InfoVQA (val)',
  'ANLS',
  (item) => `${item.question}${SHORT_ANSWER}`,
  'v1',
  greedy(32),
  onStripped((item, r) => anls(r, item.answers)),
);

const ai2d = simpleBenchmark(
  'ai2d',
  'AI2D',
  'accuracy',
  (item) => `${item.question}\n${(item.options ?? []).map((o) => `${o.label}. ${o.text}`).join('\n')}${LETTER_DIRECTLY}`,
  'v1',
  greedy(16),
  onStripped((item, r) => (ai2dCorrect(r, firstAnswer(item)) ? 1 : 0)),
);

const chartqaItemScore = onStripped((item, r) => (item.answers.some((a) => relaxedCorrectness(r, a)) ? 1 : 0));
const chartqa = simpleBenchmark(
  'chartqa',
  'ChartQA',
  'relaxed accuracy',
  (item) => `${item.question}\nAnswer the question with a single word.`,
  'v1',
  greedy(16),
  chartqaItemScore,
  (items, predictions) => percentBy(items, predictions, (i) => metaString(i, 'type'), chartqaItemScore, 'type/'),
);

const realworldqa = simpleBenchmark(
  'realworldqa',
  'RealWorldQA',
  'accuracy',
  realworldqaPrompt,
  // v2: options given in columns (VLMEvalKit's RealWorldQA.tsv) are shown; v1 showed the question only.
  'v2',
  greedy(16, 1),
  onStripped((item, r) => (realworldqaCorrect(r, firstAnswer(item)) ? 1 : 0)),
);

export const BENCHMARKS: Record<BenchmarkId, BenchmarkDefinition> = {
  mmmu,
  mmstar,
  mme,
  ocrbench,
  'mmbench-en': mmbench('en'),
  'mmbench-cn': mmbench('cn'),
  textvqa,
  docvqa,
  infovqa,
  ai2d,
  chartqa,
  realworldqa,
};
