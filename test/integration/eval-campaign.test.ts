import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileStore, getJson } from '../../activities/store';
import { withBrowserPage } from '../../activities/vqa/browser';
import { filmstripFrameWidths } from '../helpers/browser';
import { CampaignSummaryFile, EpisodeRecord, EvalCampaignResult, type EvalCampaignInput } from '../../data-schemas/robot';
import { fileUri, joinUri } from '../../data-schemas/uri';
import type { evalCampaign } from '../../workflows';
import { connectTestTemporal, recordHistory, type TemporalTestEnv } from '../helpers/temporal';
import { withCpuWorker } from '../helpers/workers';
import { startStationProcess, type StationProcess } from '../helpers/stations';

/**
 * evalCampaign: Figure-5 tasks x trials on real station worker processes, two campaigns sharing
 * one station (the station lock hands it over episode by episode), the report checked in Chromium.
 */
describe('evalCampaign', () => {
  const store = new FileStore();
  let env: TemporalTestEnv;
  let dir: string;
  let storeUri: string;
  let station: StationProcess;
  let second: StationProcess;

  beforeAll(async () => {
    env = await connectTestTemporal();
    dir = mkdtempSync(join(tmpdir(), 'vla-campaign-'));
    storeUri = fileUri(join(dir, 'store'));
    [station, second] = await Promise.all([startStationProcess({ stateDir: join(dir, 'state'), storeUri }), startStationProcess({ stateDir: join(dir, 'state'), storeUri })]);
  }, 120_000);

  afterAll(async () => {
    await Promise.all([station?.stop(), second?.stop()]);
    await env?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it('two campaigns contend for a station: every episode runs alone on its arm, both reports are right', async () => {
    const policy = { kind: 'scripted', seed: 0, actionStdMeters: 0, formatErrorRate: 0, wrongSubtaskRate: 0 } as const;
    // Campaign A spreads over both stations; B wants only the first, which A also uses.
    const a: EvalCampaignInput = EvalCampaignInputOf({ tasks: ['pick_up', 'item_above'], trials: 2, stations: [station.stationId, second.stationId], policy, outputUri: joinUri(storeUri, 'campaign-a'), seed: 0 });
    // B names the paper's design and cuts its one task short: three trials, one per language.
    const b: EvalCampaignInput = EvalCampaignInputOf({ tasks: ['multilingual'], preset: 'figure5-paper', trialsPerTask: { multilingual: 3 }, stations: [station.stationId], policy, outputUri: joinUri(storeUri, 'campaign-b'), seed: 10 });
    const { ha, ra, rb } = await withCpuWorker(env, store, 'campaign-cpu', async (cpuQueue) => {
      const [ha, hb] = await Promise.all([
        env.client.workflow.start<typeof evalCampaign>('evalCampaign', { taskQueue: cpuQueue, workflowId: `campaign-a-${Date.now()}`, args: [a] }),
        env.client.workflow.start<typeof evalCampaign>('evalCampaign', { taskQueue: cpuQueue, workflowId: `campaign-b-${Date.now()}`, args: [b] }),
      ]);
      const [ra, rb] = (await Promise.all([ha.result(), hb.result()])).map((r) => EvalCampaignResult.parse(r)) as [EvalCampaignResult, EvalCampaignResult];
      return { ha, ra, rb };
    });
    expect(ra.episodes).toBe(4);
    expect(rb.episodes).toBe(3);
    // The scripted policy with exact actions does every Figure-5 task, in every language.
    expect(ra.successRate).toEqual({ pick_up: 100, item_above: 100 });
    expect(rb.successRate).toEqual({ multilingual: 100 });

    // One episode at a time on each arm: from its reset to its end, no other episode's reset there.
    const records: EpisodeRecord[] = [];
    for (const [root, keys] of [
      ['campaign-a', ['pick_up-t000', 'pick_up-t001', 'item_above-t000', 'item_above-t001']],
      ['campaign-b', ['multilingual-t000', 'multilingual-t001', 'multilingual-t002']],
    ] as const) {
      for (const key of keys) records.push(await getJson(store, joinUri(storeUri, root, 'episodes', key, 'episode.json'), EpisodeRecord));
    }
    for (const stationId of [station.stationId, second.stationId]) {
      const spans = records
        .filter((r) => r.stationId === stationId)
        .map((r) => ({ from: Date.parse(r.reset?.timestamp ?? ''), to: Date.parse(r.finishedAt) }))
        .sort((x, y) => x.from - y.from);
      expect(spans.length).toBeGreaterThan(0);
      spans.slice(1).forEach((s, i) => expect(s.from).toBeGreaterThanOrEqual((spans[i] as { to: number }).to));
    }
    // Both campaigns ran on the shared arm.
    expect(new Set(records.filter((r) => r.stationId === station.stationId).map((r) => r.input.labels.campaign)).size).toBe(2);
    expect(records.filter((r) => r.input.labels.task === 'multilingual').map((r) => r.input.labels.language)).toEqual(['es', 'zh', 'hi']);
    expect(records.filter((r) => r.input.labels.task === 'multilingual').every((r) => !r.input.inDistribution)).toBe(true);

    // The summary and the report show the trial design each campaign ran.
    const summaryB = await getJson(store, rb.summaryUri, CampaignSummaryFile);
    expect(summaryB.design).toEqual({
      preset: 'figure5-paper',
      presetDescription: expect.stringContaining('30 trials per task, 90 for the multilingual task') as unknown,
      seed: 10,
      tasks: [{ taskId: 'multilingual', trials: 3, from: 'trialsPerTask', languages: { es: 1, zh: 1, hi: 1 } }],
      totalTrials: 3,
    });
    expect((await getJson(store, ra.summaryUri, CampaignSummaryFile)).design).toMatchObject({ preset: null, tasks: [{ taskId: 'pick_up', trials: 2, from: 'trials' }, { taskId: 'item_above', trials: 2, from: 'trials' }] });

    await recordHistory(env, 'evalCampaign', ha.workflowId);
    await withBrowserPage(async (page) => {
      await page.goto(ra.reportUri);
      const rows = await page.evaluate<string[]>(`[...document.querySelectorAll('#figure5 tr[data-task]')].map((tr) => tr.getAttribute('data-task'))`);
      expect(rows).toEqual(expect.arrayContaining(['pick_up', 'pick_place_lift', 'pick_place_long', 'multilingual', 'item_above']));
      const thisRun = await page.evaluate<string | null>(`document.querySelector('#figure5 tr[data-task="item_above"] td.this-run')?.getAttribute('data-rate') ?? null`);
      expect(Number(thisRun)).toBe(1);
      const widths = await filmstripFrameWidths(page);
      expect(widths.length).toBeGreaterThanOrEqual(4 * 3);
      expect(widths.every((w) => w > 0)).toBe(true);
      expect(await page.evaluate<number>(`document.querySelectorAll('.episode').length`)).toBe(4);
    });
    await withBrowserPage(async (page) => {
      await page.goto(rb.reportUri);
      expect(await page.evaluate<string | null>(`document.querySelector('#design')?.textContent ?? null`)).toContain('multilingual 3 (es 1, zh 1, hi 1), set per task');
    });
  }, 600_000);
});

function EvalCampaignInputOf(x: Omit<EvalCampaignInput, 'verifier' | 'limits' | 'title' | 'trialsPerTask' | 'noWorkerWarningSeconds'> & Partial<Pick<EvalCampaignInput, 'trialsPerTask'>>): EvalCampaignInput {
  return { trialsPerTask: {}, ...x, verifier: { kind: 'oracle' }, limits: { maxRetriesPerSubtask: 4, maxCycles: 60, maxDurationSeconds: 900, maxRepairs: 2 }, title: 'test campaign', noWorkerWarningSeconds: 60 };
}
