import { ApplicationFailure } from '@temporalio/activity';
import { implement } from '../../../data-schemas/activity-contract';
import {
  CAMPAIGN_REPORT_FILE,
  CAMPAIGN_SUMMARY_FILE,
  CampaignActivities,
  CampaignSummaryFile,
  EPISODE_RECORD_FILE,
  EpisodeRecord,
  RobotFailure,
  type CampaignTrial,
  type CampaignTrialDesign,
  type EvalCampaignResult,
  type TrialOutcome,
} from '../../../data-schemas/robot';
import { joinUri, relativeTo } from '../../../data-schemas/uri';
import { classified } from '../../failures';
import { getJsonIfExists, putJson } from '../../store';
import type { ObjectStore } from '../../store/types';
import { resolveTask } from '../sim/tasks';
import { simScene } from '../station/sim';
import { summarizeCampaign, type CampaignEpisodeSummary, type FilmstripFrame } from './metrics';
import { planHit } from './plan-hit';
import { renderCampaignReportHtml } from './report';
import { campaignTrialDesign, paperFigure5Rows, suiteInstruction, suiteTask, type CampaignDesignInput } from './suite';

export type { CampaignTrial, TrialOutcome };

/** The trial design, or a non-retryable InvalidCampaign failure naming what is wrong. */
function designOf(input: CampaignDesignInput): CampaignTrialDesign {
  try {
    return campaignTrialDesign(input);
  } catch (err) {
    throw ApplicationFailure.nonRetryable((err as Error).message, RobotFailure.InvalidCampaign);
  }
}

export { CAMPAIGN_REPORT_FILE, CAMPAIGN_SUMMARY_FILE };
/** Frames per filmstrip: the start, then the end of each cycle, the latest kept. */
const FILMSTRIP_FRAMES = 16;

/** An episode's record condensed for the statistics and the page. */
export function summarizeEpisode(o: TrialOutcome, record: EpisodeRecord | undefined, reportUri: string): CampaignEpisodeSummary {
  const base = { episodeId: record?.episodeId ?? o.workflowId, workflowId: o.workflowId, stationId: o.stationId, taskId: o.trial.taskId, taskName: o.trial.taskName, instruction: o.trial.instruction, trial: o.trial.trial, ...(o.trial.language !== undefined && { language: o.trial.language }) };
  if (!record) {
    return { ...base, outcome: 'error', success: false, score: 0, maxScore: 1, planHit: null, subtasks: [], cycles: 0, chunks: 0, formatFailures: 0, repairs: 0, latenciesMs: [], filmstrip: [], error: o.error ?? 'the episode left no record' };
  }
  const stages = [record.subtasksStage, ...record.cycles.flatMap((c) => [c.motionPlan, c.action])].flatMap((s) => (s ? [s] : []));
  const task = resolveTask(o.trial.scene);
  const link = (uri: string): string => relativeTo(reportUri.slice(0, reportUri.lastIndexOf('/')), uri) ?? uri;
  const frames: FilmstripFrame[] = [];
  if (record.reset) frames.push({ frameUri: link(record.reset.frameUri), cycle: 0, subtask: 'start', verdict: null, reason: null });
  for (const c of record.cycles) {
    const shown = c.after ?? c.before;
    frames.push({ frameUri: link(shown.frameUri), cycle: c.cycle, subtask: c.subtask, verdict: c.verdict.decision, reason: c.verdict.reason });
  }
  const filmstrip = frames.length > FILMSTRIP_FRAMES ? [frames[0] as FilmstripFrame, ...frames.slice(frames.length - FILMSTRIP_FRAMES + 1)] : frames;
  return {
    ...base,
    outcome: record.outcome,
    success: record.evaluation?.success ?? false,
    score: record.evaluation?.score ?? 0,
    maxScore: record.evaluation?.maxScore ?? 1,
    // A plan that never came (malformed) misses; the "item above" task needs the scene to know its object.
    planHit: record.subtasks.length === 0 ? false : planHit(record.subtasks, task, simScene(task, o.trial.seed)).hit,
    subtasks: record.subtasks,
    cycles: record.cycles.length,
    chunks: record.cycles.filter((c) => c.action !== null).length,
    formatFailures: stages.reduce((n, s) => n + s.attempts.filter((a) => a.error !== null).length, 0),
    repairs: stages.reduce((n, s) => n + s.attempts.length - 1, 0),
    latenciesMs: [
      ...(record.subtasksStage ? [{ stage: 'subtasks' as const, ms: record.subtasksStage.latencyMs }] : []),
      ...record.cycles.flatMap((c) => c.latencies),
    ],
    filmstrip,
    ...(record.outcome === 'error' && { error: record.reason }),
  };
}

export function createCampaignActivities(deps: { store: ObjectStore }) {
  const { store } = deps;
  return implement(CampaignActivities, 'cpu', {
    /**
     * The trials of a campaign (`campaignTrialDesign` says how many per task): each task's
     * instructions in turn (languages for the multilingual row), scene seeds seed + trial.
     */
    planCampaign: (input): Promise<CampaignTrial[]> => {
      const plan: CampaignTrial[] = [];
      for (const { taskId, trials } of designOf(input).tasks) {
        const task = suiteTask(taskId);
        for (let trial = 0; trial < trials; trial++) {
          const instruction = suiteInstruction(task, trial);
          plan.push({
            taskId: task.id,
            taskName: task.name,
            trial,
            instruction: instruction.text,
            ...(instruction.lang !== 'en' && { language: instruction.lang }),
            scene: task.scene,
            seed: input.seed + trial,
            inDistribution: task.inDistribution,
          });
        }
      }
      return Promise.resolve(plan);
    },

    /** summary.json and report.html (Figure-5 table, statistics, filmstrips) from the episodes' records. */
    writeCampaignReport: classified(
      async (input): Promise<EvalCampaignResult> => {
        const reportUri = joinUri(input.outputUri, CAMPAIGN_REPORT_FILE);
        const summaryUri = joinUri(input.outputUri, CAMPAIGN_SUMMARY_FILE);
        const episodes = await Promise.all(
          input.outcomes.map(async (o) => summarizeEpisode(o, await getJsonIfExists(store, joinUri(o.outputUri, EPISODE_RECORD_FILE), EpisodeRecord), reportUri)),
        );
        const summary = summarizeCampaign(episodes);
        const design = input.design === undefined ? null : designOf(input.design);
        const paper = paperFigure5Rows();
        const describePolicy =
          input.policy.kind === 'scripted'
            ? `scripted (seed ${input.policy.seed}, action noise ${input.policy.actionStdMeters} m, format errors ${input.policy.formatErrorRate})`
            : `${input.policy.model.name} (${input.policy.model.backend}${input.policy.structuredDecoding ? ', structured decoding' : ''})`;
        const describeVerifier = input.verifier.kind === 'gemini' ? `gemini:${input.verifier.model}` : input.verifier.kind;
        const html = renderCampaignReportHtml({
          title: input.title,
          campaignId: input.campaignId,
          createdAt: new Date().toISOString(),
          policy: describePolicy,
          verifier: describeVerifier,
          stations: input.stations,
          design,
          summary,
          episodes,
          paper,
        });
        // The design is checked against its published shape before it is written (its totals add up).
        await putJson(store, summaryUri, CampaignSummaryFile.parse({ campaignId: input.campaignId, design, summary, episodes }));
        await store.put(reportUri, html, { contentType: 'text/html; charset=utf-8' });
        return {
          campaignId: input.campaignId,
          episodes: episodes.length,
          reportUri,
          summaryUri,
          successRate: Object.fromEntries(summary.tasks.map((t) => [t.taskId, Math.round(t.success.rate * 1000) / 10])),
        };
      },
    ),
  });
}
