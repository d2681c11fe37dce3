/**
 * The lmms-eval result files of a sweep (activities/vqa/lmms-eval.ts): task names, per-item metric
 * shapes and the aggregated values, worked by hand from lmms-eval 0.7.3's task YAMLs and utils. The
 * integration test (vqa-sweep.test.ts) has lmms-eval's own code read the files a sweep writes.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { BenchmarkId, VqaItem, type BenchmarkResult } from '../../data-schemas/vqa';
import { BENCHMARKS } from '../../activities/vqa/scoring';
import { renderReportHtml } from '../../activities/vqa/report';
import { LMMS_TASKS, lmmsDateId, lmmsEvalFiles, lmmsModelFolder, pyRepr, type ScoredSample } from '../../activities/vqa/lmms-eval';

const item = (over: Partial<VqaItem> & Pick<VqaItem, 'id' | 'benchmark'>): VqaItem => VqaItem.parse({ question: 'Q?', images: ['img.png'], answers: ['A'], ...over });
const abcd = ['cat', 'dog', 'bird', 'fish'].map((text, i) => ({ label: String.fromCharCode(65 + i), text }));
const sha256 = (text: string): string => createHash('sha256').update(text, 'utf8').digest('hex');

/** Scores the samples with the benchmark's own scorer, as the sweep does. */
function run(benchmark: BenchmarkId, samples: ScoredSample[]) {
  const items = samples.map((s) => s.item);
  const responses = new Map(samples.flatMap((s) => (s.scored === undefined ? [] : [[s.item.id, s.scored] as const])));
  const score: BenchmarkResult = { ...BENCHMARKS[benchmark].score(items, responses), stderr: 0, stderrMethod: 'mean', truncated: 0, withheld: 0, missing: 0 };
  return lmmsEvalFiles({ model: { name: 'org/tiny lora', args: 'pretrained=/m', backend: 'local' }, date: new Date('2026-12-08T01:02:03Z'), limit: 4, benchmarks: [{ benchmark, score, samples }], hash: sha256 });
}

describe('lmms-eval task names and file names', () => {
  it('maps every benchmark to the task lmms-eval 0.7.3 names', () => {
    expect(Object.fromEntries(BenchmarkId.options.map((b) => [b, LMMS_TASKS[b].task]))).toEqual({
      mmmu: 'mmmu_val',
      mmstar: 'mmstar',
      mme: 'mme',
      ocrbench: 'ocrbench',
      'mmbench-en': 'mmbench_en_dev',
      'mmbench-cn': 'mmbench_cn_dev',
      textvqa: 'textvqa_val',
      docvqa: 'docvqa_val',
      infovqa: 'infovqa_val',
      ai2d: 'ai2d',
      chartqa: 'chartqa',
      realworldqa: 'realworldqa',
    });
  });

  it('names files as get_datetime_str and sanitize_model_name do', () => {
    expect(lmmsDateId(new Date('2026-12-08T01:02:03.456Z'))).toBe('20261208_010203');
    expect(lmmsModelFolder('lmms-lab/llava-onevision-qwen2-0.5b')).toBe('lmms-lab__llava-onevision-qwen2-0.5b');
    expect(lmmsModelFolder('a/b/c:d')).toBe('b__c__d');
    expect(lmmsModelFolder('tiny-lora')).toBe('tiny-lora');
  });

  it('prints targets as Python str() of a list', () => {
    expect(pyRepr('it\'s')).toBe('"it\'s"');
    expect(pyRepr('a\nb\\')).toBe("'a\\nb\\\\'");
    expect(pyRepr('say "hi" it\'s')).toBe("'say \"hi\" it\\'s'");
  });
});

describe('AI2D: a mean metric under the flexible-extract filter', () => {
  const items = [0, 1, 2, 3].map((n) => item({ id: `ai2d-${n}`, benchmark: 'ai2d', options: abcd, answers: ['B'] }));
  // Right, right (with text the filter drops), truncated (scored as wrong), wrong.
  const samples: ScoredSample[] = [
    { item: items[0]!, response: 'B', scored: 'B' },
    { item: items[1]!, response: 'B. dog', scored: 'B. dog' },
    { item: items[2]!, response: 'B because it is so', scored: undefined },
    { item: items[3]!, response: 'C', scored: 'C' },
  ];
  const files = run('ai2d', samples);

  it('writes <date>_samples_ai2d.jsonl with the flattened lines save_results_samples writes', () => {
    expect([...files.samples.keys()]).toEqual(['20261208_010203_samples_ai2d.jsonl']);
    const lines = files.samples.get('20261208_010203_samples_ai2d.jsonl')!.lines;
    expect(lines.map((l) => l.exact_match)).toEqual([1, 1, 0, 0]);
    expect(lines[0]).toEqual({
      doc_id: 0,
      target: 'B',
      filtered_resps: 'B',
      token_counts: [null],
      doc_hash: sha256(JSON.stringify(items[0], null, 2)),
      exact_match: 1,
      input: BENCHMARKS.ai2d.prompt(items[0]!),
    });
    // resps stays only where the filter changed the response.
    expect(lines[1]).toMatchObject({ resps: ['B. dog'], filtered_resps: 'B' });
    expect(Object.keys(lines[1]!)).toEqual(['doc_id', 'target', 'resps', 'filtered_resps', 'token_counts', 'doc_hash', 'exact_match', 'input']);
  });

  it('aggregates as lmms-eval does: mean and mean_stderr, keyed "<metric>,<filter>"', () => {
    const results = files.results as { results: Record<string, Record<string, unknown>>; task_hashes: Record<string, string> };
    expect(files.resultsName).toBe('20261208_010203_results.json');
    expect(results.results.ai2d).toEqual({
      alias: 'ai2d',
      'exact_match,flexible-extract': 0.5,
      // [1, 1, 0, 0]: sample sd 0.57735, / sqrt(4).
      'exact_match_stderr,flexible-extract': expect.closeTo(Math.sqrt(1 / 3) / 2, 12),
      'exact_match_stderr_clt,flexible-extract': expect.closeTo(Math.sqrt(1 / 3) / 2, 12),
      'exact_match_stderr_clustered,flexible-extract': 'N/A',
    });
    const hashes = files.samples.get('20261208_010203_samples_ai2d.jsonl')!.lines.map((l, i) => `sample_${i}${l.doc_hash}`).join('');
    expect(results.task_hashes).toEqual({ ai2d: sha256(hashes) });
    expect(files.results).toMatchObject({
      'n-samples': { ai2d: { original: 4, effective: 4 } },
      'n-shot': { ai2d: 0 },
      higher_is_better: { ai2d: { exact_match: true } },
      config: { model_args: 'pretrained=/m', limit: 4 },
      date: '20261208_010203',
      model_name: 'org/tiny lora',
      model_name_sanitized: 'org__tiny lora',
    });
  });
});

describe('dict-valued per-item metrics follow process_results', () => {
  it('MME: one of mme_perception_score / mme_cognition_score per item, {question_id, category, score}; totals from the score', () => {
    const mk = (id: string, subtask: string, imageId: string, answer: string) => item({ id, benchmark: 'mme', answers: [answer], meta: { subtask, imageId } });
    const items = [mk('e1a', 'existence', 'e1.jpg', 'Yes'), mk('e1b', 'existence', 'e1.jpg', 'No'), mk('c1a', 'code_reasoning', 'c1.png', 'Yes'), mk('c1b', 'code_reasoning', 'c1.png', 'No')];
    const samples = items.map((i) => ({ item: i, response: 'Yes', scored: 'Yes' }));
    const files = run('mme', samples);
    const lines = [...files.samples.values()][0]!.lines;
    expect(lines.map((l) => l.mme_perception_score ?? l.mme_cognition_score)).toEqual([
      { question_id: 'e1.jpg', category: 'existence', score: 1 },
      { question_id: 'e1.jpg', category: 'existence', score: 0 },
      { question_id: 'c1.png', category: 'code_reasoning', score: 1 },
      { question_id: 'c1.png', category: 'code_reasoning', score: 0 },
    ]);
    // acc 50 + acc+ 0 per subtask.
    expect((files.results as { results: Record<string, Record<string, unknown>> }).results.mme).toMatchObject({
      'mme_perception_score,none': 50,
      'mme_perception_score_stderr,none': 'N/A',
      'mme_cognition_score,none': 50,
    });
  });

  it('MMMU: mmmu_acc carries the parsed prediction list mmmu_aggregate_results judges; the value rounded to 5 places', () => {
    const items = [
      item({ id: 'validation_Art_1', benchmark: 'mmmu', options: abcd, answers: ['A'], meta: { questionType: 'multiple-choice' } }),
      item({ id: 'validation_Art_2', benchmark: 'mmmu', options: abcd, answers: ['B'], meta: { questionType: 'multiple-choice' } }),
      item({ id: 'validation_Math_3', benchmark: 'mmmu', answers: ['12'], meta: { questionType: 'open' } }),
    ];
    const files = run('mmmu', [
      { item: items[0]!, response: '(A)', scored: '(A)' },
      { item: items[1]!, response: 'A', scored: 'A' },
      { item: items[2]!, response: '12', scored: undefined },
    ]);
    const lines = [...files.samples.values()][0]!.lines;
    expect(lines[0]!.mmmu_acc).toEqual({ id: 'validation_Art_1', subdomain: 'Art', question_type: 'multiple-choice', answer: 'A', parsed_pred: ['A'] });
    expect(lines[0]!.submission).toEqual({ validation_Art_1: 'A' });
    // A truncated answer has nothing to parse: no candidate, so judged wrong.
    expect(lines[2]!.mmmu_acc).toMatchObject({ question_type: 'open', parsed_pred: [] });
    expect((files.results as { results: Record<string, Record<string, unknown>> }).results.mmmu_val).toMatchObject({ 'mmmu_acc,none': 0.33333, 'mmmu_acc_stderr,none': 'N/A' });
  });

  it('MMMU: an open answer keeps its whole candidate list, and mmmu_acc judges it as lmms-eval 0.7.3 does (the official rule)', () => {
    const open = item({ id: 'validation_Math_1', benchmark: 'mmmu', answers: ['12'], meta: { questionType: 'open' } });
    const files = run('mmmu', [{ item: open, response: 'it is 12', scored: 'it is 12' }]);
    const line = [...files.samples.values()][0]!.lines[0]!;
    expect(line.mmmu_acc).toMatchObject({ parsed_pred: [[12]] });
    expect(line.submission).toEqual({ validation_Math_1: '12.0' });
    const score = BENCHMARKS.mmmu.score([open], new Map([[open.id, 'it is 12']]));
    // The sweep's headline (lmms-eval's earlier rule) and lmms-eval 0.7.3's differ here.
    expect(score.value).toBe(0);
    expect((files.results as { results: Record<string, Record<string, unknown>> }).results.mmmu_val).toMatchObject({ 'mmmu_acc,none': 1 });
  });

  it('OCRBench: ocrbench_accuracy {question_type, score, prediction, ground_truth}; the value is hits / 1000', () => {
    const i = item({ id: 'o1', benchmark: 'ocrbench', answers: ['STOP'], meta: { category: 'Regular Text Recognition' } });
    const files = run('ocrbench', [{ item: i, response: ' stop ', scored: ' stop ' }]);
    expect([...files.samples.values()][0]!.lines[0]!.ocrbench_accuracy).toEqual({ question_type: 'Regular Text Recognition', score: 1, prediction: 'stop', ground_truth: 'STOP' });
    expect((files.results as { results: Record<string, Record<string, unknown>> }).results.ocrbench).toMatchObject({ 'ocrbench_accuracy,none': 0.001 });
  });
});

describe('the report links the files', () => {
  it('lists each model with its results and sample files, relative to the report', () => {
    const html = renderReportHtml({
      title: 't',
      models: [{ name: 'base', backend: 'openai', baseUrl: 'http://127.0.0.1:1/v1', model: 'm' }],
      benchmarks: ['ai2d'],
      scores: {},
      retention: [],
      generatedAt: '2026-12-08T00:00:00Z',
      items: {},
      predictions: { made: 0, reused: 0 },
      lmmsEvalLinks: { base: { results: 'lmms-eval/base/20261208_000000_results.json', 'ai2d samples': 'lmms-eval/base/20261208_000000_samples_ai2d.jsonl' } },
    });
    expect(html).toContain(
      '<ul id="lmms-eval"><li data-model="base">base: <a href="lmms-eval/base/20261208_000000_results.json">results</a>, <a href="lmms-eval/base/20261208_000000_samples_ai2d.jsonl">ai2d samples</a></li></ul>',
    );
    expect(renderReportHtml({ title: 't', models: [], benchmarks: [], scores: {}, retention: [], generatedAt: '', items: {}, predictions: { made: 0, reused: 0 } })).not.toContain('lmms-eval');
  });
});
