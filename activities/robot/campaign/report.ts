/**
 * The evaluation campaign's report page: one self-contained HTML file (like the VQA report) with a
 * table in the shape of the paper's Figure 5 (the paper's four methods beside this run, with 95%
 * Wilson intervals), partial credit and plan hit rate per task, latency per stage against the
 * paper's cycle latency, the cost of malformed answers, and per-episode filmstrips of frames with
 * their subtask and verdict. Frames are whatever `frameUri` says (data: URLs keep the page one file).
 */
import type { CampaignTrialDesign } from '../../../data-schemas/robot';
import { escapeMarkup, formatPercent, htmlPage, htmlTable, reportBaseCss } from '../../report/html';
import { LATENCY_STAGES, PAPER_CYCLE_LATENCY, type CampaignEpisodeSummary, type CampaignSummary, type FilmstripFrame, type GroupSummary, type LatencyStage, type LatencyStats, type TaskSummary, type WilsonInterval } from './metrics';

/** One row of the paper's Figure 5: success % per method over `trials` trials. */
export interface PaperFigure5Row {
  taskId: string;
  name: string;
  openvla: number;
  ecot: number;
  vlm2vlaAt: number;
  vlm2vla: number;
  trials: number;
}

export interface CampaignReportInput {
  title: string;
  campaignId: string;
  createdAt: string;
  /** How the policy and verifier were configured, in words (shown as given). */
  policy: string;
  verifier: string;
  stations: string[];
  /** How many trials each task was planned with (null: not known, a campaign from before it was recorded). */
  design: CampaignTrialDesign | null;
  summary: CampaignSummary;
  episodes: CampaignEpisodeSummary[];
  /** Figure 5 rows; tasks of the summary without a row are listed after them. */
  paper: PaperFigure5Row[];
}

const STAGE_TITLES: Record<LatencyStage, string> = {
  reset: 'reset (scene)',
  subtasks: 'subtasks (once per episode)',
  motion_plan: 'motion plan',
  action: 'action chunk',
  execute: 'execute',
  verify: 'verify',
  cycle: 'whole cycle',
};

const PAPER_METHODS = [
  ['openvla', 'OpenVLA'],
  ['ecot', 'ECoT'],
  ['vlm2vlaAt', 'VLM2VLA-AT'],
  ['vlm2vla', 'VLM2VLA'],
] as const;

const percent = formatPercent;

/** Milliseconds as a reader wants them: "85 ms" below a second, "6.1 s" above. */
function duration(ms: number): string {
  return ms < 1000 ? `${ms.toFixed(0)} ms` : `${(ms / 1000).toFixed(1)} s`;
}

const counted = (n: number, noun: string): string => `${n} ${noun}${n === 1 ? '' : 's'}`;

const per100 = (v: number | null): string => (v === null ? '–' : v.toFixed(1));

function ciText(ci: WilsonInterval): string {
  return `${(ci.low * 100).toFixed(1)}–${(ci.high * 100).toFixed(1)}%`;
}

/** The interval as a bar on 0-100%, the run's rate as a dot and the paper's VLM2VLA figure as a tick. */
function ciBar(ci: WilsonInterval, paperPercent: number | undefined): string {
  const pos = (fraction: number): string => (Math.max(0, Math.min(1, fraction)) * 100).toFixed(2);
  const mark = paperPercent === undefined ? '' : `<span class="paper-mark" style="left:${pos(paperPercent / 100)}%" title="paper VLM2VLA ${paperPercent}%"></span>`;
  return `<div class="ci-bar" aria-hidden="true"><span class="band" style="left:${pos(ci.low)}%;width:${(Number(pos(ci.high)) - Number(pos(ci.low))).toFixed(2)}%"></span><span class="point" style="left:${pos(ci.rate)}%"></span>${mark}</div>`;
}

function thisRunCell(task: TaskSummary | undefined, paper: PaperFigure5Row | undefined): string {
  if (!task || task.trials === 0) return '<td class="this-run not-run">not run</td>';
  const s = task.success;
  return `<td class="this-run" data-rate="${s.rate}" data-low="${s.low}" data-high="${s.high}" data-n="${task.trials}"><span class="rate">${percent(s.rate)}</span> <span class="ci">[${ciText(s)}]</span> <span class="n">n = ${task.trials}</span>${ciBar(s, paper?.vlm2vla)}</td>`;
}

/** Figure 5's rows first (paper order), then tasks this run has that the paper does not. */
function figure5Rows(summary: CampaignSummary, paper: readonly PaperFigure5Row[]): { taskId: string; name: string; paper?: PaperFigure5Row; task?: TaskSummary }[] {
  const byId = new Map(summary.tasks.map((t) => [t.taskId, t]));
  const rows: { taskId: string; name: string; paper?: PaperFigure5Row; task?: TaskSummary }[] = paper.map((p) => ({ taskId: p.taskId, name: p.name, paper: p, task: byId.get(p.taskId) }));
  const inPaper = new Set(paper.map((p) => p.taskId));
  for (const t of summary.tasks) if (!inPaper.has(t.taskId)) rows.push({ taskId: t.taskId, name: t.taskName, task: t });
  return rows;
}

/** The Figure-5 table: the paper's four methods beside this run's rate with its 95% Wilson interval; `id` names the table on pages with several. */
export function figure5Table(summary: CampaignSummary, paper: readonly PaperFigure5Row[], id = 'figure5'): string {
  const head = `<tr><th>task</th>${PAPER_METHODS.map(([, title]) => `<th class="paper">${title} <small>(paper)</small></th>`).join('')}<th>this run <small>(95% Wilson interval)</small></th></tr>`;
  const rows = figure5Rows(summary, paper)
    .map((r) => {
      const paperCells = PAPER_METHODS.map(([key]) => `<td class="paper" data-method="${key}">${r.paper ? `${r.paper[key]}%` : '–'}</td>`).join('');
      const trials = r.paper ? ` <small class="paper-n">paper n = ${r.paper.trials}</small>` : '';
      return `<tr data-task="${escapeMarkup(r.taskId)}"><td class="task">${escapeMarkup(r.name)}${trials}</td>${paperCells}${thisRunCell(r.task, r.paper)}</tr>`;
    })
    .join('');
  return htmlTable(id, head, rows);
}

function outcomesText(g: GroupSummary): string {
  return Object.entries(g.outcomes)
    .filter(([, count]) => count > 0)
    .map(([outcome, count]) => `${outcome} ${count}`)
    .join(', ');
}

function taskRow(id: string, name: string, g: GroupSummary, languages: TaskSummary['languages'], cls: string): string {
  const pc = g.partialCredit;
  const plan = g.planHit.rate === null ? '–' : `${percent(g.planHit.rate)} <small>(${g.planHit.hits}/${g.planHit.judged})</small>`;
  const langs = languages.length ? `<div class="languages">${languages.map((l) => `<span lang="${escapeMarkup(l.language)}">${escapeMarkup(l.language)} ${l.successes}/${l.trials}</span>`).join(' · ')}</div>` : '';
  const cycle = g.latency.cycle;
  return `<tr class="${cls}" data-task="${escapeMarkup(id)}"><td class="task">${escapeMarkup(name)}${langs}</td><td>${g.trials}</td><td class="successes">${g.successes}</td><td class="success">${percent(g.success.rate)} <small>[${ciText(g.success)}]</small></td><td class="partial" data-fraction="${pc.meanFraction}">${percent(pc.meanFraction)} <small>(${pc.meanPoints.toFixed(2)} of ${pc.meanMaxPoints.toFixed(2)} points)</small></td><td class="plan-hit">${plan}</td><td>${cycle.n ? duration(cycle.medianMs) : '–'}</td><td class="outcomes">${escapeMarkup(outcomesText(g))}</td></tr>`;
}

function tasksTable(summary: CampaignSummary): string {
  const head = '<tr><th>task</th><th>trials</th><th>successes</th><th>success (95% CI)</th><th>partial credit</th><th>plan hit rate</th><th>median cycle</th><th>outcomes</th></tr>';
  const rows = summary.tasks.map((t) => taskRow(t.taskId, t.taskName, t, t.languages, 'task-row')).join('');
  return htmlTable('tasks', head, `${rows}${taskRow('all', 'all tasks', summary.overall, [], 'overall')}`);
}

function latencyCells(s: LatencyStats): string {
  if (s.n === 0) return '<td>0</td><td>–</td><td>–</td><td>–</td><td>–</td><td>–</td>';
  return `<td>${s.n}</td><td class="median" data-ms="${s.medianMs}">${duration(s.medianMs)}</td><td class="std" data-ms="${s.stdMs}">${duration(s.stdMs)}</td><td class="p95" data-ms="${s.p95Ms}">${duration(s.p95Ms)}</td><td>${duration(s.meanMs)}</td><td>${duration(s.maxMs)}</td>`;
}

function latencySection(overall: GroupSummary): string {
  const rows = LATENCY_STAGES.map((stage) => `<tr data-stage="${stage}"><td>${STAGE_TITLES[stage]}</td>${latencyCells(overall.latency[stage])}</tr>`).join('');
  const paper = `<tr class="paper" data-paper-stage="cycle"><td>paper: whole cycle</td><td>–</td><td>${duration(PAPER_CYCLE_LATENCY.medianMs)}</td><td>${duration(PAPER_CYCLE_LATENCY.stdMs)}</td><td>–</td><td>–</td><td>tail over ${duration(PAPER_CYCLE_LATENCY.tailOverMs)}</td></tr>`;
  const cycle = overall.latency.cycle;
  const verdict = cycle.n
    ? `This run's median cycle is ${duration(cycle.medianMs)} (paper ${duration(PAPER_CYCLE_LATENCY.medianMs)}), its standard deviation ${duration(cycle.stdMs)} (paper ${duration(PAPER_CYCLE_LATENCY.stdMs)}); ${overall.cyclesOverPaperTail} of ${cycle.n} cycles took longer than ${duration(PAPER_CYCLE_LATENCY.tailOverMs)}.`
    : 'No cycle latencies were recorded.';
  const head = '<tr><th>stage</th><th>n</th><th>median</th><th>std</th><th>p95</th><th>mean</th><th>max</th></tr>';
  return `${htmlTable('latency', head, `${rows}${paper}`)}
<p class="note" id="latency-vs-paper">${escapeMarkup(verdict)} Std is the sample standard deviation; p95 interpolates linearly between the closest ranks.</p>`;
}

function formatRow(id: string, name: string, g: GroupSummary, cls: string): string {
  return `<tr class="${cls}" data-task="${escapeMarkup(id)}"><td>${escapeMarkup(name)}</td><td>${g.chunks}</td><td>${g.formatFailures}</td><td>${g.repairs}</td><td class="failures-per-100">${per100(g.formatFailuresPer100Chunks)}</td><td class="repairs-per-100">${per100(g.repairsPer100Chunks)}</td></tr>`;
}

function formatTable(summary: CampaignSummary): string {
  const head = '<tr><th>task</th><th>action chunks</th><th>format failures</th><th>repairs</th><th>failures / 100 chunks</th><th>repairs / 100 chunks</th></tr>';
  const rows = summary.tasks.map((t) => formatRow(t.taskId, t.taskName, t, 'task-row')).join('');
  return htmlTable('format', head, `${rows}${formatRow('all', 'all tasks', summary.overall, 'overall')}`);
}

function frameFigure(f: FilmstripFrame): string {
  const verdict = f.verdict ?? 'none';
  const reason = f.reason ? `<span class="reason">${escapeMarkup(f.reason)}</span>` : '';
  const alt = `cycle ${f.cycle}: ${f.subtask}`;
  return `<figure class="frame verdict-${verdict}" data-cycle="${f.cycle}"><img src="${escapeMarkup(f.frameUri)}" alt="${escapeMarkup(alt)}" width="160"><figcaption><span class="cycle">cycle ${f.cycle}</span><span class="subtask">${escapeMarkup(f.subtask)}</span><span class="verdict ${verdict}">${f.verdict ?? 'no verdict'}</span>${reason}</figcaption></figure>`;
}

function episodeSection(e: CampaignEpisodeSummary): string {
  const lang = e.language ? ` lang="${escapeMarkup(e.language)}"` : '';
  const plan = e.planHit === null ? 'plan not judged' : e.planHit ? 'plan hit' : 'plan miss';
  const facts = [`station ${e.stationId}`, counted(e.cycles, 'cycle'), counted(e.chunks, 'chunk'), counted(e.formatFailures, 'format failure'), counted(e.repairs, 'repair'), `score ${e.score}/${e.maxScore}`, plan];
  const subtasks = e.subtasks.length ? `<ol class="subtasks">${e.subtasks.map((s) => `<li>${escapeMarkup(s)}</li>`).join('')}</ol>` : '<p class="subtasks none">no subtasks</p>';
  const error = e.error ? `<p class="error">${escapeMarkup(e.error)}</p>` : '';
  const frames = e.filmstrip.length ? e.filmstrip.map(frameFigure).join('') : '<p class="no-frames">no frames recorded</p>';
  return `<section class="episode ${e.success ? 'success' : 'failure'}" data-episode-id="${escapeMarkup(e.episodeId)}" data-task="${escapeMarkup(e.taskId)}">
<h3>${escapeMarkup(e.taskName)} · trial ${e.trial} <span class="result ${e.success ? 'success' : 'failure'}">${e.success ? 'success' : 'failure'}</span> <span class="outcome outcome-${e.outcome}">${e.outcome}</span></h3>
<p class="instruction"${lang}>${escapeMarkup(e.instruction)}</p>
<p class="facts">${escapeMarkup(facts.join(' · '))} · <code>${escapeMarkup(e.workflowId)}</code></p>
${subtasks}${error}
<div class="filmstrip">${frames}</div>
</section>`;
}

/** Episodes grouped by task (the summary's order), then by trial. */
function orderedEpisodes(summary: CampaignSummary, episodes: readonly CampaignEpisodeSummary[]): CampaignEpisodeSummary[] {
  const taskOrder = new Map(summary.tasks.map((t, i) => [t.taskId, i]));
  const rank = (e: CampaignEpisodeSummary): number => taskOrder.get(e.taskId) ?? taskOrder.size;
  return [...episodes].sort((a, b) => rank(a) - rank(b) || a.trial - b.trial || (a.episodeId < b.episodeId ? -1 : a.episodeId > b.episodeId ? 1 : 0));
}

/** The look of the Figure-5 table (and the per-task tables' paper and overall rows), for pages that show it too. */
export const FIGURE5_CSS = `small { color: #666; }
td.paper, th.paper { color: #777; font-style: italic; }
tr.paper td { color: #777; font-style: italic; }
tr.overall td { font-weight: bold; background: #f6f8fa; }
td.this-run { min-width: 220px; }
td.not-run { color: #999; }
td.outcomes { text-align: left; }
.ci-bar { position: relative; height: 8px; margin-top: 4px; background: #eee; border-radius: 4px; }
.ci-bar .band { position: absolute; top: 0; height: 8px; background: #9ec5e8; border-radius: 4px; }
.ci-bar .point { position: absolute; top: -1px; width: 4px; height: 10px; margin-left: -2px; background: #1b4f8f; }
.ci-bar .paper-mark { position: absolute; top: -3px; width: 2px; height: 14px; margin-left: -1px; background: #e15759; }
`;

const CSS = `${reportBaseCss({ cellVerticalAlign: 'top' })}${FIGURE5_CSS}.languages { font-size: 12px; color: #555; }
.note { color: #555; font-size: 13px; max-width: 900px; }
section.episode { border-top: 1px solid #ddd; padding: 8px 0 12px; }
section.episode h3 { margin: 4px 0; font-size: 16px; }
.result, .outcome { font-size: 12px; border-radius: 999px; padding: 1px 8px; font-weight: normal; }
.result.success { background: #e6f4ea; color: #1e6b34; }
.result.failure { background: #fbe3e4; color: #a00; }
.outcome { background: #eef1f4; color: #444; }
.instruction { margin: 2px 0; font-style: italic; }
.facts { margin: 2px 0 6px; color: #555; font-size: 13px; }
.subtasks { margin: 2px 0 8px; font-size: 13px; }
.error { color: #a00; font-size: 13px; }
.filmstrip { display: flex; gap: 8px; overflow-x: auto; padding-bottom: 6px; }
.frame { margin: 0; flex: 0 0 auto; width: 160px; border: 3px solid #ccc; border-radius: 4px; background: #fafafa; }
.frame img { display: block; width: 160px; height: auto; }
.frame figcaption { display: flex; flex-direction: column; gap: 1px; padding: 3px 5px; font-size: 11px; }
.frame .cycle { color: #666; }
.frame .subtask { font-weight: bold; }
.frame .reason { color: #555; }
.frame.verdict-proceed { border-color: #59a14f; }
.frame.verdict-retry { border-color: #f28e2b; }
.verdict.proceed { color: #1e6b34; font-weight: bold; }
.verdict.retry { color: #b35900; font-weight: bold; }
.verdict.none { color: #888; }
`;

/** The trial design in words: the preset, each task's count (per language where it has several), the seeds. */
function designParagraph(design: CampaignTrialDesign | null): string {
  if (!design) return '';
  const from = design.preset ? `preset ${design.preset} (${design.presetDescription ?? ''})` : 'trial counts given per campaign';
  const tasks = design.tasks.map((t) => {
    const langs = t.languages ? ` (${Object.entries(t.languages).map(([lang, n]) => `${lang} ${n}`).join(', ')})` : '';
    const own = t.from === 'trialsPerTask' && design.preset ? ', set per task' : '';
    return `<span class="design-task" data-task="${escapeMarkup(t.taskId)}" data-trials="${t.trials}">${escapeMarkup(t.taskId)} ${t.trials}${escapeMarkup(langs)}${own}</span>`;
  });
  return `<p id="design" data-preset="${escapeMarkup(design.preset ?? '')}">Trial design: ${escapeMarkup(from)}; ${design.totalTrials} trials: ${tasks.join('; ')}. Scene seeds: ${design.seed} + trial.</p>`;
}

export function renderCampaignReportHtml(input: CampaignReportInput): string {
  const { summary } = input;
  const overall = summary.overall;
  const episodes = orderedEpisodes(summary, input.episodes);
  const meta = [
    `Campaign ${input.campaignId}, created ${input.createdAt}.`,
    `Policy: ${input.policy}. Verifier: ${input.verifier}.`,
    `Stations: ${input.stations.join(', ') || '(none)'}.`,
    `${summary.episodes} episodes; overall success ${percent(overall.success.rate)} [${ciText(overall.success)}].`,
  ].join(' ');
  const body = `<h1>${escapeMarkup(input.title)}</h1>
<p id="meta">${escapeMarkup(meta)}</p>
${designParagraph(input.design)}
<h2>Success rate (paper Figure 5)</h2>
${figure5Table(summary, input.paper)}
<p class="note">Paper figures are success % over their trials (30 per cell, 90 for multilingual). This run: success % with its 95% Wilson score interval; the bar shows the interval, the dark dot the rate and the red tick the paper's VLM2VLA figure.</p>
<h2>Per task</h2>
${tasksTable(summary)}
<p class="note">Partial credit: mean fraction of the task's rubric points achieved (arXiv 2509.22195, Appendix C.3). Plan hit rate: plans naming the right object and destination, synonyms allowed, over the plans judged.</p>
<h2>Latency per stage</h2>
${latencySection(overall)}
<h2>Format failures and repairs</h2>
${formatTable(summary)}
<h2>Episodes</h2>
<div id="episodes">
${episodes.map(episodeSection).join('\n')}
</div>`;
  return htmlPage({ title: input.title, css: CSS, body });
}
