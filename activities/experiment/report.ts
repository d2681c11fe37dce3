import { experimentUri, type ExperimentInput, type ExperimentOutputs, type ExperimentStatus } from '../../data-schemas/experiment';
import { joinUri } from '../../data-schemas/uri';
import { escapeMarkup, htmlPage, htmlTable, reportBaseCss } from '../report/html';
import { putJson } from '../store';
import type { ObjectStore } from '../store/types';

export const EXPERIMENT_REPORT_FILE = 'report.html';
export const EXPERIMENT_STATUS_FILE = 'experiment.json';

/** experiment.json (the status and every stage's result) and report.html, under `<storeUri>/experiments/<name>/`. */
export async function writeExperimentReport(
  store: ObjectStore,
  { input, status, outputs }: { input: ExperimentInput; status: ExperimentStatus; outputs: ExperimentOutputs },
): Promise<{ reportUri: string; statusUri: string }> {
  const root = experimentUri(input.storeUri, input.name);
  const reportUri = joinUri(root, EXPERIMENT_REPORT_FILE);
  const statusUri = joinUri(root, EXPERIMENT_STATUS_FILE);
  await putJson(store, statusUri, { input, status: { ...status, reportUri }, outputs });
  await store.put(reportUri, renderExperimentReport(input, status), { contentType: 'text/html; charset=utf-8' });
  return { reportUri, statusUri };
}

export function renderExperimentReport(input: ExperimentInput, status: ExperimentStatus): string {
  const rows = status.stages
    .map(
      (s) =>
        `<tr class="${s.state}"><td>${escapeMarkup(s.id)}</td><td>${s.state}</td><td>${s.key ? s.key.slice(0, 12) : ''}</td>` +
        `<td>${s.outputUri ? `<a href="${escapeMarkup(s.outputUri)}">${escapeMarkup(s.outputUri)}</a>` : ''}</td><td>${escapeMarkup(s.detail ?? '')}</td></tr>`,
    )
    .join('');
  const body = `<h1>Experiment ${escapeMarkup(input.name)}: ${status.state}</h1>
<p>Dataset ${escapeMarkup(input.datasetUri)}; variants ${input.variants.map((v) => escapeMarkup(v.name)).join(', ')}.</p>
<h2>Stages</h2>
${htmlTable('stages', '<tr><th>stage</th><th>state</th><th>key</th><th>output</th><th>detail</th></tr>', rows)}`;
  return htmlPage({ title: `Experiment ${input.name}`, css: reportBaseCss(), body });
}
