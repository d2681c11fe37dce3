/**
 * Standard errors (lmms-eval's mean_stderr and bootstrap), paired bootstrap retention intervals, and
 * the content keys of stored predictions. Figures worked by hand where they can be.
 */
import { mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { directorySha256, itemSha256, modelKeyOf, predictionKey } from '../../activities/vqa/prediction-key';
import { BENCHMARKS } from '../../activities/vqa/scoring';
import { quantile } from '../../activities/statistics';
import { HEADLINE_FROM_ITEM_SCORES, MEAN_AGGREGATED, meanStderr, pairedRetentionIntervals, scoreStderr } from '../../activities/vqa/uncertainty';
import { createRng } from '../../activities/robot/sim/rng';
import { BenchmarkId, VqaItem } from '../../data-schemas/vqa';

const choice = (benchmark: BenchmarkId, n: number, meta: (i: number) => VqaItem['meta'] = () => ({})): VqaItem[] =>
  Array.from({ length: n }, (_, i) =>
    VqaItem.parse({
      id: `q${i}`,
      benchmark,
      question: `Question ${i}?`,
      images: ['img.png'],
      options: [
        { label: 'A', text: 'cat' },
        { label: 'B', text: 'dog' },
      ],
      answers: ['A'],
      meta: meta(i),
    }),
  );
/** Right answers ("A") on the items the predicate picks, wrong ("B") on the others. */
const answers = (items: readonly VqaItem[], right: (i: number) => boolean): Map<string, string> => new Map(items.map((item, i) => [item.id, right(i) ? 'A' : 'B']));

describe('standard errors as lmms-eval computes them', () => {
  it('mean_stderr is the sample standard deviation over sqrt(n)', () => {
    // [1, 1, 1, 0]: mean 0.75, squared deviations 3 x 0.0625 + 0.5625 = 0.75, / (n - 1) = 0.25, sd 0.5, / sqrt(4) = 0.25.
    expect(meanStderr([1, 1, 1, 0])).toBeCloseTo(0.25, 12);
    expect(meanStderr([1])).toBe(0);
  });

  it('a benchmark whose headline is a mean gets mean_stderr on its own scale (%)', () => {
    const items = choice('ai2d', 4);
    const { stderr, method } = scoreStderr(BENCHMARKS.ai2d, items, answers(items, (i) => i < 3), 'seed');
    expect(method).toBe('mean');
    expect(stderr).toBeCloseTo(25, 10);
    expect(BENCHMARKS.ai2d.score(items, answers(items, (i) => i < 3)).value).toBeCloseTo(75, 10);
  });

  it('every benchmark listed as mean-aggregated scores as 100 x the mean of its item scores', () => {
    for (const id of MEAN_AGGREGATED) {
      const items = choice(id, 10, (): VqaItem['meta'] => (id === 'mmmu' ? { questionType: 'multiple-choice' } : {}));
      const predictions = answers(items, (i) => i % 3 !== 0);
      const perItem = items.map((item) => BENCHMARKS[id].itemScore(item, predictions.get(item.id)));
      expect(BENCHMARKS[id].score(items, predictions).value, id).toBeCloseTo((100 * perItem.reduce((a, b) => a + b, 0)) / items.length, 10);
    }
  });

  it('the fast headlines of the bootstrap equal the scorers own ones on resamples (rotations, image pairs, categories)', () => {
    const rng = createRng('fast-headlines');
    const metaOf: Partial<Record<BenchmarkId, (i: number) => VqaItem['meta']>> = {
      mmstar: (i) => ({ l2category: `l2-${i % 3}`, category: `c-${i % 2}` }),
      mme: (i) => ({ subtask: ['existence', 'count', 'OCR', 'code_reasoning'][i % 4]!, imageId: `img-${i >> 1}` }),
      ocrbench: (i) => ({ category: 'Regular Text Recognition', dataset: `d${i % 2}` }),
      'mmbench-en': (i) => ({ index: (i % 4) * 1_000_000 + (i >> 2), category: `c-${i % 3}` }),
      'mmbench-cn': (i) => ({ index: (i % 3) * 1_000_000 + Math.floor(i / 3) }),
    };
    for (const [id, fast] of Object.entries(HEADLINE_FROM_ITEM_SCORES) as [BenchmarkId, NonNullable<(typeof HEADLINE_FROM_ITEM_SCORES)[BenchmarkId]>][]) {
      const items = choice(id, 48, metaOf[id]).map((item) => (id === 'mme' ? { ...item, answers: ['Yes'] } : id === 'ocrbench' ? { ...item, answers: ['cat'] } : item));
      const right = id === 'mme' ? 'Yes' : id === 'ocrbench' ? 'cat' : 'A';
      const predictions = new Map(items.map((item) => [item.id, rng.chance(0.7) ? right : 'B']));
      for (let round = 0; round < 20; round++) {
        const sample = Array.from({ length: items.length }, () => items[rng.int(0, items.length - 1)]!);
        const scores = sample.map((item) => BENCHMARKS[id].itemScore(item, predictions.get(item.id)));
        expect(fast(sample, scores), id).toBeCloseTo(BENCHMARKS[id].score(sample, predictions).value, 9);
      }
    }
  });

  it('a non-mean aggregation gets the bootstrap: seeded, and close to mean_stderr where the aggregation happens to be a mean', () => {
    // MMStar averages over l2 categories; with one category that is the plain mean.
    const items = choice('mmstar', 200, () => ({ l2category: 'one' }));
    const predictions = answers(items, (i) => i % 4 !== 0);
    const a = scoreStderr(BENCHMARKS.mmstar, items, predictions, 'seed-1');
    expect(a.method).toBe('bootstrap');
    expect(scoreStderr(BENCHMARKS.mmstar, items, predictions, 'seed-1')).toEqual(a);
    const analytic = 100 * meanStderr(items.map((item) => BENCHMARKS.mmstar.itemScore(item, predictions.get(item.id))));
    expect(a.stderr).toBeGreaterThan(analytic * 0.85);
    expect(a.stderr).toBeLessThan(analytic * 1.15);
    // All right: nothing varies.
    expect(scoreStderr(BENCHMARKS.mmstar, items, answers(items, () => true), 'seed-1').stderr).toBe(0);
  });
});

describe('paired bootstrap retention intervals', () => {
  const items = choice('ai2d', 100);
  const base = answers(items, (i) => i % 5 !== 0); // 80%

  it('the same answers retain exactly 100%, in every resample', () => {
    const r = pairedRetentionIntervals([{ definition: BENCHMARKS.ai2d, items, fineTuned: base, base }], 'seed');
    expect(r.perBenchmark.ai2d).toEqual([1, 1]);
    expect(r.overall).toEqual([1, 1]);
  });

  it('is seeded, holds the point estimate, and pairing makes it narrower than independent resamples would', () => {
    // The fine-tuned model loses 10 of the base's right answers: 70 / 80 = 87.5%.
    const fineTuned = answers(items, (i) => i % 5 !== 0 && i % 10 !== 1);
    const data = [{ definition: BENCHMARKS.ai2d, items, fineTuned, base }];
    const r = pairedRetentionIntervals(data, 'seed');
    expect(pairedRetentionIntervals(data, 'seed')).toEqual(r);
    const [low, high] = r.perBenchmark.ai2d!;
    expect(low).toBeLessThan(0.875);
    expect(high).toBeGreaterThan(0.875);
    expect(high).toBeLessThanOrEqual(1);
    // Unpaired, each score's own 95% half-width alone is ~ 1.96 x sqrt(.7 x .3 / 100) / .8 ≈ 11 points of retention.
    expect(high - low).toBeLessThan(0.2);
    expect(r.overall).toEqual(r.perBenchmark.ai2d);
  });

  it('quantiles interpolate linearly between neighbours', () => {
    expect(quantile([0, 10], 0.25)).toBe(2.5);
    expect(quantile([1, 2, 3, 4, 5], 0.5)).toBe(3);
  });
});

describe('prediction keys', () => {
  const item = choice('ai2d', 1)[0]!;
  const base = { modelKey: 'm'.repeat(64), promptVersion: 'v1', prompt: 'Which animal?', generation: { maxNewTokens: 16, temperature: 0 }, itemSha256: itemSha256(item, ['aa']) };

  it('change with the model, the prompt version, the prompt, the generation settings and the item content, and with nothing else', () => {
    const key = predictionKey(base);
    expect(key).toMatch(/^[0-9a-f]{32}$/);
    expect(predictionKey({ ...base })).toBe(key);
    expect(predictionKey({ ...base, modelKey: 'n'.repeat(64) })).not.toBe(key);
    expect(predictionKey({ ...base, promptVersion: 'v2' })).not.toBe(key);
    expect(predictionKey({ ...base, prompt: 'Which animal? ' })).not.toBe(key);
    expect(predictionKey({ ...base, generation: { maxNewTokens: 17, temperature: 0 } })).not.toBe(key);
    expect(predictionKey({ ...base, generation: { maxNewTokens: 16, temperature: 0, topP: 0.9 } })).not.toBe(key);
    expect(predictionKey({ ...base, itemSha256: itemSha256(item, ['ab']) })).not.toBe(key);
  });

  it('an item hash covers its fields and image bytes, not the order meta was written in', () => {
    const withMeta = (meta: VqaItem['meta']): VqaItem => ({ ...item, meta });
    expect(itemSha256(withMeta({ a: 1, b: 'x' }), ['aa'])).toBe(itemSha256(withMeta({ b: 'x', a: 1 }), ['aa']));
    expect(itemSha256(withMeta({ a: 1 }), ['aa'])).not.toBe(itemSha256(withMeta({ a: 2 }), ['aa']));
    expect(itemSha256({ ...item, answers: ['B'] }, ['aa'])).not.toBe(itemSha256(item, ['aa']));
  });

  it('a model key names the adapter content, and a directory hash follows the files content', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vla-dirhash-'));
    try {
      writeFileSync(join(dir, 'adapter_config.json'), '{"r":4}');
      writeFileSync(join(dir, 'adapter_model.safetensors'), 'weights-1');
      const first = await directorySha256(dir);
      expect(first).toMatch(/^sha256:[0-9a-f]{64}$/);
      writeFileSync(join(dir, '.complete'), '');
      expect(await directorySha256(dir)).toBe(first);
      // Same size, new content (and a new modification time, as any write gives).
      writeFileSync(join(dir, 'adapter_model.safetensors'), 'weights-2');
      utimesSync(join(dir, 'adapter_model.safetensors'), new Date(2030, 0, 1), new Date(2030, 0, 1));
      const second = await directorySha256(dir);
      expect(second).not.toBe(first);
      const identity = (adapter: string) => modelKeyOf({ backend: 'local', baseModel: 'sha256:base', adapter });
      expect(identity(first)).not.toBe(identity(second));
      expect(modelKeyOf({ backend: 'local', baseModel: 'sha256:base', adapter: null })).not.toBe(identity(first));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
