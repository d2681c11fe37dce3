/**
 * Assembling a D_lan record from a labeler's segments: checks the segmentation, cuts the action
 * chunks out of the cleaned trajectory (never the labeler's numbers), adds the auxiliary labels and
 * validates the result against the D_lan schema.
 */
import { D_LAN_FORMAT_VERSION, DLanRecord, type DLanStep, type Labeler, type ChunkAction } from '../../data-schemas/d-lan';
import type { Camera, DRobTrajectory } from '../../data-schemas/d-rob';
import type { ChunkAggregation, CleanedTrajectory, SegmentLabel } from '../../data-schemas/relabel';
import { describeZodIssues } from '../../data-schemas/issues';
import { auxiliaryLabels } from './auxiliary';
import { aggregateChunk } from './postprocess';

/** Capitalised: it opens the sentences it is used in. */
const range = (a: number, b: number): string => (b - a <= 1 ? `Step ${a}` : `Steps ${a} to ${b - 1}`);

/**
 * Problems with a segmentation of a trajectory of `steps` source steps, each a sentence a model can
 * act on in a re-prompt; an empty array means valid. Segments must be [start, end) ranges (end
 * exclusive) of whole step numbers, in order, non-empty, contiguous, covering 0 to steps - 1, with a
 * non-blank subtask and motion plan. Segment numbers in the sentences are 0-based list positions.
 */
export function validateSegments(segments: readonly SegmentLabel[], steps: number): string[] {
  if (!Number.isInteger(steps) || steps < 1) return [`The trajectory has ${steps} steps; a segmentation needs at least one step.`];
  if (segments.length === 0) {
    return [`No segments were given: cover source steps 0 to ${steps - 1} with contiguous [start, end) ranges (end exclusive).`];
  }
  const problems: string[] = [];
  const usable: { i: number; start: number; end: number }[] = [];
  segments.forEach((s, i) => {
    const where = `Segment ${i} (start ${s.start}, end ${s.end})`;
    if (!Number.isInteger(s.start) || !Number.isInteger(s.end)) {
      problems.push(`${where} must use whole step numbers for start and end.`);
      return;
    }
    if (s.start < 0) problems.push(`${where} starts before step 0; the first segment must start at 0.`);
    if (s.end > steps) problems.push(`${where} ends past the trajectory's ${steps} steps; end is exclusive, so the last segment must end at exactly ${steps}.`);
    if (s.end <= s.start) problems.push(`${where} is empty or reversed; end is exclusive and must be greater than start.`);
    if (typeof s.subtask !== 'string' || s.subtask.trim() === '') problems.push(`Segment ${i} has an empty subtask; give it a short imperative subtask such as "Move to carrot".`);
    if (typeof s.motionPlan !== 'string' || s.motionPlan.trim() === '') problems.push(`Segment ${i} has an empty motion plan; describe its motion and gripper state.`);
    usable.push({ i, start: s.start, end: s.end });
  });
  for (let k = 1; k < usable.length; k++) {
    const prev = usable[k - 1] as (typeof usable)[number];
    const cur = usable[k] as (typeof usable)[number];
    if (cur.start < prev.start) {
      problems.push(`Segment ${cur.i} (start ${cur.start}) is listed after segment ${prev.i} (start ${prev.start}); list segments in order of their start step.`);
    }
  }
  // Coverage is checked in start order, so one misplaced segment does not read as many gaps.
  const sorted = [...usable].sort((a, b) => a.start - b.start || a.i - b.i);
  const first = sorted[0];
  const last = sorted[sorted.length - 1];
  if (first && first.start > 0) problems.push(`${range(0, first.start)} ${first.start === 1 ? 'is' : 'are'} not covered: the first segment must start at step 0.`);
  for (let k = 1; k < sorted.length; k++) {
    const prev = sorted[k - 1] as (typeof sorted)[number];
    const cur = sorted[k] as (typeof sorted)[number];
    if (cur.start > prev.end) {
      problems.push(
        `${range(prev.end, cur.start)} ${cur.start - prev.end === 1 ? 'is' : 'are'} not covered between segment ${prev.i} (ends at ${prev.end}) and segment ${cur.i} (starts at ${cur.start}); each segment must start where the previous one ends.`,
      );
    } else if (cur.start < prev.end) {
      problems.push(
        `Segment ${cur.i} (start ${cur.start}) overlaps segment ${prev.i}, which ends at ${prev.end}; each segment must start exactly where the previous one ends.`,
      );
    }
  }
  const end = Math.max(...sorted.map((s) => s.end));
  if (last && end < steps) problems.push(`${range(end, steps)} ${steps - end === 1 ? 'is' : 'are'} not covered: the last segment must end at ${steps} (end is exclusive).`);
  return problems;
}

export interface BuildDLanRecordArgs {
  trajectory: DRobTrajectory;
  cleaned: CleanedTrajectory;
  segments: readonly SegmentLabel[];
  labeler: Labeler;
  /** Root of the D_rob dataset the trajectory was read from; key frames are relative to it. */
  sourceDataset: string;
  sourceRecord: string;
  sourceRecordSha256: string;
  labeledAt: string;
  aggregation: ChunkAggregation;
  /** Camera of the key frames; by default image_0, else the trajectory's first camera. */
  keyFrameCamera?: Camera;
}

function keyFrame(t: DRobTrajectory, step: number, requested: Camera | undefined): string {
  const frames = (t.steps[step] as DRobTrajectory['steps'][number]).frames;
  if (requested !== undefined) {
    const path = frames[requested];
    if (path === undefined) throw new Error(`trajectory ${t.id}: steps[${step}].frames has no ${requested} frame for the requested key-frame camera`);
    return path;
  }
  const preferred: Camera[] = [...(t.cameras.includes('image_0') ? (['image_0'] as Camera[]) : []), ...t.cameras];
  for (const camera of preferred) {
    const path = frames[camera];
    if (path !== undefined) return path;
  }
  throw new Error(`trajectory ${t.id}: steps[${step}].frames has no frame of any camera`);
}

/**
 * Builds and validates the D_lan record of one trajectory.
 *
 * Per segment: key frame = the frame at source step `start` (see `keyFrameCamera`), kept as the D_rob
 * path, so D_lan key frames are relative to `provenance.sourceDataset` (frames are not copied);
 * action chunk = `aggregateChunk` of [dx, dy, dz, gripper] of the cleaned steps in [start, end),
 * with the previous step's gripper as context so a transition on the first step is isolated too;
 * sourceSteps = [start, end). Then auxiliary labels (see `auxiliaryLabels`).
 *
 * @throws Error naming the trajectory and the field when the segments are invalid, the cleaned
 * trajectory does not match, a key frame is missing or the record fails the D_lan schema.
 */
export function buildDLanRecord(args: BuildDLanRecordArgs): DLanRecord {
  const { trajectory: t, cleaned, segments } = args;
  const n = t.steps.length;
  if (cleaned.steps !== n || cleaned.translation.length !== n || cleaned.gripper.length !== n) {
    throw new Error(
      `trajectory ${t.id}: cleaned trajectory has ${cleaned.steps} steps (${cleaned.translation.length} translations, ${cleaned.gripper.length} gripper values), the trajectory ${n}`,
    );
  }
  const problems = validateSegments(segments, n);
  if (problems.length > 0) throw new Error(`trajectory ${t.id}: segments: ${problems.join(' ')}`);

  const steps: DLanStep[] = segments.map((s, index) => {
    const actions: ChunkAction[] = [];
    for (let k = s.start; k < s.end; k++) {
      const [dx, dy, dz] = cleaned.translation[k] as [number, number, number];
      actions.push([dx, dy, dz, cleaned.gripper[k] as 0 | 1]);
    }
    const previousGripper = s.start > 0 ? cleaned.gripper[s.start - 1] : undefined;
    return {
      index,
      keyFrame: keyFrame(t, s.start, args.keyFrameCamera),
      sourceSteps: [s.start, s.end],
      subtask: s.subtask,
      motionPlan: s.motionPlan,
      actionChunk: aggregateChunk(actions, args.aggregation, previousGripper === undefined ? {} : { previousGripper }),
    };
  });

  const parsed = DLanRecord.safeParse({
    formatVersion: D_LAN_FORMAT_VERSION,
    trajectoryId: t.id,
    instruction: t.instruction,
    steps,
    auxiliary: auxiliaryLabels(segments, cleaned),
    labeler: args.labeler,
    provenance: {
      sourceDataset: args.sourceDataset,
      sourceRecord: args.sourceRecord,
      sourceRecordSha256: args.sourceRecordSha256,
      labeledAt: args.labeledAt,
    },
  });
  if (!parsed.success) {
    const detail = describeZodIssues(parsed.error, { root: '(record)' });
    throw new Error(`trajectory ${t.id}: D_lan record is invalid: ${detail}`);
  }
  return parsed.data;
}
