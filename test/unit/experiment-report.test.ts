import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lineageUriOf, sealLineage } from '../../activities/experiment/lineage';
import { writeExperimentReport } from '../../activities/experiment/report';
import { summarizeCampaign, type CampaignEpisodeSummary } from '../../activities/robot/campaign/metrics';
import { FileStore, getJson, putJson } from '../../activities/store';
import {
  ExperimentInput,
  ExperimentOutputs,
  ExperimentStatus,
  LINEAGE_FORMAT,
  LINEAGE_FORMAT_VERSION,
  stageOutputUri,
  type LineageRecord,
  type StageKind,
} from '../../data-schemas/experiment';
import { CampaignSummaryFile } from '../../data-schemas/robot';
import { fileUri, joinUri } from '../../data-schemas/uri';
import { z } from 'zod';

const key = (c: string): string => c.repeat(64);
const HOSTILE_DATASET = 'file:///data/<script>alert(1)</script>/d_rob';

let dir: string;
let storeUri: string;
const store = new FileStore();

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'vla-experiment-report-'));
  storeUri = `${fileUri(dir)}/store`;
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function experimentInput(name: string, withEvaluations: boolean): ExperimentInput {
  return ExperimentInput.parse({
    name,
    storeUri,
    datasetUri: HOSTILE_DATASET,
    variants: [
      { name: 'vlm2vla', baseModel: '/models/gemma-3-tiny' },
      { name: 'vlm2vla-at', baseModel: '/models/gemma-3-tiny', actionRepresentation: 'action-tokens' },
    ],
    ...(withEvaluations && {
      vqa: { benchmarks: [{ benchmark: 'mmbench-en', uri: `${storeUri}/bench/mmbench` }, { benchmark: 'mme', uri: `${storeUri}/bench/mme` }] },
      campaign: { tasks: ['pick_up'], trials: 3, policy: { kind: 'scripted' } },
    }),
  });
}

/** Seals a stage's lineage.json the way the experiment does; returns the stage's folder and lineage URIs. */
async function seal(stage: StageKind, k: string, experiment: string, artifact: LineageRecord['artifact'], inputs: LineageRecord['inputs']): Promise<{ outputUri: string; lineageUri: string }> {
  const outputUri = stageOutputUri(storeUri, stage, k);
  await sealLineage(store, outputUri, {
    format: LINEAGE_FORMAT,
    formatVersion: LINEAGE_FORMAT_VERSION,
    stage,
    key: k,
    artifact,
    inputs,
    settings: { labeler: { name: 'heuristic' }, note: '<img src=x onerror=alert(1)>' },
    code: { stage: `${stage}-1`, gitRevision: 'abc1234' },
    producedBy: { experiment, workflowId: `experiment:${experiment}`, childWorkflowId: `${stage}:${experiment}` },
    startedAt: '2026-12-01T10:00:00.000Z',
    finishedAt: '2026-12-01T10:30:00.000Z',
    result: {},
  });
  return { outputUri, lineageUri: lineageUriOf(outputUri) };
}

const episode = (trial: number, success: boolean): CampaignEpisodeSummary => ({
  episodeId: `ep-${trial}`,
  workflowId: `episode-${trial}`,
  stationId: 'sim-1',
  taskId: 'pick_up',
  taskName: 'Pick up (in-distribution)',
  instruction: 'pick up the eggplant',
  trial,
  outcome: 'completed',
  success,
  score: success ? 1 : 0,
  maxScore: 1,
  planHit: true,
  subtasks: ['Grasp the eggplant'],
  cycles: 1,
  chunks: 1,
  formatFailures: 0,
  repairs: 0,
  latenciesMs: [{ stage: 'cycle', ms: 1500 }],
  filmstrip: [],
});

const score = (benchmark: 'mmbench-en' | 'mme', value: number, stderr: number) => ({ benchmark, value, metric: 'accuracy', items: 40, stderr, stderrMethod: 'mean', truncated: 0, missing: 0 });

describe('the experiment report page', () => {
  it('shows the stages with reuse, Table 1 and Figure 5 beside the paper, the lineage and every artefact, escaped', async () => {
    const input = experimentInput('exp-b', true);
    // The relabel stage was made by another experiment (exp-a) and reused here.
    const relabel = await seal('relabel', key('a'), 'exp-a', { kind: 'd_lan', uri: `${stageOutputUri(storeUri, 'relabel', key('a'))}/d_lan`, sha256: key('1') }, [
      { role: 'dataset', kind: 'd_rob', uri: HOSTILE_DATASET, sha256: key('0') },
    ]);
    const shardsUri = `${stageOutputUri(storeUri, 'shard', key('b'))}/shards.json`;
    const shard = await seal('shard', key('b'), 'exp-b', { kind: 'shards', uri: shardsUri, sha256: key('2') }, [
      { role: 'd_lan', kind: 'd_lan', uri: `${relabel.outputUri}/d_lan`, sha256: key('1'), lineageUri: relabel.lineageUri },
    ]);
    const adapterUri = `${stageOutputUri(storeUri, 'train', key('c'))}/run/adapter`;
    const train = await seal('train', key('c'), 'exp-b', { kind: 'adapter', uri: adapterUri, sha256: key('3') }, [
      { role: 'shards', kind: 'shards', uri: shardsUri, sha256: key('2'), lineageUri: shard.lineageUri },
      { role: 'baseModel', kind: 'model', uri: '/models/gemma-3-tiny' },
    ]);
    // One scripted campaign, which both variants share: 2 of 3 pick-ups succeed.
    const campaignUri = stageOutputUri(storeUri, 'campaign', key('d'));
    const summaryUri = joinUri(campaignUri, 'summary.json');
    const episodes = [episode(0, true), episode(1, true), episode(2, false)];
    await putJson(store, summaryUri, CampaignSummaryFile.parse({ campaignId: 'campaign-exp-b', design: null, summary: summarizeCampaign(episodes), episodes }));
    const campaignResult = { campaignId: 'campaign-exp-b', episodes: 3, reportUri: joinUri(campaignUri, 'report.html'), summaryUri, successRate: { pick_up: 66.7 } };

    const status = ExperimentStatus.parse({
      name: 'exp-b',
      state: 'completed',
      pauseRequested: false,
      stages: [
        { id: 'relabel', stage: 'relabel', state: 'reused', key: key('a'), outputUri: relabel.outputUri, lineageUri: relabel.lineageUri, geminiUsd: 0 },
        { id: 'shard', stage: 'shard', state: 'done', key: key('b'), outputUri: shard.outputUri, lineageUri: shard.lineageUri, startedAt: '2026-12-07T10:00:00.000Z', finishedAt: '2026-12-07T10:01:30.000Z' },
        { id: 'train:vlm2vla', stage: 'train', variant: 'vlm2vla', state: 'done', key: key('c'), outputUri: train.outputUri, lineageUri: train.lineageUri, startedAt: '2026-12-07T10:02:00.000Z', finishedAt: '2026-12-07T12:32:00.000Z', gpuHours: 2.5 },
        { id: 'train:vlm2vla-at', stage: 'train', variant: 'vlm2vla-at', state: 'failed', detail: 'trainer ran out of memory <oom>' },
      ],
      spent: { geminiUsd: 0, gpuHours: 2.5 },
      budget: { gpuHours: 10 },
    });
    const vqaUri = stageOutputUri(storeUri, 'vqa', key('e'));
    const outputs = ExperimentOutputs.parse({
      relabel: {
        status: 'completed',
        outputUri: `${relabel.outputUri}/d_lan`,
        counts: { total: 4, done: 4, skipped: 0, quarantined: 0, failed: 0 },
        usage: { inputTokens: 0, outputTokens: 0, costUsd: 0 },
        reportUri: `${relabel.outputUri}/d_lan/report.html`,
        manifestUri: `${relabel.outputUri}/d_lan/manifest.json`,
        quarantined: [],
      },
      shard: { manifestUri: shardsUri, outputUri: shard.outputUri, shards: 1, samples: 40, bytes: 4096, written: 1, skipped: 0 },
      train: { vlm2vla: { runUri: `${adapterUri}/..`, adapterUri, resultUri: `${adapterUri}/result.json`, steps: 10, metrics: {}, gitRevision: 'abc1234', actionRepresentation: 'language', attempts: 1, resumedFromStep: 0 } },
      vqa: {
        outputUri: vqaUri,
        scores: { base: { 'mmbench-en': score('mmbench-en', 75.0, 1.2), mme: score('mme', 1200, 30) }, vlm2vla: { 'mmbench-en': score('mmbench-en', 70.25, 1.1), mme: score('mme', 1100, 28) } },
        retention: [
          {
            model: 'vlm2vla',
            base: 'base',
            perBenchmark: { 'mmbench-en': 70.25 / 75, mme: 1100 / 1200 },
            perBenchmarkInterval: { 'mmbench-en': [0.89, 0.95], mme: [0.88, 0.96] },
            pairedItems: { 'mmbench-en': 40, mme: 40 },
            overall: (70.25 / 75 + 1100 / 1200) / 2,
            overallInterval: [0.9, 0.95],
            threshold: 0.85,
            below: [],
            gate: 'passed',
          },
        ],
        reportUri: joinUri(vqaUri, 'report.html'),
        chartUri: joinUri(vqaUri, 'chart.png'),
        itemSets: {},
        predictions: { made: 160, reused: 0, truncated: 0 },
      },
      campaign: { vlm2vla: campaignResult, 'vlm2vla-at': campaignResult },
    });

    const { reportUri, statusUri } = await writeExperimentReport(store, { input, status, outputs });
    expect(reportUri).toBe(`${storeUri}/experiments/exp-b/report.html`);
    expect((await getJson(store, statusUri, z.object({ status: ExperimentStatus }))).status.reportUri).toBe(reportUri);
    const html = (await store.get(reportUri)).toString('utf8');
    const section = (heading: string): string => html.slice(html.indexOf(`<h2>${heading}`), html.indexOf('<h2>', html.indexOf(`<h2>${heading}`) + 1));

    // Stage table: reuse marked, with the experiment that made it (read from its lineage.json); key, duration, spend, links.
    const relabelRow = html.match(/<tr class="reused" data-stage="relabel">.*?<\/tr>/)?.[0] ?? '';
    expect(relabelRow).toContain('<span class="reused">reused</span> from experiment <span class="made-by">exp-a</span>');
    expect(relabelRow).toContain('(made in 30.0 min)');
    expect(relabelRow).toContain(`title="${key('a')}">aaaaaaaaaaaa</code>`);
    expect(relabelRow).toContain(`href="../../stages/relabel/${'a'.repeat(32)}/lineage.json"`);
    const trainRow = html.match(/<tr class="done" data-stage="train:vlm2vla">.*?<\/tr>/)?.[0] ?? '';
    expect(trainRow).toContain('<td>2.5 h</td>');
    expect(trainRow).toContain('<td>2.50</td>');
    expect(html).toContain('<td>2.50 of 10.00</td>');
    expect(html).toContain('trainer ran out of memory &lt;oom&gt;');

    // Table 1: the variant's score with its stderr, the paper's 68.5 (VLM2VLA, MMB-en), the retention interval and the gate.
    const table1 = section('Table 1');
    expect(table1).toContain('<tr data-model="vlm2vla"><td>vlm2vla</td><td class="score" data-benchmark="mmbench-en"><span class="value">70.3</span> <span class="stderr" title="standard error (mean)">± 1.1</span></td>');
    expect(table1).toContain('<tr data-model="base"><td>base</td><td class="score" data-benchmark="mmbench-en"><span class="value">75.0</span>');
    expect(table1).toContain('<tr class="paper"><td>paper: VLM2VLA (LoRA)</td><td>68.5</td><td>1391.7</td></tr>');
    expect(table1).toContain('<td class="kept" data-benchmark="mmbench-en"><span class="value">93.7%</span> <span class="interval">[89.0%, 95.0%]</span></td>');
    expect(table1).toContain('Retention gate passed: vlm2vla keeps 92.7% of base (95% interval 90.0% to 95.0%)');
    expect(table1).toContain('base = <code>/models/gemma-3-tiny</code>');

    // Figure 5: one table for the campaign both variants share, said so; 2 of 3 with its 95% Wilson interval beside the paper's 62%.
    const figure5 = section('Figure 5');
    expect(figure5.match(/<table id="figure5-/g)).toHaveLength(1);
    expect(figure5).toContain('One campaign shared by variants vlm2vla, vlm2vla-at: its policy is fixed (scripted)');
    expect(figure5).toContain('<span class="rate">66.7%</span> <span class="ci">[20.8–93.9%]</span> <span class="n">n = 3</span>');
    expect(figure5).toContain('<td class="paper" data-method="vlm2vla">62%</td>');

    // Lineage: artefact with its short hash, inputs linking to their own lineage (file and section), settings, code, producer.
    const lineage = section('Lineage');
    expect(lineage).toContain(`<li id="lineage-shard" class="stage"><strong>shard</strong>`);
    expect(lineage).toContain(`artefact: shards <a href="../../stages/shard/${'b'.repeat(32)}/shards.json" title="${shardsUri}">stages/shard/${'b'.repeat(32)}/shards.json</a>`);
    const relabelFolder = `stages/relabel/${'a'.repeat(32)}`;
    expect(lineage).toContain(
      `<li class="input" data-role="d_lan">d_lan: d_lan <a href="../../${relabelFolder}/d_lan" title="${storeUri}/${relabelFolder}/d_lan">${relabelFolder}/d_lan</a> <code title="${key('1')}">111111111111</code> · <a href="../../${relabelFolder}/lineage.json" title="${storeUri}/${relabelFolder}/lineage.json">lineage.json</a> (<a href="#lineage-relabel">relabel</a>)</li>`,
    );
    // A base model is named, not a stored artefact: shown, not linked.
    expect(lineage).toContain('<li class="input" data-role="baseModel">baseModel: model <code>/models/gemma-3-tiny</code> –</li>');
    expect(lineage).toContain('code: train-1 at revision <code>abc1234</code>');
    expect(lineage).toContain('produced by experiment <span class="made-by">exp-a</span>');

    // Artefacts: D_lan, shards.json, each adapter, the VQA report, the shared campaign's report once, each lineage.json.
    const artefacts = html.slice(html.indexOf('<h2>Artefacts'));
    expect(artefacts).toContain(`D_lan: <a href="../../stages/relabel/${'a'.repeat(32)}/d_lan"`);
    expect(artefacts).toContain(`Shards: <a href="../../stages/shard/${'b'.repeat(32)}/shards.json"`);
    expect(artefacts).toContain(`Adapter vlm2vla: <a href="../../stages/train/${'c'.repeat(32)}/run/adapter"`);
    expect(artefacts).toContain(`VQA report: <a href="../../stages/vqa/${'e'.repeat(32)}/report.html"`);
    expect(artefacts.match(/Campaign report \(vlm2vla, vlm2vla-at\)/g)).toHaveLength(1);
    expect(artefacts.match(/Lineage of /g)).toHaveLength(3);

    // Hostile strings from the input and the stored files are text, never markup.
    expect(html).not.toMatch(/<script|<img|<oom>/);
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(html).toContain('&lt;img src=x onerror=alert(1)&gt;');
  });

  it('leaves out Table 1 and Figure 5 when the experiment had no sweep and no campaign, and says which stored file is missing or unreadable', async () => {
    const input = experimentInput('exp-c', false);
    const outputUri = stageOutputUri(storeUri, 'relabel', key('f'));
    const shardUri = stageOutputUri(storeUri, 'shard', key('8'));
    await store.put(lineageUriOf(shardUri), '{"format": "vla-lineage"}');
    const status = ExperimentStatus.parse({
      name: 'exp-c',
      state: 'failed',
      pauseRequested: false,
      // Reused, but its lineage.json has since been deleted.
      stages: [
        { id: 'relabel', stage: 'relabel', state: 'reused', key: key('f'), outputUri, lineageUri: lineageUriOf(outputUri) },
        // Sealed, but its lineage.json does not hold a lineage record.
        { id: 'shard', stage: 'shard', state: 'done', key: key('8'), outputUri: shardUri, lineageUri: lineageUriOf(shardUri) },
      ],
      spent: { geminiUsd: 0, gpuHours: 0 },
      budget: {},
      error: 'shard failed: <bad>',
    });
    const { reportUri } = await writeExperimentReport(store, { input, status, outputs: ExperimentOutputs.parse({ train: {}, campaign: {} }) });
    const html = (await store.get(reportUri)).toString('utf8');
    expect(html).toContain('<h2>Stages</h2>');
    expect(html).not.toContain('Table 1');
    expect(html).not.toContain('Figure 5');
    expect(html).not.toContain('<table id="scores"');
    expect(html).toContain(`<span class="reused">reused</span> <span class="problem">(lineage.json is missing (${lineageUriOf(outputUri)}))</span>`);
    const shardLineage = html.match(/<li id="lineage-shard".*?<\/li>/)?.[0] ?? '';
    expect(shardLineage).toContain(`<span class="problem">${lineageUriOf(shardUri)}: does not match the expected schema`);
    expect(html).toContain('<p class="problem" id="error">shard failed: &lt;bad&gt;</p>');
  });

  it('says when a campaign summary is missing, showing the campaign result rates without intervals', async () => {
    const input = experimentInput('exp-d', true);
    const campaignUri = stageOutputUri(storeUri, 'campaign', key('9'));
    const status = ExperimentStatus.parse({ name: 'exp-d', state: 'completed', pauseRequested: false, stages: [], spent: { geminiUsd: 0, gpuHours: 0 }, budget: {} });
    const outputs = ExperimentOutputs.parse({
      train: {},
      campaign: { vlm2vla: { campaignId: 'c-d', episodes: 3, reportUri: joinUri(campaignUri, 'report.html'), summaryUri: joinUri(campaignUri, 'summary.json'), successRate: { pick_up: 66.7 } } },
    });
    const { reportUri } = await writeExperimentReport(store, { input, status, outputs });
    const html = (await store.get(reportUri)).toString('utf8');
    expect(html).toContain(`No success intervals: campaign summary.json is missing (${joinUri(campaignUri, 'summary.json')}). Success per task: pick_up 66.7%.`);
    expect(html).toContain("The campaign's policy is fixed (scripted): it measures that policy, not the variant's adapter.");
  });
});
