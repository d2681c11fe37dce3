import { LegacyWorkflowIds, WORKFLOW_ID_FORMAT_PATCH, WorkflowIds } from '../../data-schemas/workflow-ids';
import { defineQuery, executeChild, patched, setHandler, workflowInfo } from '@temporalio/workflow';
import { workflowQueue } from '../../data-schemas/activity-contract';
import { CampaignActivities, EvalCampaignInput, RobotPresets, type CampaignTrial, type EvalCampaignResult, type RobotEpisodeInputRaw, type TrialOutcome } from '../../data-schemas/robot';
import { joinUri } from '../../data-schemas/uri';
import { TaskQueue } from '../../data-schemas/workflows';
import { rootCause } from '../failure-cause';
import { proxyFor } from '../activity-proxy';
import { parseWorkflowInput } from '../input';
import { watchTaskQueue, type QueueWatchState } from '../queue-watch';
import { robotEpisode } from './robot-episode';

export interface CampaignProgress {
  total: number;
  done: number;
  /** The episode each station is running now. */
  running: Record<string, string>;
  failed: number;
  /** Station task queues no worker polls (a misspelled station id, a station that is down): their episodes wait. */
  waitingOn?: string[];
}
export const campaignProgressQuery = defineQuery<CampaignProgress>('progress');

const cpu = proxyFor(CampaignActivities, workflowQueue('cpu'), RobotPresets.campaign);

/** `<task>-t<trial:03d>`: the episode's folder and workflow-id suffix. */
export const trialKey = (t: Pick<CampaignTrial, 'taskId' | 'trial'>): string => `${t.taskId}-t${String(t.trial).padStart(3, '0')}`;

/**
 * An evaluation campaign (docs/robot-episodes.md): the Figure-5 task suite x trials, spread over stations, each
 * station running its episodes one after another (and the station lock keeps other campaigns'
 * episodes off the arm meanwhile). Ends with summary.json and report.html: success with a 95%
 * Wilson interval, partial credit, plan hit rate, latency per stage, filmstrips.
 */
export async function evalCampaign(raw: unknown): Promise<EvalCampaignResult> {
  const input = parseWorkflowInput('evalCampaign', EvalCampaignInput, raw);
  const { workflowId } = workflowInfo();
  const episodeIdOf = patched(WORKFLOW_ID_FORMAT_PATCH) ? WorkflowIds.campaignEpisode : LegacyWorkflowIds.campaignEpisode;
  const design = { tasks: input.tasks, trials: input.trials, preset: input.preset, trialsPerTask: input.trialsPerTask, seed: input.seed };
  const trials = await cpu.planCampaign(design);
  const progress: CampaignProgress = { total: trials.length, done: 0, running: {}, failed: 0 };
  const queues: QueueWatchState = { waitingOn: [] };
  setHandler(campaignProgressQuery, () => ({ ...progress, ...(queues.waitingOn.length > 0 && { waitingOn: queues.waitingOn }) }));

  // Episodes wait for their station however long it takes; the watch only says which station no
  // worker serves. Campaigns recorded before it replay without it (no marker in their histories).
  let episodesSettled = false;
  const stationWatch = patched('campaign-station-watch')
    ? Promise.all(
        input.stations.map((stationId) =>
          watchTaskQueue(
            { queue: TaskQueue.station(stationId), role: 'workflow' },
            { firstCheckAfterMs: input.noWorkerWarningSeconds * 1000, done: () => episodesSettled, state: queues },
          ),
        ),
      )
    : Promise.resolve([]);

  const queue = [...trials];
  const outcomes: TrialOutcome[] = [];
  await Promise.all(
    input.stations.map(async (stationId) => {
      for (let t = queue.shift(); t !== undefined; t = queue.shift()) {
        const key = trialKey(t);
        const episodeWorkflowId = episodeIdOf(workflowId, key);
        const outputUri = joinUri(input.outputUri, 'episodes', key);
        const episode: RobotEpisodeInputRaw = {
          stationId,
          instruction: t.instruction,
          scene: t.scene,
          seed: t.seed,
          inDistribution: t.inDistribution,
          policy: input.policy,
          verifier: input.verifier,
          limits: input.limits,
          outputUri,
          labels: { campaign: workflowId, task: t.taskId, trial: String(t.trial), ...(t.language !== undefined && { language: t.language }) },
        };
        progress.running[stationId] = episodeWorkflowId;
        try {
          // The episode runs on its station's worker, next to the arm.
          await executeChild(robotEpisode, { workflowId: episodeWorkflowId, taskQueue: TaskQueue.station(stationId), args: [episode] });
          outcomes.push({ trial: t, stationId, workflowId: episodeWorkflowId, outputUri, error: null });
        } catch (err) {
          // A failed episode is a result too (it is counted, not retried): the report shows why.
          progress.failed++;
          outcomes.push({ trial: t, stationId, workflowId: episodeWorkflowId, outputUri, error: rootCause(err) });
        }
        delete progress.running[stationId];
        progress.done++;
      }
    }),
  );
  episodesSettled = true;
  await stationWatch;
  outcomes.sort((a, b) => trialKey(a.trial).localeCompare(trialKey(b.trial)));
  return cpu.writeCampaignReport({
    campaignId: workflowId,
    title: input.title,
    outputUri: input.outputUri,
    policy: input.policy,
    verifier: input.verifier,
    stations: input.stations,
    design,
    outcomes,
  });
}
