import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { summarizeCampaign, type CampaignEpisodeSummary, type FilmstripFrame } from '../../activities/robot/campaign/metrics';
import { renderCampaignReportHtml, type CampaignReportInput, type PaperFigure5Row } from '../../activities/robot/campaign/report';
import { campaignTrialDesign } from '../../activities/robot/campaign/suite';
import { renderFrame, resolveTask, simulateEpisode } from '../../activities/robot/sim';
import { screenshotElement, withBrowserPage } from '../../activities/vqa/browser';
import { collectPageErrors, filmstripFrameWidths } from '../helpers/browser';

/** docs/method.md, "Robot evaluation" (Figure 5), success %. */
const PAPER: PaperFigure5Row[] = [
  { taskId: 'pick_up', name: 'Pick up (in-distribution)', openvla: 78, ecot: 52, vlm2vlaAt: 57, vlm2vla: 62, trials: 30 },
  { taskId: 'pick_place_lift', name: 'Pick, place and lift (sequential)', openvla: 77, ecot: 58, vlm2vlaAt: 43, vlm2vla: 62, trials: 30 },
  { taskId: 'pick_place_long', name: 'Pick and place (long horizon)', openvla: 49, ecot: 33, vlm2vlaAt: 34, vlm2vla: 51, trials: 30 },
  { taskId: 'multilingual', name: 'Pick up, multilingual instruction', openvla: 1, ecot: 5, vlm2vlaAt: 28, vlm2vla: 53, trials: 90 },
  { taskId: 'item_above', name: 'Pick up "the item above Ash Ketchum"', openvla: 0, ecot: 0, vlm2vlaAt: 30, vlm2vla: 60, trials: 30 },
];

/** Real simulator frames (JPEG) of an episode's demonstration, as data: URLs. */
async function simFrames(taskText: string, seed: number, count: number): Promise<string[]> {
  const demo = simulateEpisode(resolveTask(taskText), seed, 0).demo;
  const stride = Math.max(1, Math.floor(demo.steps.length / count));
  const worlds = Array.from({ length: count }, (_, i) => demo.steps[Math.min(i * stride, demo.steps.length - 1)]!.world);
  const jpegs = await Promise.all(worlds.map((w) => renderFrame(w, 'image_0', 128)));
  return jpegs.map((j) => `data:image/jpeg;base64,${j.toString('base64')}`);
}

const strip = (uris: readonly string[], subtasks: readonly string[], verdicts: readonly FilmstripFrame['verdict'][]): FilmstripFrame[] =>
  uris.map((frameUri, cycle) => ({
    frameUri,
    cycle,
    subtask: subtasks[cycle % subtasks.length]!,
    verdict: verdicts[cycle % verdicts.length]!,
    reason: verdicts[cycle % verdicts.length] === 'retry' ? 'the gripper is not above the eggplant yet' : verdicts[cycle % verdicts.length] === 'proceed' ? 'aligned for the grasp' : null,
  }));

function baseEpisode(over: Partial<CampaignEpisodeSummary> & Pick<CampaignEpisodeSummary, 'episodeId' | 'taskId' | 'taskName' | 'trial' | 'filmstrip'>): CampaignEpisodeSummary {
  return {
    workflowId: `campaign-test-${over.episodeId}`,
    stationId: 'sim-1',
    instruction: 'pick up the eggplant',
    outcome: 'completed',
    success: true,
    score: 2,
    maxScore: 2,
    planHit: true,
    subtasks: ['Move to the eggplant', 'Grasp the eggplant', 'Lift the eggplant'],
    cycles: over.filmstrip.length,
    chunks: over.filmstrip.length,
    formatFailures: 0,
    repairs: 0,
    latenciesMs: [
      { stage: 'subtasks', ms: 800 },
      { stage: 'motion_plan', ms: 300 },
      { stage: 'action', ms: 500 },
      { stage: 'execute', ms: 200 },
      { stage: 'verify', ms: 700 },
      { stage: 'cycle', ms: 1700 },
      { stage: 'cycle', ms: 2100 },
    ],
    ...over,
  };
}

describe('the campaign report', () => {
  let episodes: CampaignEpisodeSummary[];
  let input: CampaignReportInput;
  let html: string;

  beforeAll(async () => {
    const eggplant = await simFrames('pick up the eggplant', 1, 3);
    const retried = await simFrames('pick up the eggplant', 2, 2);
    const multi = await simFrames('pick up the eggplant', 3, 4);
    const steps = ['Move to the eggplant', 'Grasp the eggplant', 'Lift the eggplant'];
    episodes = [
      baseEpisode({ episodeId: 'pick_up-t000', taskId: 'pick_up', taskName: 'Pick up (in-distribution)', trial: 0, filmstrip: strip(eggplant, steps, [null, 'proceed', 'proceed']) }),
      baseEpisode({
        episodeId: 'pick_up-t001',
        taskId: 'pick_up',
        taskName: 'Pick up (in-distribution)',
        trial: 1,
        stationId: 'sim-2',
        outcome: 'retries_exhausted',
        success: false,
        score: 1,
        planHit: false,
        formatFailures: 1,
        repairs: 1,
        filmstrip: strip(retried, steps, ['retry', 'retry']),
        error: 'retries exhausted on "Grasp the eggplant" <after 4 tries>',
      }),
      baseEpisode({
        episodeId: 'multilingual-t000',
        taskId: 'multilingual',
        taskName: 'Pick up, multilingual instruction',
        trial: 0,
        language: 'es',
        instruction: 'recoge la berenjena',
        // Markup in model text must show as text, never run.
        subtasks: ['Move to the eggplant <img src=x onerror="window.__pwned=1">', 'Grasp the eggplant'],
        filmstrip: strip(multi, ['Move to the eggplant <img src=x onerror="window.__pwned=1">', 'Grasp the eggplant'], [null, 'retry', 'proceed', 'proceed']),
      }),
    ];
    const summary = summarizeCampaign(episodes);
    input = { title: 'Robot campaign <test>', campaignId: 'campaign-test', createdAt: '2026-11-22T00:00:00Z', policy: 'scripted (seed 0)', verifier: 'oracle', stations: ['sim-1', 'sim-2'], design: null, summary, episodes, paper: PAPER };
    input.design = campaignTrialDesign({ tasks: ['pick_up', 'multilingual'], preset: 'figure5-paper', trialsPerTask: { pick_up: 2, multilingual: 1 }, seed: 7 });
    html = renderCampaignReportHtml(input);
  });

  it('shows Figure 5, the per-task and latency tables, and every filmstrip frame loaded, in a real headless Chromium', async () => {
    await withBrowserPage(async (page) => {
      const errors = collectPageErrors(page);
      await page.setContent(html, { waitUntil: 'load' });
      expect(await page.title()).toBe('Robot campaign <test>');

      // Figure 5: the paper's five rows, ours beside them where run.
      const rows = page.locator('#figure5 tbody tr');
      expect(await rows.count()).toBe(5);
      const pickUp = page.locator('#figure5 tr[data-task="pick_up"]');
      expect(await pickUp.locator('td[data-method="openvla"]').innerText()).toBe('78%');
      expect(await pickUp.locator('td[data-method="vlm2vla"]').innerText()).toBe('62%');
      const ours = pickUp.locator('td.this-run');
      expect(await ours.locator('.rate').innerText()).toBe('50.0%');
      expect(await ours.locator('.n').innerText()).toBe('n = 2');
      expect(await ours.locator('.ci').innerText()).toBe('[9.5–90.5%]');
      expect(await page.locator('#figure5 tr[data-task="multilingual"] td[data-method="ecot"]').innerText()).toBe('5%');
      expect(await page.locator('#figure5 tr[data-task="multilingual"] .rate').innerText()).toBe('100.0%');
      expect(await page.locator('#figure5 tr[data-task="item_above"] td.this-run').innerText()).toBe('not run');

      // The trial design: the preset, each task's count (per language), where a count was set per task.
      expect(await page.locator('#design').getAttribute('data-preset')).toBe('figure5-paper');
      expect(await page.locator('#design .design-task[data-task="multilingual"]').getAttribute('data-trials')).toBe('1');
      expect(await page.locator('#design').innerText()).toBe(
        "Trial design: preset figure5-paper (the paper's Figure-5 design: 30 trials per task, 90 for the multilingual task (30 in each language)); 3 trials: pick_up 2, set per task; multilingual 1 (es 1), set per task. Scene seeds: 7 + trial.",
      );

      // Per task: partial credit, plan hit rate, languages; and the whole campaign.
      const taskRow = page.locator('#tasks tr[data-task="pick_up"]');
      expect(await taskRow.locator('td.partial').innerText()).toContain('75.0%');
      expect(await taskRow.locator('td.plan-hit').innerText()).toBe('50.0% (1/2)');
      expect(await taskRow.locator('td.outcomes').innerText()).toBe('completed 1, retries_exhausted 1');
      expect(await page.locator('#tasks tr[data-task="multilingual"] .languages').innerText()).toBe('es 1/1');
      expect(await page.locator('#tasks tr.overall td.successes').innerText()).toBe('2');

      // Latency per stage against the paper.
      expect(await page.locator('#latency tr[data-stage="cycle"] td.median').innerText()).toBe('1.9 s');
      expect(await page.locator('#latency tr[data-stage="cycle"] td').nth(1).innerText()).toBe('6');
      expect(await page.locator('#latency tr[data-stage="reset"] td').nth(1).innerText()).toBe('0');
      expect(await page.locator('#latency tr.paper').innerText()).toMatch(/6\.1 s\s+14\.3 s/);
      expect(await page.locator('#latency-vs-paper').innerText()).toContain('0 of 6 cycles took longer than 45.0 s');

      // Format failures per 100 chunks: 1 failure and 1 repair over 9 chunks.
      expect(await page.locator('#format tr.overall td.failures-per-100').innerText()).toBe('11.1');

      // Filmstrips: one per episode, every frame decoded, captioned with cycle, subtask and verdict.
      expect(await page.locator('.episode').count()).toBe(3);
      expect(await page.locator('.filmstrip').count()).toBe(3);
      const frames = page.locator('.filmstrip .frame');
      expect(await frames.count()).toBe(9);
      const widths = await filmstripFrameWidths(page);
      expect(widths).toEqual(Array(9).fill(128));
      const first = page.locator('.episode[data-episode-id="pick_up-t000"] .frame').nth(1);
      expect(await first.locator('.cycle').innerText()).toBe('cycle 1');
      expect(await first.locator('.subtask').innerText()).toBe('Grasp the eggplant');
      expect(await first.locator('.verdict').innerText()).toBe('proceed');
      expect(await first.getAttribute('class')).toBe('frame verdict-proceed');
      const retried = page.locator('.episode[data-episode-id="pick_up-t001"]');
      expect(await retried.locator('.frame.verdict-retry').count()).toBe(2);
      expect(await retried.locator('.frame .reason').first().innerText()).toBe('the gripper is not above the eggplant yet');
      expect(await retried.locator('.outcome').innerText()).toBe('retries_exhausted');
      expect(await retried.locator('.error').innerText()).toBe('retries exhausted on "Grasp the eggplant" <after 4 tries>');
      expect(await page.locator('.episode[data-episode-id="pick_up-t000"] .frame').first().locator('.verdict').innerText()).toBe('no verdict');

      // Escaped: the model's markup is text, nothing of it ran or loaded.
      const multilingual = page.locator('.episode[data-episode-id="multilingual-t000"]');
      expect(await multilingual.locator('.instruction').getAttribute('lang')).toBe('es');
      expect(await multilingual.locator('.subtasks li').first().innerText()).toBe('Move to the eggplant <img src=x onerror="window.__pwned=1">');
      expect(await page.evaluate<unknown>('window.__pwned')).toBeUndefined();
      expect(await page.locator('img').count()).toBe(9);
      expect(errors).toEqual([]);
    });
  });

  it('the frame check catches a frame that does not decode', async () => {
    const broken = episodes.map((e, i) => (i === 0 ? { ...e, filmstrip: [{ ...e.filmstrip[0]!, frameUri: 'data:image/jpeg;base64,bm90IGEganBlZw==' }] } : e));
    await withBrowserPage(async (page) => {
      await page.setContent(renderCampaignReportHtml({ ...input, episodes: broken, summary: summarizeCampaign(broken) }), { waitUntil: 'load' });
      const widths = await filmstripFrameWidths(page);
      expect(widths.filter((w) => w === 0)).toHaveLength(1);
    });
  });

  it('screenshots to non-empty PNGs', async () => {
    const table = await sharp(await screenshotElement(html, '#figure5')).stats();
    const strip = sharp(await screenshotElement(html, '.episode[data-episode-id="pick_up-t000"] .filmstrip'));
    const meta = await strip.metadata();
    expect(meta.format).toBe('png');
    // deviceScaleFactor 2: three 160 px frames and their gaps.
    expect(meta.width).toBeGreaterThan(2 * 3 * 160);
    // Not blank: pixels differ (text in the table, scene colours in the frames).
    expect(table.channels[0]!.stdev).toBeGreaterThan(1);
    expect((await strip.stats()).channels[0]!.stdev).toBeGreaterThan(1);
  });
});
