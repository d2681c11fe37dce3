import type { Action7, DRobStep, DRobTrajectory } from '../../../data-schemas/d-rob';
import { BRIDGE_CONTROL_HZ, D_ROB_FORMAT_VERSION } from '../../../data-schemas/d-rob';
import { D_LAN_FORMAT_VERSION, type DLanRecord, type DLanStep } from '../../../data-schemas/d-lan';
import { POLICY_PROMPT_VERSION } from '../../../data-schemas/prompts';
import type { CycleRecord, EpisodeRecord, ObservationRef } from '../../../data-schemas/robot';
import { dominantDirection } from '../../relabel/auxiliary';
import { framePath, trajectoryRecordPath } from '../../data/dataset-writer';

/**
 * An episode as training data (docs/robot-episodes.md: recorded in the D_rob/D_lan schemas, so an episode can be
 * relabeled and trained on like teleoperation data):
 * - D_rob: one step per arm step seen (the reset, then each executed action's observation), the
 *   action the commanded [dx, dy, dz] and gripper; steps the episode never saw the end of (a worker
 *   killed mid-chunk) take the measured state difference, as Bridge's own cleaning does.
 * - D_lan: one language step per executed cycle: its key frame, subtask, motion plan and the
 *   executed part of its chunk, labeled 'policy'; completion tuples from verified subtasks.
 */

export const episodeTrajectoryId = (episodeId: string): string => `ep-${episodeId}`.slice(0, 128);

export interface EpisodeDRob {
  trajectory: DRobTrajectory;
  /** Staged frame URI of each D_rob step, by step index. */
  frameUris: string[];
  /** D_rob step index of each arm step seen. */
  indexOfArmStep: Map<number, number>;
}

/** Every observation the episode saw, one per arm step (the latest wins), in step order. */
function observationsByStep(record: EpisodeRecord): ObservationRef[] {
  const byStep = new Map<number, ObservationRef>();
  const add = (o: ObservationRef | null): void => {
    if (o) byStep.set(o.step, o);
  };
  add(record.reset);
  for (const c of record.cycles) {
    add(c.before);
    c.trace.forEach(add);
    add(c.after);
  }
  return [...byStep.values()].sort((a, b) => a.step - b.step);
}

/** The commanded action at each arm step, from the chunks that ran. */
function commandedActions(cycles: readonly CycleRecord[]): Map<number, readonly number[]> {
  const byStep = new Map<number, readonly number[]>();
  for (const c of cycles) {
    if (!c.chunk || c.executed === 0 || c.trace.length === 0) continue;
    c.chunk.slice(0, c.executed).forEach((a, i) => byStep.set(c.before.step + i, a));
  }
  return byStep;
}

export function buildEpisodeDRob(record: EpisodeRecord): EpisodeDRob | null {
  const observations = observationsByStep(record);
  if (observations.length === 0) return null;
  const id = episodeTrajectoryId(record.episodeId);
  const commanded = commandedActions(record.cycles);
  const last = observations.length - 1;
  const steps = observations.map((o, i): DRobStep => {
    const next = observations[i + 1];
    let action: Action7 = [0, 0, 0, 0, 0, 0, o.state[6]];
    const cmd = next && next.step === o.step + 1 ? commanded.get(o.step) : undefined;
    if (cmd) action = [cmd[0] ?? 0, cmd[1] ?? 0, cmd[2] ?? 0, 0, 0, 0, cmd[3] ?? o.state[6]];
    else if (next) action = [next.state[0] - o.state[0], next.state[1] - o.state[1], next.state[2] - o.state[2], 0, 0, 0, next.state[6]];
    return { index: i, frames: { image_0: framePath(id, 'image_0', i) }, state: o.state, action, isFirst: i === 0, isLast: i === last, isTerminal: i === last && record.outcome === 'completed' };
  });
  const trajectory: DRobTrajectory = {
    formatVersion: D_ROB_FORMAT_VERSION,
    id,
    instruction: record.input.instruction,
    robot: record.stationId,
    controlHz: BRIDGE_CONTROL_HZ,
    cameras: ['image_0'],
    steps,
    source: { kind: 'robot_episode', station: record.stationId, workflowId: record.workflowId, runId: record.runId },
  };
  return { trajectory, frameUris: observations.map((o) => o.frameUri), indexOfArmStep: new Map(observations.map((o, i) => [o.step, i])) };
}

export function buildEpisodeDLan(
  record: EpisodeRecord,
  dRob: EpisodeDRob,
  provenance: { sourceDataset: string; sourceRecordSha256: string },
): DLanRecord | null {
  const id = dRob.trajectory.id;
  const steps: DLanStep[] = [];
  const proceededAt: { subtask: string; fromStep: number; toStep: number }[] = [];
  let runStart: number | undefined;
  for (const c of record.cycles) {
    if (!c.chunk || c.executed === 0 || !c.after || c.motionPlan === null) continue;
    const plan = c.motionPlan.attempts.find((a) => a.error === null);
    const from = dRob.indexOfArmStep.get(c.before.step);
    const to = dRob.indexOfArmStep.get(c.after.step);
    if (!plan || from === undefined || to === undefined || to <= from) continue;
    const motionPlan = plan.raw.trim();
    const index = steps.length;
    steps.push({ index, keyFrame: framePath(id, 'image_0', from), sourceSteps: [from, to], subtask: c.subtask, motionPlan, actionChunk: c.chunk.slice(0, c.executed) });
    runStart ??= index;
    if (c.verdict.decision === 'proceed') {
      proceededAt.push({ subtask: c.subtask, fromStep: runStart, toStep: index + 1 });
      runStart = undefined;
    }
  }
  if (steps.length === 0) return null;
  const states = dRob.trajectory.steps.map((s) => s.state);
  const directions = states.map((s, i) => {
    const next = states[i + 1] ?? s;
    return { sourceStep: i, direction: dominantDirection([next[0] - s[0], next[1] - s[1], next[2] - s[2]]) };
  });
  return {
    formatVersion: D_LAN_FORMAT_VERSION,
    trajectoryId: id,
    instruction: record.input.instruction,
    steps,
    auxiliary: { subtaskCompletion: proceededAt, directions },
    labeler: { name: 'policy', version: 'v1', ...(record.input.policy.kind === 'model' && { model: record.input.policy.model.name }), promptVersion: POLICY_PROMPT_VERSION },
    provenance: { sourceDataset: provenance.sourceDataset, sourceRecord: trajectoryRecordPath(id), sourceRecordSha256: provenance.sourceRecordSha256, labeledAt: record.finishedAt },
  };
}
