/**
 * The experiment's report page (docs/experiments.md, "The report"): one self-contained HTML file a
 * researcher opens at the end. The stages (reuse marked, with the experiment that made a reused
 * result), Table 1 (VQA retention) and Figure 5 (robot success) beside the paper's figures, each
 * stage's lineage, and a link to every artefact. The tables are the VQA and campaign reports' own.
 */
import type { z } from 'zod';
import { CampaignSummaryFile, type EvalCampaignResult } from '../../data-schemas/robot';
import {
  experimentUri,
  LineageRecord,
  type ExperimentInput,
  type ExperimentOutputs,
  type ExperimentStatus,
  type LineageInput,
  type StageRow,
  baseModelNames,
} from '../../data-schemas/experiment';
import { BenchmarkId, type VqaSweepResult } from '../../data-schemas/vqa';
import { joinUri, relativeTo } from '../../data-schemas/uri';
import { escapeMarkup, htmlPage, htmlTable, reportBaseCss } from '../report/html';
import { CampaignSummary } from '../robot/campaign/metrics';
import { figure5Table, FIGURE5_CSS } from '../robot/campaign/report';
import { paperFigure5Rows } from '../robot/campaign/suite';
import { getJsonIfExists, InvalidObjectError, putJson } from '../store';
import type { ObjectStore } from '../store/types';
import { gateLinesHtml, retentionTableHtml, RETENTION_TABLES_CSS, scoresTableHtml } from '../vqa/report';

export const EXPERIMENT_REPORT_FILE = 'report.html';
export const EXPERIMENT_STATUS_FILE = 'experiment.json';

/** A campaign's summary.json with the statistics the Figure-5 table shows (the campaign writes them beside its design). */
const CampaignSummaryWithStats = CampaignSummaryFile.extend({ summary: CampaignSummary });

/** A stored file the page reads: its content, or why there is none (shown on the page instead of the section). */
type Read<T> = { value: T } | { problem: string };

/** What the page is made of: the workflow's records and the files they point at, read once. */
export interface ExperimentReportData {
  input: ExperimentInput;
  status: ExperimentStatus;
  outputs: ExperimentOutputs;
  /** Each stage row's lineage.json, by lineageUri. */
  lineage: ReadonlyMap<string, Read<LineageRecord>>;
  /** Each campaign's summary.json, by summaryUri. */
  campaignSummaries: ReadonlyMap<string, Read<CampaignSummary>>;
}

/** experiment.json (the status and every stage's result) and report.html, under `<storeUri>/experiments/<name>/`. */
export async function writeExperimentReport(
  store: ObjectStore,
  { input, status, outputs }: { input: ExperimentInput; status: ExperimentStatus; outputs: ExperimentOutputs },
): Promise<{ reportUri: string; statusUri: string }> {
  const root = experimentUri(input.storeUri, input.name);
  const reportUri = joinUri(root, EXPERIMENT_REPORT_FILE);
  const statusUri = joinUri(root, EXPERIMENT_STATUS_FILE);
  const lineageUris = unique(status.stages.flatMap((s) => (s.lineageUri ? [s.lineageUri] : [])));
  const summaryUris = unique(Object.values(outputs.campaign).map((c) => c.summaryUri));
  const lineage = new Map(await Promise.all(lineageUris.map(async (uri) => [uri, await readStored(store, uri, LineageRecord, 'lineage.json')] as const)));
  const campaignSummaries = new Map(
    await Promise.all(
      summaryUris.map(async (uri) => {
        const read = await readStored(store, uri, CampaignSummaryWithStats, 'campaign summary.json');
        return [uri, 'value' in read ? { value: read.value.summary } : read] as const;
      }),
    ),
  );
  await putJson(store, statusUri, { input, status: { ...status, reportUri }, outputs });
  await store.put(reportUri, renderExperimentReport({ input, status, outputs, lineage, campaignSummaries }), { contentType: 'text/html; charset=utf-8' });
  return { reportUri, statusUri };
}

/**
 * A file the page shows. Missing or not what it should be: the page says so where the section would
 * be (a report of what is there, never a made-up section); a store that cannot be reached throws (retried).
 */
async function readStored<S extends z.ZodType>(store: ObjectStore, uri: string, schema: S, what: string): Promise<Read<z.output<S>>> {
  try {
    const value = await getJsonIfExists(store, uri, schema);
    return value === undefined ? { problem: `${what} is missing (${uri})` } : { value };
  } catch (err) {
    if (err instanceof InvalidObjectError) return { problem: err.message };
    throw err;
  }
}

const unique = <T>(values: readonly T[]): T[] => [...new Set(values)];

const CSS = `${reportBaseCss({ cellVerticalAlign: 'top' })}${RETENTION_TABLES_CSS}${FIGURE5_CSS}td.state .reused { background: #e8f0fe; color: #1a4d99; border-radius: 999px; padding: 1px 8px; font-weight: bold; }
tr.failed td.state { color: #a00; font-weight: bold; }
tr.totals td { font-weight: bold; background: #f6f8fa; }
#stages td.state, #stages td.output, #stages td.detail { text-align: left; }
code { font-size: 0.9em; }
.problem { color: #a00; }
.note { color: #555; font-size: 13px; max-width: 900px; }
ul.lineage li { margin: 4px 0; }
`;

/**
 * A link to a stored object. One under the store root is linked relative to the report
 * (`<storeUri>/experiments/<name>/report.html`), so the page works from a copy of the store too,
 * and shown by its path under the root (the full URI on hover).
 */
function linkTo(input: ExperimentInput, uri: string, text?: string): string {
  const underRoot = relativeTo(input.storeUri, uri);
  const href = underRoot === undefined ? uri : `../../${underRoot}`;
  return `<a href="${escapeMarkup(href)}" title="${escapeMarkup(uri)}">${escapeMarkup(text ?? underRoot ?? uri)}</a>`;
}

const shortHash = (sha256: string | undefined): string => (sha256 === undefined ? '–' : `<code title="${escapeMarkup(sha256)}">${escapeMarkup(sha256.slice(0, 12))}</code>`);

/** Elapsed time as a reader wants it: seconds, minutes or hours. */
function elapsed(fromIso: string | undefined, toIso: string | undefined): string {
  if (fromIso === undefined || toIso === undefined) return '–';
  const seconds = (Date.parse(toIso) - Date.parse(fromIso)) / 1000;
  if (!Number.isFinite(seconds) || seconds < 0) return '–';
  if (seconds < 120) return `${seconds.toFixed(0)} s`;
  if (seconds < 7200) return `${(seconds / 60).toFixed(1)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

const usd = (v: number | undefined): string => (v === undefined ? '–' : `$${v.toFixed(2)}`);
const hours = (v: number | undefined): string => (v === undefined ? '–' : v.toFixed(2));

/** Where the page links each stage's section of the lineage. */
const lineageAnchor = (rowId: string): string => `lineage-${rowId.replace(/[^A-Za-z0-9_-]/g, '-')}`;

function stateCell(row: StageRow, lineage: Read<LineageRecord> | undefined): string {
  if (row.state !== 'reused') return `<td class="state">${row.state}</td>`;
  const from =
    lineage === undefined
      ? ''
      : 'value' in lineage
        ? ` from experiment <span class="made-by">${escapeMarkup(lineage.value.producedBy.experiment)}</span>`
        : ` <span class="problem">(${escapeMarkup(lineage.problem)})</span>`;
  return `<td class="state"><span class="reused">reused</span>${from}</td>`;
}

function stagesSection(d: ExperimentReportData): string {
  const head =
    '<tr><th>stage</th><th>state</th><th>key</th><th>duration</th><th>Gemini USD</th><th>GPU hours</th><th>output</th><th>lineage</th><th>detail</th></tr>';
  const rows = d.status.stages
    .map((row) => {
      const lineage = row.lineageUri === undefined ? undefined : d.lineage.get(row.lineageUri);
      // A reused stage took no time here; its original run's duration is in its lineage.
      const original = row.state === 'reused' && lineage !== undefined && 'value' in lineage ? ` <small>(made in ${elapsed(lineage.value.startedAt, lineage.value.finishedAt)})</small>` : '';
      const lineageCell = row.lineageUri === undefined ? '' : `${linkTo(d.input, row.lineageUri, 'lineage.json')} · <a href="#${lineageAnchor(row.id)}">below</a>`;
      return (
        `<tr class="${row.state}" data-stage="${escapeMarkup(row.id)}"><td>${escapeMarkup(row.id)}</td>${stateCell(row, lineage)}` +
        `<td>${shortHash(row.key)}</td><td>${elapsed(row.startedAt, row.finishedAt)}${original}</td><td>${usd(row.geminiUsd)}</td><td>${hours(row.gpuHours)}</td>` +
        `<td class="output">${row.outputUri === undefined ? '' : linkTo(d.input, row.outputUri)}</td><td>${lineageCell}</td><td class="detail">${escapeMarkup(row.detail ?? '')}</td></tr>`
      );
    })
    .join('');
  const { spent, budget } = d.status;
  const totals = `<tr class="totals"><td>total</td><td></td><td></td><td></td><td>${usd(spent.geminiUsd)}${budget.geminiUsd === undefined ? '' : ` of ${usd(budget.geminiUsd)}`}</td><td>${hours(spent.gpuHours)}${budget.gpuHours === undefined ? '' : ` of ${hours(budget.gpuHours)}`}</td><td></td><td></td><td></td></tr>`;
  return `<h2>Stages</h2>
${htmlTable('stages', head, `${rows}${totals}`)}
<p class="note">Reused: the stage's key (its code version, settings and its inputs' content hashes) matched a sealed result in the store, made by the experiment named; it cost nothing here. Keys show their first 12 hex digits (hover for all 64).</p>`;
}

/** The sweep's base model names -> base model (the workflow names them with baseModelNames). */
function vqaBaseNames(variants: ExperimentInput['variants']): Map<string, string> {
  return new Map([...baseModelNames(variants)].map(([model, name]) => [name, model]));
}

function table1Section(d: ExperimentReportData, vqa: VqaSweepResult): string {
  const listed = d.input.vqa?.benchmarks.map((b) => b.benchmark) ?? [];
  const benchmarks = unique([...listed, ...Object.values(vqa.scores).flatMap((s) => Object.keys(s))]).filter((b): b is BenchmarkId => BenchmarkId.safeParse(b).success);
  const bases = unique(vqa.retention.map((r) => r.base));
  const fineTuned = unique(vqa.retention.map((r) => r.model));
  const models = unique([...bases, ...fineTuned, ...Object.keys(vqa.scores)]);
  const baseModels = vqaBaseNames(d.input.variants);
  const baseLines = bases.map((b) => `${escapeMarkup(b)} = <code>${escapeMarkup(baseModels.get(b) ?? 'unknown')}</code>`).join('; ');
  return `<h2>Table 1: VQA retention</h2>
<p class="note">Base models: ${baseLines || '–'}. Scores on the paper's scale (accuracy in %, MME perception of 2000, OCRBench hits / 10), ± the standard error; retention is variant / base with its paired bootstrap 95% interval. The paper's rows are Gemma-3-12B-IT and VLM2VLA (arXiv 2509.22195, Table 1). Full sweep report: ${linkTo(d.input, vqa.reportUri)}.</p>
${gateLinesHtml(vqa.retention)}
${scoresTableHtml(models, benchmarks, vqa.scores)}
${retentionTableHtml(vqa.retention, benchmarks)}`;
}

/** Campaigns with the variants that share each (one campaign per summary.json), in variant order. */
function campaignGroups(campaign: ExperimentOutputs['campaign']): { result: EvalCampaignResult; variants: string[] }[] {
  const groups = new Map<string, { result: EvalCampaignResult; variants: string[] }>();
  for (const [variant, result] of Object.entries(campaign)) {
    const group = groups.get(result.summaryUri);
    if (group) group.variants.push(variant);
    else groups.set(result.summaryUri, { result, variants: [variant] });
  }
  return [...groups.values()];
}

function figure5Section(d: ExperimentReportData): string {
  const paper = paperFigure5Rows();
  const policy = d.input.campaign?.policy;
  const fixedPolicy = policy !== undefined && policy !== 'variant' ? policy : undefined;
  const sections = campaignGroups(d.outputs.campaign).map(({ result, variants }, i) => {
    const names = variants.map(escapeMarkup).join(', ');
    const shared =
      variants.length > 1
        ? `<p class="note shared-campaign">One campaign shared by variants ${names}: ${fixedPolicy ? `its policy is fixed (${escapeMarkup(fixedPolicy.kind)}), so it does not depend on the variant` : 'they point at the same campaign'}. These are one set of ${result.episodes} episodes, not separate evidence per variant.</p>`
        : fixedPolicy
          ? `<p class="note shared-campaign">The campaign's policy is fixed (${escapeMarkup(fixedPolicy.kind)}): it measures that policy, not the variant's adapter.</p>`
          : '';
    const summary = d.campaignSummaries.get(result.summaryUri);
    const table =
      summary !== undefined && 'value' in summary
        ? figure5Table(summary.value, paper, `figure5-${i}`)
        : `<p class="problem">No success intervals: ${escapeMarkup(summary !== undefined && 'problem' in summary ? summary.problem : 'summary.json not read')}. Success per task: ${escapeMarkup(Object.entries(result.successRate).map(([task, rate]) => `${task} ${rate}%`).join(', ') || 'none')}.</p>`;
    return `<h3 data-campaign="${escapeMarkup(result.campaignId)}">${variants.length > 1 ? 'Variants' : 'Variant'} ${names}: campaign ${escapeMarkup(result.campaignId)}</h3>
${shared}${table}
<p class="note">Campaign report: ${linkTo(d.input, result.reportUri)}; summary: ${linkTo(d.input, result.summaryUri)}.</p>`;
  });
  return `<h2>Figure 5: robot success</h2>
<p class="note">Paper figures are success % over their trials (arXiv 2509.22195, Figure 5). This run: success % with its 95% Wilson score interval; the bar shows the interval, the dark dot the rate and the red tick the paper's VLM2VLA figure.</p>
${sections.join('\n')}`;
}

/** The settings a stage was keyed on, one `key: value` per top-level entry, long values cut. */
function settingsSummary(settings: LineageRecord['settings']): string {
  const entries = settings !== null && typeof settings === 'object' && !Array.isArray(settings) ? Object.entries(settings) : [['', settings] as const];
  return entries
    .map(([key, value]) => {
      const text = JSON.stringify(value) ?? 'null';
      const shown = text.length > 80 ? `${text.slice(0, 79)}…` : text;
      return key === '' ? escapeMarkup(shown) : `${escapeMarkup(key)}: ${escapeMarkup(shown)}`;
    })
    .join('; ');
}

function lineageInput(d: ExperimentReportData, input: LineageInput, byLineageUri: ReadonlyMap<string, string>): string {
  const inPage = input.lineageUri === undefined ? undefined : byLineageUri.get(input.lineageUri);
  const lineage = input.lineageUri === undefined ? '' : ` · ${linkTo(d.input, input.lineageUri, 'lineage.json')}${inPage ? ` (<a href="#${lineageAnchor(inPage)}">${escapeMarkup(inPage)}</a>)` : ''}`;
  // Base models and benchmark data are named, not stored artefacts: shown, not linked.
  const named = input.kind === 'model' || input.kind === 'benchmark';
  const what = named ? `<code>${escapeMarkup(input.uri)}</code>` : linkTo(d.input, input.uri);
  return `<li class="input" data-role="${escapeMarkup(input.role)}">${escapeMarkup(input.role)}: ${escapeMarkup(input.kind)} ${what} ${shortHash(input.sha256)}${lineage}</li>`;
}

function lineageSection(d: ExperimentReportData): string {
  const rows = d.status.stages.filter((s): s is StageRow & { lineageUri: string } => s.lineageUri !== undefined);
  if (rows.length === 0) return '';
  const byLineageUri = new Map(rows.map((r) => [r.lineageUri, r.id]));
  const items = rows.map((row) => {
    const read = d.lineage.get(row.lineageUri);
    const head = `<li id="${lineageAnchor(row.id)}" class="stage"><strong>${escapeMarkup(row.id)}</strong> · ${linkTo(d.input, row.lineageUri, 'lineage.json')}`;
    if (read === undefined || 'problem' in read) return `${head} <span class="problem">${escapeMarkup(read?.problem ?? 'not read')}</span></li>`;
    const r = read.value;
    const inputs = r.inputs.length ? `<ul>${r.inputs.map((i) => lineageInput(d, i, byLineageUri)).join('')}</ul>` : '<ul><li>no inputs</li></ul>';
    return `${head}<ul>
<li class="artifact">artefact: ${escapeMarkup(r.artifact.kind)} ${linkTo(d.input, r.artifact.uri)} ${shortHash(r.artifact.sha256)}</li>
<li class="inputs">inputs:${inputs}</li>
<li class="settings">settings: ${settingsSummary(r.settings)}</li>
<li class="code">code: ${escapeMarkup(r.code.stage)} at revision <code>${escapeMarkup(r.code.gitRevision)}</code>; key ${shortHash(r.key)}</li>
<li class="produced-by">produced by experiment <span class="made-by">${escapeMarkup(r.producedBy.experiment)}</span> (workflow <code>${escapeMarkup(r.producedBy.workflowId)}</code>, stage workflow <code>${escapeMarkup(r.producedBy.childWorkflowId)}</code>), ${escapeMarkup(r.startedAt)} to ${escapeMarkup(r.finishedAt)}</li>
</ul></li>`;
  });
  return `<h2>Lineage</h2>
<p class="note">Each stage's artefact, the content hash it was sealed with (first 12 hex digits), and what it was made from: its inputs with their hashes and their own lineage, the settings and code version in its key, and the experiment that made it.</p>
<ul class="lineage">
${items.join('\n')}
</ul>`;
}

function artefactsSection(d: ExperimentReportData): string {
  const { outputs } = d;
  const links: string[] = [];
  if (outputs.relabel) links.push(`D_lan: ${linkTo(d.input, outputs.relabel.outputUri)} (manifest ${linkTo(d.input, outputs.relabel.manifestUri, 'manifest.json')}, relabel report ${linkTo(d.input, outputs.relabel.reportUri, 'report')})`);
  if (outputs.shard) links.push(`Shards: ${linkTo(d.input, outputs.shard.manifestUri)}`);
  for (const [variant, train] of Object.entries(outputs.train)) links.push(`Adapter ${escapeMarkup(variant)}: ${linkTo(d.input, train.adapterUri)}`);
  if (outputs.vqa) links.push(`VQA report: ${linkTo(d.input, outputs.vqa.reportUri)}`);
  for (const { result, variants } of campaignGroups(outputs.campaign)) links.push(`Campaign report (${variants.map(escapeMarkup).join(', ')}): ${linkTo(d.input, result.reportUri)}`);
  for (const row of d.status.stages) if (row.lineageUri !== undefined) links.push(`Lineage of ${escapeMarkup(row.id)}: ${linkTo(d.input, row.lineageUri)}`);
  return `<h2>Artefacts</h2>
<ul id="artefacts">${links.map((l) => `<li>${l}</li>`).join('')}</ul>`;
}

export function renderExperimentReport(d: ExperimentReportData): string {
  const { input, status, outputs } = d;
  const error = status.error === undefined ? '' : `<p class="problem" id="error">${escapeMarkup(status.error)}</p>`;
  const body = `<h1>Experiment ${escapeMarkup(input.name)}: ${status.state}</h1>
<p id="meta">Dataset ${linkTo(input, input.datasetUri)}; variants ${input.variants.map((v) => escapeMarkup(v.name)).join(', ')}; store ${escapeMarkup(input.storeUri)}.</p>
${error}
${stagesSection(d)}
${outputs.vqa ? table1Section(d, outputs.vqa) : ''}
${Object.keys(outputs.campaign).length ? figure5Section(d) : ''}
${lineageSection(d)}
${artefactsSection(d)}`;
  return htmlPage({ title: `Experiment ${input.name}`, css: CSS, body });
}
