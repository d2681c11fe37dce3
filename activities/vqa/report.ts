/**
 * The retention report: scores per model and benchmark with their standard errors, each fine-tuned
 * model's retention against its base with paired bootstrap intervals (flagging those under the
 * threshold), how many predictions were reused and how many answers were truncated, the paper's
 * Table 1 beside ours, and a bar chart (inline SVG, so the page is one self-contained file; the PNG
 * is Chromium's rendering of the same SVG).
 */
import { escapeMarkup, formatPercent, htmlPage, htmlTable, reportBaseCss, svgDocument } from '../report/html';
import { PAPER_TABLE_1, RETENTION_THRESHOLD, type BenchmarkId, type BenchmarkResult, type Interval, type ModelSpec, type Retention } from '../../data-schemas/vqa';
import { LMMS_EVAL_VERSION } from './lmms-eval';
import { retentionRatio } from './uncertainty';

export type ScoreTable = Record<string, Partial<Record<BenchmarkId, BenchmarkResult>>>;

/** A (fine-tuned, base) pair's bootstrap results, from the items both answered. */
export interface PairedIntervals {
  perBenchmark: Partial<Record<BenchmarkId, Interval>>;
  overall: Interval;
  pairedItems: Partial<Record<BenchmarkId, number>>;
}

/**
 * Each model with a `baseOf`: fine-tuned / base per benchmark, their mean, those below the
 * threshold, and the intervals `paired` gives for the pair.
 */
export function computeRetention(
  models: readonly ModelSpec[],
  scores: ScoreTable,
  benchmarks: readonly BenchmarkId[],
  options: { threshold?: number; paired?: (model: string, base: string, benchmarks: readonly BenchmarkId[]) => PairedIntervals } = {},
): Retention[] {
  const threshold = options.threshold ?? RETENTION_THRESHOLD;
  const out: Retention[] = [];
  for (const model of models) {
    if (model.baseOf === undefined) continue;
    const perBenchmark: Record<string, number> = {};
    const below: BenchmarkId[] = [];
    const baseScoredZero: BenchmarkId[] = [];
    for (const b of benchmarks) {
      const ft = scores[model.name]?.[b]?.value;
      const base = scores[model.baseOf]?.[b]?.value;
      if (ft === undefined || base === undefined) continue;
      // A base that scores 0 leaves no retention to measure: neither kept (100%) nor lost.
      if (base === 0) {
        baseScoredZero.push(b);
        continue;
      }
      const ratio = retentionRatio(ft, base);
      perBenchmark[b] = ratio;
      if (ratio < threshold) below.push(b);
    }
    const ratios = Object.values(perBenchmark);
    const overall = ratios.length ? ratios.reduce((a, r) => a + r, 0) / ratios.length : 0;
    const paired = options.paired?.(model.name, model.baseOf, Object.keys(perBenchmark) as BenchmarkId[]);
    out.push({
      model: model.name,
      base: model.baseOf,
      perBenchmark,
      perBenchmarkInterval: { ...paired?.perBenchmark },
      pairedItems: { ...paired?.pairedItems },
      overall,
      overallInterval: paired?.overall ?? [overall, overall],
      threshold,
      below,
      baseScoredZero,
      // Nothing measured is no evidence that anything was kept.
      gate: ratios.length > 0 && overall >= threshold ? 'passed' : 'failed',
    });
  }
  return out;
}

/** The most a benchmark's headline figure can be (for the chart's common 0-100% axis). */
export function benchmarkMax(benchmark: BenchmarkId): number {
  return benchmark === 'mme' ? 2000 : 100;
}

/** Each benchmark's column title, as the paper's Table 1 names it. */
export const BENCHMARK_TITLES: Record<BenchmarkId, string> = {
  mmmu: 'MMMU',
  mmstar: 'MMStar',
  mme: 'MME',
  ocrbench: 'OCRBench',
  'mmbench-en': 'MMB-en',
  'mmbench-cn': 'MMB-cn',
  textvqa: 'TextVQA',
  docvqa: 'DocVQA',
  infovqa: 'InfoVQA',
  ai2d: 'AI2D',
  chartqa: 'ChartQA',
  realworldqa: 'RealWorldQA',
};

const COLORS = ['#4e79a7', '#f28e2b', '#59a14f', '#e15759', '#76b7b2', '#edc948', '#b07aa1', '#ff9da7'];

/** The look of the scores and retention tables and the gate lines (for pages that show them too). */
export const RETENTION_TABLES_CSS = `tr.paper td { color: #777; font-style: italic; }
td.below { background: #fbe3e4; color: #a00; font-weight: bold; }
td.kept { background: #e6f4ea; }
span.stderr, span.interval { color: #666; font-size: 0.85em; }
p.gate.failed { color: #a00; font-weight: bold; }
p.gate.passed { color: #176b2c; }
`;

const CSS = `${reportBaseCss()}${RETENTION_TABLES_CSS}`;

const fmt = (v: number | undefined): string => (v === undefined ? '–' : v.toFixed(1));
const percent = (v: number): string => formatPercent(v);
const intervalText = (i: Interval | undefined): string => (i === undefined ? '' : ` <span class="interval">[${percent(i[0])}, ${percent(i[1])}]</span>`);

/** Grouped bars: per benchmark one bar per model, height = score / the benchmark's maximum. */
export function renderChartSvg(models: readonly string[], benchmarks: readonly BenchmarkId[], scores: ScoreTable): string {
  const barWidth = 18;
  const gap = 22;
  const groupWidth = models.length * barWidth + gap;
  const height = 240;
  const top = 30;
  const left = 44;
  const width = left + benchmarks.length * groupWidth + 20;
  const y = (fraction: number): number => top + height * (1 - Math.max(0, Math.min(1, fraction)));
  const parts: string[] = [];
  for (const tick of [0, 0.25, 0.5, 0.75, 1]) {
    parts.push(`<line x1="${left}" x2="${width - 10}" y1="${y(tick)}" y2="${y(tick)}" stroke="#ddd"/><text x="${left - 6}" y="${y(tick) + 4}" font-size="10" text-anchor="end">${tick * 100}%</text>`);
  }
  benchmarks.forEach((b, i) => {
    const x0 = left + i * groupWidth + gap / 2;
    models.forEach((m, k) => {
      const score = scores[m]?.[b]?.value;
      if (score === undefined) return;
      const fraction = score / benchmarkMax(b);
      parts.push(
        `<rect class="bar" data-model="${escapeMarkup(m)}" data-benchmark="${b}" x="${x0 + k * barWidth}" y="${y(fraction)}" width="${barWidth - 2}" height="${y(0) - y(fraction)}" fill="${COLORS[k % COLORS.length]}"><title>${escapeMarkup(m)} ${BENCHMARK_TITLES[b]}: ${fmt(score)}</title></rect>`,
      );
    });
    parts.push(`<text x="${x0 + (models.length * barWidth) / 2}" y="${top + height + 16}" font-size="11" text-anchor="middle">${BENCHMARK_TITLES[b]}</text>`);
  });
  const legend = models
    .map((m, k) => `<rect x="${left + k * 150}" y="6" width="12" height="12" fill="${COLORS[k % COLORS.length]}"/><text x="${left + k * 150 + 16}" y="16" font-size="12">${escapeMarkup(m)}</text>`)
    .join('');
  return svgDocument({ id: 'chart', width, height: top + height + 28, fontFamily: 'sans-serif', content: `${legend}${parts.join('')}` });
}

export interface ReportInput {
  title: string;
  models: readonly ModelSpec[];
  benchmarks: readonly BenchmarkId[];
  scores: ScoreTable;
  retention: readonly Retention[];
  generatedAt: string;
  /** Items per benchmark (a smoke run's limit shows here). */
  items: Partial<Record<BenchmarkId, number>>;
  /** Predictions this sweep made and those it reused from earlier runs. */
  predictions: { made: number; reused: number };
  /** @default RETENTION_THRESHOLD */
  threshold?: number;
  /** lmms-eval's files of each model: label (`results`, a benchmark's samples) -> path relative to the report. */
  lmmsEvalLinks?: Record<string, Record<string, string>>;
}

/** Table 1's scores: one row per model (score ± standard error), then the paper's base and VLM2VLA rows. */
export function scoresTableHtml(models: readonly string[], benchmarks: readonly BenchmarkId[], scores: ScoreTable): string {
  const head = `<tr><th>model</th>${benchmarks.map((b) => `<th>${BENCHMARK_TITLES[b]}</th>`).join('')}</tr>`;
  const modelRows = models
    .map(
      (name) =>
        `<tr data-model="${escapeMarkup(name)}"><td>${escapeMarkup(name)}</td>${benchmarks
          .map((b) => {
            const score = scores[name]?.[b];
            const stderr = score === undefined ? '' : ` <span class="stderr" title="standard error (${score.stderrMethod})">± ${score.stderr.toFixed(1)}</span>`;
            return `<td class="score" data-benchmark="${b}"><span class="value">${fmt(score?.value)}</span>${stderr}</td>`;
          })
          .join('')}</tr>`,
    )
    .join('');
  const paperRows = (['base', 'vlm2vla'] as const)
    .map(
      (k) =>
        `<tr class="paper"><td>paper: ${k === 'base' ? 'Gemma-3-12B-IT' : 'VLM2VLA (LoRA)'}</td>${benchmarks.map((b) => `<td>${fmt(PAPER_TABLE_1[k][b])}</td>`).join('')}</tr>`,
    )
    .join('');
  return htmlTable('scores', head, `${modelRows}${paperRows}`);
}

/** Retention per (fine-tuned, base) pair with its intervals, flagged below its threshold, then the paper's ratio row. */
export function retentionTableHtml(retention: readonly Retention[], benchmarks: readonly BenchmarkId[]): string {
  const paperRetention = benchmarks.map((b) => PAPER_TABLE_1.vlm2vla[b] / PAPER_TABLE_1.base[b]);
  const retentionRows = retention
    .map(
      (ret) =>
        `<tr data-retention="${escapeMarkup(ret.model)}"><td>${escapeMarkup(ret.model)} / ${escapeMarkup(ret.base)}</td>${benchmarks
          .map((b) => {
            const v = ret.perBenchmark[b];
            if (ret.baseScoredZero.includes(b)) return `<td class="undefined" data-benchmark="${b}">n/a (base 0)</td>`;
            if (v === undefined) return '<td>–</td>';
            return `<td class="${v < ret.threshold ? 'below' : 'kept'}" data-benchmark="${b}"><span class="value">${percent(v)}</span>${intervalText(ret.perBenchmarkInterval[b])}</td>`;
          })
          .join('')}<td class="${ret.overall < ret.threshold ? 'below' : 'kept'} overall"><span class="value">${percent(ret.overall)}</span>${intervalText(ret.overallInterval)}</td></tr>`,
    )
    .join('');
  const paperOverall = paperRetention.reduce((a, v) => a + v, 0) / Math.max(1, paperRetention.length);
  return `<table id="retention"><thead><tr><th>model / base</th>${benchmarks.map((b) => `<th>${BENCHMARK_TITLES[b]}</th>`).join('')}<th>overall</th></tr></thead>
<tbody>${retentionRows}<tr class="paper"><td>paper: VLM2VLA / Gemma-3-12B-IT</td>${paperRetention.map((v) => `<td>${percent(v)}</td>`).join('')}<td>${percent(paperOverall)}</td></tr></tbody></table>`;
}

/** The gate in one line per fine-tuned model: what a reader (and the nightly alert) looks at first. */
export function gateLinesHtml(retention: readonly Retention[]): string {
  return retention
    .map((ret) => {
      const failed = ret.gate === 'failed';
      if (Object.keys(ret.perBenchmark).length === 0) {
        return `<p class="gate failed" data-retention="${escapeMarkup(ret.model)}">Retention gate FAILED: no benchmark on which ${escapeMarkup(ret.base)} scores above 0, so ${escapeMarkup(ret.model)}'s retention cannot be measured.</p>`;
      }
      return `<p class="gate ${failed ? 'failed' : 'passed'}" data-retention="${escapeMarkup(ret.model)}">Retention gate ${failed ? 'FAILED' : 'passed'}: ${escapeMarkup(ret.model)} keeps ${percent(ret.overall)} of ${escapeMarkup(ret.base)} (95% interval ${percent(ret.overallInterval[0])} to ${percent(ret.overallInterval[1])}), ${failed ? 'below' : 'at or above'} the ${percent(ret.threshold)} threshold.</p>`;
    })
    .join('\n');
}

/** One line per model linking its lmms-eval files (docs/vqa.md, "lmms-eval result files"). */
function lmmsEvalLinksHtml(links: Record<string, Record<string, string>>): string {
  const models = Object.entries(links);
  if (models.length === 0) return '';
  const line = ([model, files]: [string, Record<string, string>]): string =>
    `<li data-model="${escapeMarkup(model)}">${escapeMarkup(model)}: ${Object.entries(files)
      .map(([label, href]) => `<a href="${escapeMarkup(href)}">${escapeMarkup(label)}</a>`)
      .join(', ')}</li>`;
  return `<p>lmms-eval result files (lmms-eval ${LMMS_EVAL_VERSION} layout):</p>\n<ul id="lmms-eval">${models.map(line).join('')}</ul>`;
}

export function renderReportHtml(r: ReportInput): string {
  /** How many answers of a kind, in total and per (model, benchmark) that has any. */
  const countLine = (field: 'truncated' | 'withheld'): string => {
    const counts = r.models
      .flatMap((m) => r.benchmarks.map((b) => ({ model: m.name, benchmark: b, n: r.scores[m.name]?.[b]?.[field] ?? 0 })))
      .filter((t) => t.n > 0);
    const text = counts.map((t) => `${escapeMarkup(t.model)} ${BENCHMARK_TITLES[t.benchmark]} ${t.n}`).join(', ');
    return `<span class="count">${counts.reduce((a, t) => a + t.n, 0)}</span>${text ? ` (${text})` : ''}`;
  };
  const threshold = r.threshold ?? RETENTION_THRESHOLD;
  const items = r.benchmarks.map((b) => `${BENCHMARK_TITLES[b]} ${r.items[b] ?? '?'}`).join(', ');
  const body = `<h1>${escapeMarkup(r.title)}</h1>
<p>Generated ${escapeMarkup(r.generatedAt)}. Items per benchmark: ${escapeMarkup(items)}. Scores on the paper's scale: accuracy in %, MME perception (max 2000), OCRBench hits / 10; ± is the standard error.</p>
${gateLinesHtml(r.retention)}
<p id="predictions">Predictions: <span class="made">${r.predictions.made}</span> made by this run, <span class="reused">${r.predictions.reused}</span> reused from earlier runs (same model content, prompt, settings and item).</p>
<p id="truncated">Truncated answers (stopped at the token limit, scored as wrong): ${countLine('truncated')}.</p>
<p id="withheld">Withheld answers (blocked by the provider for safety or recitation, scored as wrong): ${countLine('withheld')}.</p>
${lmmsEvalLinksHtml(r.lmmsEvalLinks ?? {})}
<h2>Scores</h2>
${scoresTableHtml(
  r.models.map((m) => m.name),
  r.benchmarks,
  r.scores,
)}
<h2>Retention (fine-tuned / base, paired bootstrap 95% interval; flagged below ${percent(threshold)})</h2>
${retentionTableHtml(r.retention, r.benchmarks)}
<h2>Chart</h2>
${renderChartSvg(
  r.models.map((m) => m.name),
  r.benchmarks,
  r.scores,
)}`;
  return htmlPage({ title: r.title, css: CSS, body });
}
