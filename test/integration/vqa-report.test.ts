import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { screenshotElement, withBrowserPage } from '../../activities/vqa/browser';
import { collectPageErrors } from '../helpers/browser';
import { computeRetention, renderReportHtml, type ScoreTable } from '../../activities/vqa/report';
import type { BenchmarkId, BenchmarkScore, ModelSpec } from '../../data-schemas/vqa';

const score = (benchmark: BenchmarkId, value: number): BenchmarkScore => ({ benchmark, value, metric: 'accuracy', items: 10, breakdown: {} });

const models: ModelSpec[] = [
  { name: 'gemma3-base', backend: 'local', baseModel: '/models/base' },
  { name: 'vlm2vla', backend: 'local', baseModel: '/models/base', adapter: '/runs/a/adapter', baseOf: 'gemma3-base' },
];
const benchmarks: BenchmarkId[] = ['mmbench-en', 'mme', 'ocrbench'];
const scores: ScoreTable = {
  'gemma3-base': { 'mmbench-en': score('mmbench-en', 76.9), mme: score('mme', 1182.3), ocrbench: score('ocrbench', 75) },
  vlm2vla: { 'mmbench-en': score('mmbench-en', 68.5), mme: score('mme', 1391.7), ocrbench: score('ocrbench', 60) },
};

describe('the retention report', () => {
  it('computes retention per benchmark and overall, flagging what falls under 85%', () => {
    const [r] = computeRetention(models, scores, benchmarks);
    expect(r!.model).toBe('vlm2vla');
    expect(r!.perBenchmark['mmbench-en']).toBeCloseTo(68.5 / 76.9, 10);
    expect(r!.perBenchmark.ocrbench).toBeCloseTo(0.8, 10);
    expect(r!.below).toEqual(['ocrbench']);
    expect(r!.overall).toBeCloseTo((68.5 / 76.9 + 1391.7 / 1182.3 + 0.8) / 3, 10);
    // A model without baseOf has no retention row.
    expect(computeRetention([models[0]!], scores, benchmarks)).toEqual([]);
  });

  it('renders a page that a real headless Chromium shows with the scores, the flags, the paper beside ours and one bar per score', async () => {
    const retention = computeRetention(models, scores, benchmarks);
    const html = renderReportHtml({ title: 'VQA retention <test>', models, benchmarks, scores, retention, generatedAt: '2026-11-22T00:00:00Z', items: { 'mmbench-en': 10, mme: 10, ocrbench: 10 } });
    await withBrowserPage(async (page) => {
      const errors = collectPageErrors(page);
      await page.setContent(html, { waitUntil: 'load' });
      expect(await page.title()).toBe('VQA retention <test>');
      expect(await page.locator('#scores tr[data-model="vlm2vla"] td[data-benchmark="mme"]').innerText()).toBe('1391.7');
      expect(await page.locator('#scores tr.paper').count()).toBe(2);
      expect(await page.locator('#scores tr.paper').first().innerText()).toContain('1182.3');
      const flagged = page.locator('#retention tr[data-retention="vlm2vla"] td.below');
      expect(await flagged.count()).toBe(1);
      expect(await flagged.innerText()).toBe('80.0%');
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
