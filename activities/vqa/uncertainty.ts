/**
 * How sure a score is. Pure: no I/O.
 *
 * Standard errors follow lmms-eval (`lmms_eval/api/metrics.py`, as in lm-evaluation-harness): a
 * headline that is the mean of per-item scores gets `mean_stderr` (sample standard deviation / sqrt(n));
 * any other aggregation (MMBench's circular groups, MME's sum over subtasks with acc+ per image,
 * MMStar's mean over categories, OCRBench's hit count) gets the bootstrap's: the standard deviation of
 * the headline over resamples of the items, with replacement. lmms-eval reports no standard error for
 * its custom aggregations; the bootstrap is what it uses for the non-mean ones it does cover.
 *
 * Retention's interval is a paired bootstrap: each round draws one resample of the items both models
 * answered and scores both models on it, so the items' shared difficulty cancels in the ratio.
 * Seeded: the same predictions give the same intervals.
 */
import type { BenchmarkId, Interval, VqaItem } from '../../data-schemas/vqa';
import { createRng, type Rng } from '../robot/sim/rng';
import { quantile } from '../statistics';
import type { BenchmarkDefinition } from './scoring';
import { mmbenchGroup } from './scoring/mmbench';
import { MME_PERCEPTION } from './scoring/mme';

/** Rounds of every bootstrap (standard errors and intervals). */
export const BOOTSTRAP_ROUNDS = 1000;

/** Benchmarks whose headline is 100 x the mean of `itemScore` over the items. */
export const MEAN_AGGREGATED: ReadonlySet<BenchmarkId> = new Set<BenchmarkId>(['mmmu', 'textvqa', 'docvqa', 'infovqa', 'ai2d', 'chartqa', 'realworldqa']);

const mean = (xs: readonly number[]): number => (xs.length === 0 ? 0 : xs.reduce((a, x) => a + x, 0) / xs.length);

/** Sample standard deviation (n - 1); 0 below two values. */
export function sampleStddev(xs: readonly number[]): number {
  if (xs.length < 2) return 0;
  const mu = mean(xs);
  return Math.sqrt(xs.reduce((a, x) => a + (x - mu) ** 2, 0) / (xs.length - 1));
}

/** lmms-eval's `mean_stderr`. */
export function meanStderr(xs: readonly number[]): number {
  return xs.length < 2 ? 0 : sampleStddev(xs) / Math.sqrt(xs.length);
}

/** The central 95% of bootstrap values (never empty: every bootstrap has BOOTSTRAP_ROUNDS of them). */
export function percentileInterval(values: readonly number[]): Interval {
  return [quantile(values, 0.025), quantile(values, 0.975)];
}

const resampleIndices = (n: number, rng: Rng): number[] => Array.from({ length: n }, () => rng.int(0, n - 1));

/** Accumulates [sum, count] per key. */
function sumsBy<K>(n: number, key: (k: number) => K, value: (k: number) => number): Map<K, [number, number]> {
  const acc = new Map<K, [number, number]>();
  for (let k = 0; k < n; k++) {
    const cur = acc.get(key(k)) ?? [0, 0];
    cur[0] += value(k);
    cur[1] += 1;
    acc.set(key(k), cur);
  }
  return acc;
}

/**
 * The non-mean headlines recomputed from per-item scores (`itemScore`), for the bootstrap's
 * thousands of resamples: the scorers parse every response again on every call (MMStar ~0.3 ms an
 * item). Each gives what the scorer gives; scorer() checks that on the full item set and uses the
 * scorer itself where they differ (a scoring rule changed and this copy did not follow).
 */
export const HEADLINE_FROM_ITEM_SCORES: Partial<Record<BenchmarkId, (items: readonly VqaItem[], scores: readonly number[]) => number>> = {
  // Mean over l2 categories (else categories) of their accuracy.
  mmstar: (items, scores) => {
    const unit = (k: number): string => String(items[k]!.meta.l2category ?? items[k]!.meta.category ?? 'unknown');
    const per = [...sumsBy(items.length, unit, (k) => scores[k]!).values()].map(([s, n]) => (100 * s) / n);
    return mean(per);
  },
  // Sum over the perception subtasks of acc + acc+ (per image, every question right), each in %.
  mme: (items, scores) => {
    const bySubtask = new Map<string, Map<string, [number, number]>>();
    items.forEach((item, k) => {
      const subtask = String(item.meta.subtask ?? 'unknown');
      const images = bySubtask.get(subtask) ?? new Map<string, [number, number]>();
      bySubtask.set(subtask, images);
      const image = String(item.meta.imageId ?? item.id);
      const cur = images.get(image) ?? [0, 0];
      images.set(image, [cur[0] + scores[k]!, cur[1] + 1]);
    });
    let perception = 0;
    for (const subtask of MME_PERCEPTION) {
      const images = bySubtask.get(subtask);
      if (!images) continue;
      let total = 0;
      for (const [right, n] of images.values()) total += (right / n) * 100 + (right === n ? 100 : 0);
      perception += total / images.size;
    }
    return perception;
  },
  // OCRBench's final score / 1000, in %: hits / 10.
  ocrbench: (_items, scores) => scores.reduce((a, x) => a + x, 0) / 10,
  // Circular accuracy: a source question counts when every rotation of it is right.
  'mmbench-en': (items, scores) => circularPercent(items, scores),
  'mmbench-cn': (items, scores) => circularPercent(items, scores),
};

function circularPercent(items: readonly VqaItem[], scores: readonly number[]): number {
  const groups = sumsBy(items.length, (k) => mmbenchGroup(items[k]!), (k) => (scores[k] === 1 ? 1 : 0));
  let hits = 0;
  for (const [right, n] of groups.values()) if (right === n) hits++;
  return groups.size === 0 ? 0 : (100 * hits) / groups.size;
}

/** Scores one model on a resample of items (indices into `items`), by the cheapest exact way. */
function scorer(definition: BenchmarkDefinition, items: readonly VqaItem[], predictions: ReadonlyMap<string, string>): (indices: readonly number[]) => number {
  const perItem = items.map((item) => definition.itemScore(item, predictions.get(item.id)));
  if (MEAN_AGGREGATED.has(definition.id)) return (indices) => 100 * mean(indices.map((i) => perItem[i]!));
  const map = new Map(predictions);
  const fromItemScores = HEADLINE_FROM_ITEM_SCORES[definition.id];
  if (fromItemScores && Math.abs(fromItemScores(items, perItem) - definition.score([...items], map).value) < 1e-9) {
    return (indices) =>
      fromItemScores(
        indices.map((i) => items[i]!),
        indices.map((i) => perItem[i]!),
      );
  }
  return (indices) => definition.score(indices.map((i) => items[i]!), map).value;
}

/**
 * The standard error of a benchmark's headline. `predictions` are the scored answers (a missing
 * one scores 0); `seed` makes the bootstrap repeatable.
 */
export function scoreStderr(
  definition: BenchmarkDefinition,
  items: readonly VqaItem[],
  predictions: ReadonlyMap<string, string>,
  seed: string,
): { stderr: number; method: 'mean' | 'bootstrap' } {
  if (MEAN_AGGREGATED.has(definition.id)) {
    return { stderr: 100 * meanStderr(items.map((item) => definition.itemScore(item, predictions.get(item.id)))), method: 'mean' };
  }
  if (items.length < 2) return { stderr: 0, method: 'bootstrap' };
  const rng = createRng(seed);
  const score = scorer(definition, items, predictions);
  const values = Array.from({ length: BOOTSTRAP_ROUNDS }, () => score(resampleIndices(items.length, rng)));
  return { stderr: sampleStddev(values), method: 'bootstrap' };
}

export interface PairedBenchmark {
  definition: BenchmarkDefinition;
  /** The items both models answered. */
  items: readonly VqaItem[];
  fineTuned: ReadonlyMap<string, string>;
  base: ReadonlyMap<string, string>;
}

/**
 * fine-tuned / base. Benchmarks whose base scores 0 are left out before this is called
 * (computeRetention); a bootstrap resample on which the base happens to score 0 counts as kept.
 */
export const retentionRatio = (fineTuned: number, base: number): number => (base === 0 ? 1 : fineTuned / base);

/**
 * Paired bootstrap 95% intervals of retention per benchmark and of their mean: each round resamples
 * every benchmark's paired items once and scores both models on that same resample.
 */
export function pairedRetentionIntervals(benchmarks: readonly PairedBenchmark[], seed: string): { perBenchmark: Partial<Record<BenchmarkId, Interval>>; overall: Interval } {
  const rng = createRng(seed);
  const scorers = benchmarks.map((b) => ({ id: b.definition.id, n: b.items.length, ft: scorer(b.definition, b.items, b.fineTuned), base: scorer(b.definition, b.items, b.base) }));
  const ratios = scorers.map(() => [] as number[]);
  const overall: number[] = [];
  for (let round = 0; round < BOOTSTRAP_ROUNDS; round++) {
    const roundRatios = scorers.map((s, k) => {
      const indices = resampleIndices(s.n, rng);
      const ratio = retentionRatio(s.ft(indices), s.base(indices));
      ratios[k]!.push(ratio);
      return ratio;
    });
    overall.push(mean(roundRatios));
  }
  const perBenchmark: Partial<Record<BenchmarkId, Interval>> = {};
  scorers.forEach((s, k) => {
    perBenchmark[s.id] = s.n === 0 ? [0, 0] : percentileInterval(ratios[k]!);
  });
  return { perBenchmark, overall: scorers.length === 0 ? [0, 0] : percentileInterval(overall) };
}
