import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createCampaignActivities } from '../../activities/robot/campaign/activities';
import { campaignTrialDesign } from '../../activities/robot/campaign/suite';
import { FileStore, getJson } from '../../activities/store';
import { formatZodIssues } from '../../data-schemas/issues';
import { CampaignSummaryFile, CampaignTrialDesign, EvalCampaignInput, type EvalCampaignInputRaw } from '../../data-schemas/robot';
import { fileUri } from '../../data-schemas/uri';

const parse = (raw: Omit<EvalCampaignInputRaw, 'outputUri'>): EvalCampaignInput => EvalCampaignInput.parse({ outputUri: 'file:///tmp/campaign', ...raw });

describe('campaign trial design', () => {
  it('the figure5-paper preset runs each task as often as the paper: 30, and 90 multilingual (30 per language)', async () => {
    const input = parse({ preset: 'figure5-paper' });
    const design = campaignTrialDesign(input);
    expect(design.preset).toBe('figure5-paper');
    expect(design.tasks.map((t) => [t.taskId, t.trials, t.from])).toEqual([
      ['pick_up', 30, 'preset'],
      ['pick_place_lift', 30, 'preset'],
      ['pick_place_long', 30, 'preset'],
      ['multilingual', 90, 'preset'],
      ['item_above', 30, 'preset'],
    ]);
    expect(design.tasks.find((t) => t.taskId === 'multilingual')?.languages).toEqual({ es: 30, zh: 30, hi: 30 });
    expect(design.tasks.find((t) => t.taskId === 'pick_up')?.languages).toBeNull();
    expect(design.totalTrials).toBe(210);

    // The plan the campaign runs is that design: 210 episodes, 30 per language, seeds seed + trial.
    const plan = await createCampaignActivities({ store: new FileStore() }).planCampaign(input);
    expect(plan).toHaveLength(210);
    const multilingual = plan.filter((t) => t.taskId === 'multilingual');
    expect(['es', 'zh', 'hi'].map((lang) => multilingual.filter((t) => t.language === lang).length)).toEqual([30, 30, 30]);
    expect(multilingual.map((t) => t.seed)).toEqual(Array.from({ length: 90 }, (_, i) => i));
  });

  it('per-task counts override the preset or `trials`; without either every task gets 3', () => {
    const withPreset = campaignTrialDesign(parse({ tasks: ['pick_up', 'multilingual'], preset: 'figure5-paper', trialsPerTask: { multilingual: 6 } }));
    expect(withPreset.tasks.map((t) => [t.taskId, t.trials, t.from])).toEqual([
      ['pick_up', 30, 'preset'],
      ['multilingual', 6, 'trialsPerTask'],
    ]);
    expect(withPreset.tasks[1]?.languages).toEqual({ es: 2, zh: 2, hi: 2 });
    const withTrials = campaignTrialDesign(parse({ tasks: ['pick_up', 'item_above'], trials: 5, trialsPerTask: { item_above: 1 } }));
    expect(withTrials.tasks.map((t) => [t.trials, t.from])).toEqual([
      [5, 'trials'],
      [1, 'trialsPerTask'],
    ]);
    expect(campaignTrialDesign(parse({ tasks: ['pick_up'] })).tasks).toEqual([{ taskId: 'pick_up', trials: 3, from: 'default', languages: null }]);
    // The planCampaign input of a campaign started before per-task counts existed.
    expect(campaignTrialDesign({ tasks: ['pick_up'], trials: 2, seed: 0 }).tasks).toEqual([{ taskId: 'pick_up', trials: 2, from: 'trials', languages: null }]);
  });

  it('rejects a design that contradicts itself, naming the fields', () => {
    const issues = (raw: Record<string, unknown>): string[] => {
      const r = EvalCampaignInput.safeParse({ outputUri: 'file:///tmp/campaign', ...raw });
      return r.success ? [] : formatZodIssues(r.error);
    };
    expect(issues({ preset: 'figure5-paper', trials: 10 }).join('\n')).toMatch(/trials: give "trials" or "preset" \("figure5-paper"\), not both/);
    expect(issues({ tasks: ['pick_up'], trialsPerTask: { multilingual: 4 } }).join('\n')).toMatch(/trialsPerTask\.multilingual: "multilingual" is not one of the campaign's tasks \(pick_up\)/);
    expect(issues({ preset: 'figure5' }).join('\n')).toMatch(/preset/);
    expect(issues({ trialsPerTask: { pick_up: 0 } }).join('\n')).toMatch(/trialsPerTask\.pick_up/);
  });

  it('summary.json states the design in its schema: written checked, read back typed', async () => {
    const design = campaignTrialDesign(parse({ tasks: ['pick_up', 'multilingual'], preset: 'figure5-paper', trialsPerTask: { multilingual: 4 }, seed: 5 }));
    expect(CampaignTrialDesign.parse(design)).toEqual(design);
    const dir = mkdtempSync(join(tmpdir(), 'vla-campaign-design-'));
    try {
      const store = new FileStore();
      const written = await createCampaignActivities({ store }).writeCampaignReport({
        campaignId: 'campaign-design',
        title: 'design only',
        outputUri: fileUri(dir),
        policy: { kind: 'scripted', seed: 0, actionStdMeters: 0, formatErrorRate: 0, wrongSubtaskRate: 0 },
        verifier: { kind: 'oracle' },
        stations: ['sim-1'],
        design: { tasks: ['pick_up', 'multilingual'], preset: 'figure5-paper', trialsPerTask: { multilingual: 4 }, seed: 5 },
        outcomes: [],
      });
      const summary = await getJson(store, written.summaryUri, CampaignSummaryFile);
      expect(summary.design?.tasks.map((t) => [t.taskId, t.trials, t.from, t.languages])).toEqual([
        ['pick_up', 30, 'preset', null],
        ['multilingual', 4, 'trialsPerTask', { es: 2, zh: 1, hi: 1 }],
      ]);
      expect(summary.design?.totalTrials).toBe(34);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the design schema refuses a design whose counts do not add up, naming the field', () => {
    const design = campaignTrialDesign(parse({ tasks: ['pick_up', 'multilingual'], trials: 3 }));
    const issues = (value: unknown): string => {
      const r = CampaignTrialDesign.safeParse(value);
      return r.success ? '' : formatZodIssues(r.error).join('\n');
    };
    expect(issues(design)).toBe('');
    expect(issues({ ...design, totalTrials: 7 })).toMatch(/totalTrials: totalTrials is 7 but the tasks' trials add up to 6/);
    expect(issues({ ...design, tasks: [design.tasks[0], { ...design.tasks[1], languages: { es: 1, zh: 1 } }] })).toMatch(/tasks\[1\]\.languages: the languages of "multilingual" add up to 2 trials, not 3/);
    expect(issues({ ...design, tasks: [{ ...design.tasks[0], from: 'guess' }, design.tasks[1]] })).toMatch(/tasks\[0\]\.from/);
    expect(issues({ ...design, tasks: [{ ...design.tasks[0], languages: { fr: 3 } }, design.tasks[1]] })).toMatch(/tasks\[0\]\.languages/);
  });
});
