import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { screenshotElement, withBrowserPage } from '../../activities/vqa/browser';
import { collectPageErrors } from '../helpers/browser';
import { computeRetention, renderReportHtml, type ScoreTable } from '../../activities/vqa/report';
import type { BenchmarkId, BenchmarkResult, ModelSpec } from '../../data-schemas/vqa';

const score = (benchmark: BenchmarkId, value: number, truncated = 0, withheld = 0): BenchmarkResult => ({
  benchmark,
  value,
  metric: 'accuracy',
  items: 10,
  breakdown: {},
  stderr: value / 50,
  stderrMethod: 'mean',
  truncated,
  withheld,
  missing: 0,
});

const models: ModelSpec[] = [
  { name: 'gemma3-base', backend: 'local', baseModel: '/models/base' },
  { name: 'vlm2vla', backend: 'local', baseModel: '/models/base', adapter: '/runs/a/adapter', baseOf: 'gemma3-base' },
];
const benchmarks: BenchmarkId[] = ['mmbench-en', 'mme', 'ocrbench'];
const scores: ScoreTable = {
  'gemma3-base': { 'mmbench-en': score('mmbench-en', 76.9), mme: score('mme', 1182.3), ocrbench: score('ocrbench', 75) },
  vlm2vla: { 'mmbench-en': score('mmbench-en', 68.5, 2), mme: score('mme', 1391.7, 0, 4), ocrbench: score('ocrbench', 60, 1) },
};

describe('the retention report', () => {
  it('computes retention per benchmark and overall, flagging what falls under 85%', () => {
    const [r] = computeRetention(models, scores, benchmarks);
    expect(r!.model).toBe('vlm2vla');
    expect(r!.perBenchmark['mmbench-en']).toBeCloseTo(68.5 / 76.9, 10);
    expect(r!.perBenchmark.ocrbench).toBeCloseTo(0.8, 10);
    expect(r!.below).toEqual(['ocrbench']);
    expect(r!.overall).toBeCloseTo((68.5 / 76.9 + 1391.7 / 1182.3 + 0.8) / 3, 10);
    expect(r!.threshold).toBe(0.85);
    expect(r!.gate).toBe('passed');
    // A model without baseOf has no retention row.
    expect(computeRetention([models[0]!], scores, benchmarks)).toEqual([]);
    // A configured threshold flags by it.
    const [strict] = computeRetention(models, scores, benchmarks, { threshold: 0.9 });
    expect(strict!.below).toEqual(['mmbench-en', 'ocrbench']);
  });

  it('leaves out a benchmark on which the base scores 0 (no retention to measure, not 100% kept), and a model with none measurable fails the gate, saying why', async () => {
    const zeroBase: ScoreTable = {
      'gemma3-base': { ...scores['gemma3-base'], ocrbench: score('ocrbench', 0) },
      vlm2vla: scores.vlm2vla!,
    };
    const [r] = computeRetention(models, zeroBase, benchmarks);
    expect(r!.perBenchmark.ocrbench).toBeUndefined();
    expect(r!.baseScoredZero).toEqual(['ocrbench']);
    expect(r!.below).toEqual([]);
    expect(r!.overall).toBeCloseTo((68.5 / 76.9 + 1391.7 / 1182.3) / 2, 10);

    const allZero: ScoreTable = {
      'gemma3-base': { 'mmbench-en': score('mmbench-en', 0), mme: score('mme', 0), ocrbench: score('ocrbench', 0) },
      vlm2vla: { 'mmbench-en': score('mmbench-en', 0), mme: score('mme', 0), ocrbench: score('ocrbench', 0) },
    };
    const retention = computeRetention(models, allZero, benchmarks);
    expect(retention[0]).toMatchObject({ perBenchmark: {}, overall: 0, baseScoredZero: benchmarks, gate: 'failed' });
    // Even a threshold of 0 does not pass a model whose retention was never measured.
    expect(computeRetention(models, allZero, benchmarks, { threshold: 0 })[0]!.gate).toBe('failed');
    const html = renderReportHtml({ title: 'zero', models, benchmarks, scores: allZero, retention, generatedAt: '2026-11-22T00:00:00Z', items: {}, predictions: { made: 0, reused: 0 } });
    await withBrowserPage(async (page) => {
      await page.setContent(html, { waitUntil: 'load' });
      expect(await page.locator('#retention tr[data-retention="vlm2vla"] td[data-benchmark="mme"]').innerText()).toBe('n/a (base 0)');
      expect(await page.locator('p.gate.failed[data-retention="vlm2vla"]').innerText()).toBe(
        "Retention gate FAILED: no benchmark on which gemma3-base scores above 0, so vlm2vla's retention cannot be measured.",
      );
    });
  });

  it('renders a page that a real headless Chromium shows with the scores, the flags, the paper beside ours and one bar per score', async () => {
    const retention = computeRetention(models, scores, benchmarks, {
      threshold: 1,
      paired: () => ({ perBenchmark: { ocrbench: [0.7, 0.9] }, overall: [0.85, 1.02], pairedItems: { ocrbench: 10 } }),
    });
    const html = renderReportHtml({
      title: 'VQA retention <test>',
      models,
      benchmarks,
      scores,
      retention,
      generatedAt: '2026-11-22T00:00:00Z',
      items: { 'mmbench-en': 10, mme: 10, ocrbench: 10 },
      predictions: { made: 7, reused: 53 },
      threshold: 1,
    });
    await withBrowserPage(async (page) => {
      const errors = collectPageErrors(page);
      await page.setContent(html, { waitUntil: 'load' });
      expect(await page.title()).toBe('VQA retention <test>');
      expect(await page.locator('#scores tr[data-model="vlm2vla"] td[data-benchmark="mme"] .value').innerText()).toBe('1391.7');
      // Every score carries its standard error.
      expect(await page.locator('#scores tr[data-model="vlm2vla"] td[data-benchmark="mme"]').innerText()).toBe('1391.7 ± 27.8');
      // Retention carries its paired interval; the gate's line says where the model stands.
      expect(await page.locator('#retention tr[data-retention="vlm2vla"] td[data-benchmark="ocrbench"]').innerText()).toBe('80.0% [70.0%, 90.0%]');
      expect(await page.locator('#retention tr[data-retention="vlm2vla"] td.overall').innerText()).toContain('[85.0%, 102.0%]');
      expect(await page.locator('p.gate.failed[data-retention="vlm2vla"]').innerText()).toMatch(/^Retention gate FAILED: vlm2vla keeps 95\.6% of gemma3-base \(95% interval 85\.0% to 102\.0%\), below the 100\.0% threshold\.$/);
      expect(await page.locator('#predictions .made').innerText()).toBe('7');
      expect(await page.locator('#predictions .reused').innerText()).toBe('53');
      expect(await page.locator('#truncated').innerText()).toBe('Truncated answers (stopped at the token limit, scored as wrong): 3 (vlm2vla MMB-en 2, vlm2vla OCRBench 1).');
      expect(await page.locator('#withheld').innerText()).toBe('Withheld answers (blocked by the provider for safety or recitation, scored as wrong): 4 (vlm2vla MME 4).');
      expect(await page.locator('#scores tr.paper').count()).toBe(2);
      expect(await page.locator('#scores tr.paper').first().innerText()).toContain('1182.3');
      const flagged = page.locator('#retention tr[data-retention="vlm2vla"] td.below');
      expect(await flagged.count()).toBe(3);
      expect(await flagged.first().innerText()).toBe('89.1%');
      expect(await page.locator('#chart rect.bar').count()).toBe(6);
      const chart = await page.locator('#chart').boundingBox();
      expect(chart!.width).toBeGreaterThan(200);
      expect(chart!.height).toBeGreaterThan(200);
      expect(errors).toEqual([]);
    });
    const png = await screenshotElement(html, '#chart');
    const meta = await sharp(png).metadata();
    expect(meta.format).toBe('png');
    expect(meta.width).toBeGreaterThan(400);
  });
});
