import { boundedWorkflowId } from './bounded';

/**
 * Every workflow id the project derives, in one format: `<kind>:<part>:<part>…`, where kind is the
 * workflow type in kebab case and the parts come from the input (usually the output URI), bounded
 * to the server's limit (a long one keeps a readable prefix and a hash of the whole). Ids derive
 * from what a run writes, so a second start of the same work finds the first (Temporal refuses a
 * duplicate id) and a re-run after a failure reuses its children's results.
 * Node-free: workflows import this module.
 */

/** The workflow types an id names, in kebab case. */
export type WorkflowKind =
  | 'store-smoke'
  | 'relabel-dataset'
  | 'relabel-trajectory'
  | 'shard-dataset'
  | 'train-lora'
  | 'vqa-sweep'
  | 'vqa-evaluate'
  | 'nightly-evaluation'
  | 'robot-episode'
  | 'eval-campaign'
  | 'experiment';

export function workflowIdOf(kind: WorkflowKind, ...parts: string[]): string {
  return boundedWorkflowId([kind, ...parts].join(':'));
}

export const WorkflowIds = {
  storeSmoke: (name: string) => workflowIdOf('store-smoke', name),
  /** A relabel of one dataset by one labeler version (into its default output unless one is given). */
  relabelDataset: (datasetUri: string, labelerKey: string, outputUri?: string) =>
    outputUri === undefined ? workflowIdOf('relabel-dataset', datasetUri, labelerKey) : workflowIdOf('relabel-dataset', datasetUri, labelerKey, outputUri),
  /**
   * One trajectory of a relabel, from (output root, labeler version, trajectory): a re-run finds what
   * is done, and two runs writing to different outputs never skip each other's trajectories.
   */
  relabelTrajectory: (outputUri: string, labelerKey: string, trajectoryId: string) => workflowIdOf('relabel-trajectory', outputUri, labelerKey, trajectoryId),
  shardDataset: (outputUri: string) => workflowIdOf('shard-dataset', outputUri),
  trainLora: (outputUri: string) => workflowIdOf('train-lora', outputUri),
  vqaSweep: (outputUri: string) => workflowIdOf('vqa-sweep', outputUri),
  vqaEvaluate: (outputUri: string, model: string, benchmark: string) => workflowIdOf('vqa-evaluate', outputUri, model, benchmark),
  /** The nightly Schedule's workflow id (the server appends the start time to each run's). */
  nightlyEvaluation: () => workflowIdOf('nightly-evaluation'),
  robotEpisode: (outputUri: string) => workflowIdOf('robot-episode', outputUri),
  /** An episode of a campaign: the campaign's id and the trial's key (`<task>-t<trial>`). */
  campaignEpisode: (campaignWorkflowId: string, trialKey: string) => workflowIdOf('robot-episode', campaignWorkflowId, trialKey),
  evalCampaign: (outputUri: string) => workflowIdOf('eval-campaign', outputUri),
  /** An experiment, by its name: a start while one runs finds it (`vla experiment` follows it); a finished one may run again and reuses every stage. */
  experiment: (name: string) => workflowIdOf('experiment', name),
  /**
   * The one lock workflow per station. The only id outside the format, on purpose: old and new
   * episodes must find the same lock during a rolling upgrade, or two could drive one arm.
   */
  stationLock: (stationId: string) => boundedWorkflowId(`station-lock-${stationId}`),
} as const;

/**
 * The patch (`patched()`) under which workflows derive their children's ids with `WorkflowIds`:
 * histories recorded before it keep the ids they started their children with.
 */
export const WORKFLOW_ID_FORMAT_PATCH = 'one-workflow-id-format';

/** Children's ids of histories recorded before `WORKFLOW_ID_FORMAT_PATCH`. */
export const LegacyWorkflowIds = {
  relabelTrajectory: (outputUri: string, labelerKey: string, trajectoryId: string) => boundedWorkflowId(`relabel:${outputUri}:${labelerKey}:${trajectoryId}`),
  nightlySweep: (outputUri: string) => boundedWorkflowId(`nightly-sweep:${outputUri}`),
  campaignEpisode: (campaignWorkflowId: string, trialKey: string) => boundedWorkflowId(`${campaignWorkflowId}-${trialKey}`),
} as const;
