/**
 * The pure part of planning `shardDataset`: sample keys, the split and shard assignment by content
 * hash, the samples of one D_lan record, tar size estimates, the shards of a plan. No I/O: the
 * activities (./activities.ts, ./planning.ts) and the tests import these. The plan file's schema
 * is `ShardPlanFile` in data-schemas/shard.ts.
 */
import { createHash } from 'node:crypto';
import { subtaskRuns, type DLanRecord } from '../../data-schemas/d-lan';
import { actionPrompt, directionPrompt, formatActionChunk, formatDirections, formatSubtaskList, motionPlanPrompt, subtasksPrompt } from '../../data-schemas/prompts';
import { ShardSample, samePlanKey, type PlannedTrajectory, type ShardPlanKey, type ShardStage, type Split } from '../../data-schemas/shard';
import { describeZodIssues } from '../../data-schemas/issues';

/** Stage order inside a trajectory's run of samples. */
export const STAGE_ORDER: readonly ShardStage[] = ['subtasks', 'motion_plan', 'action', 'direction'];

const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

/**
 * WebDataset key of one sample: `<id with "." as "_">__<8 hex of sha256(id)>__<stage>__<step:03d>`.
 * WebDataset cuts the key at the first dot, so keys have none; the hash of the raw id keeps ids that
 * differ only in "." vs "_" apart, and the fixed-format suffix keeps (id, stage, step) unique.
 */
export function sampleKey(trajectoryId: string, stage: ShardStage, step: number): string {
  return sampleKeyPrefix(trajectoryId) + sampleKeyTail(stage, step);
}

const sampleKeyTail = (stage: ShardStage, step: number): string => `${stage}__${String(step).padStart(3, '0')}`;

/** What every sample key of a trajectory starts with: `<id with "." as "_">__<8 hex of sha256(id)>__`. */
function sampleKeyPrefix(trajectoryId: string): string {
  return `${trajectoryId.replace(/[^A-Za-z0-9_-]/g, '_')}__${sha256(trajectoryId).slice(0, 8)}__`;
}

/**
 * sha256 of `${seed}:${contentSha256}`: the only input to a trajectory's split and shard. It hashes
 * the recording's content hash (trajectoryContentSha256 in activities/data/dataset-writer.ts), not
 * the id: copies of one episode under different ids land in the same split and shard, so no episode
 * is ever on both sides of the split.
 */
export function trajectoryHash(contentSha256: string, seed: number): string {
  return sha256(`${seed}:${contentSha256}`);
}

/** Validation when the hash's first 8 hex digits, as a uint32 / 2^32, fall below the fraction. */
export function splitOf(contentSha256: string, seed: number, validationFraction: number): Split {
  const u = Number.parseInt(trajectoryHash(contentSha256, seed).slice(0, 8), 16) / 2 ** 32;
  return u < validationFraction ? 'validation' : 'train';
}

/** The shard within its split: the hash's next 8 hex digits mod the split's shard count. */
export function shardOf(contentSha256: string, seed: number, numShards: number): number {
  return Number.parseInt(trajectoryHash(contentSha256, seed).slice(8, 16), 16) % numShards;
}

/** max(1, ceil(estimatedBytes / targetShardBytes)). */
export function shardCount(estimatedBytes: number, targetShardBytes: number): number {
  return Math.max(1, Math.ceil(estimatedBytes / targetShardBytes));
}

/** The image's extension inside the tar, from the key frame's path. */
export function imageExtension(path: string): 'jpg' | 'png' | undefined {
  const ext = path.slice(path.lastIndexOf('.') + 1).toLowerCase();
  if (ext === 'jpg' || ext === 'jpeg') return 'jpg';
  if (ext === 'png') return 'png';
  return undefined;
}

/** One sample with where its image comes from (relative to the record's D_rob dataset). */
export interface BuiltSample {
  sample: ShardSample;
  /** `<key>.json` contents. */
  json: Buffer;
  framePath: string;
}

/**
 * The samples of one D_lan record, in tar order: `subtasks` (o_0, the subtask list: every l_i,
 * consecutive repeats once, see `subtaskRuns`), then a `motion_plan` (o_i, l_i -> m_i) and an
 * `action` (o_i, l_i, m_i -> a_i) per step, and with `directionLabels` a `direction` (o_i, l_i ->
 * the direction label of each source step in sourceSteps) per step, each stage in step order:
 * 1 + 2N samples, or 1 + 3N with direction labels. Every sample is validated against ShardSample
 * unless `validate` is false (the shard writer, whose records were validated when planning and are
 * checked by sha256).
 * @throws Error naming the trajectory when a key frame is neither jpg nor png, a source step has no
 * direction label, or a sample is invalid
 */
export function buildSamples(record: DLanRecord, options: { validate?: boolean; directionLabels?: boolean } = {}): BuiltSample[] {
  const validate = options.validate ?? true;
  const out: BuiltSample[] = [];
  // One sha256 per trajectory, not per sample: sampleKey() with the prefix computed once.
  const keyPrefix = sampleKeyPrefix(record.trajectoryId);
  const add = (stage: ShardStage, step: number, framePath: string, prompt: string, target: string): void => {
    const image = imageExtension(framePath);
    if (image === undefined) throw new Error(`trajectory ${record.trajectoryId}: key frame ${framePath} is neither .jpg nor .png`);
    // Built in the schema's key order and serialized as built: the bytes do not depend on `validate`.
    const sample: ShardSample = {
      key: keyPrefix + sampleKeyTail(stage, step),
      trajectoryId: record.trajectoryId,
      stage,
      step,
      image,
      messages: [
        { role: 'user', content: [{ type: 'image' }, { type: 'text', text: prompt }] },
        { role: 'assistant', content: [{ type: 'text', text: target }] },
      ],
    };
    if (validate) {
      const parsed = ShardSample.safeParse(sample);
      if (!parsed.success) {
        throw new Error(`trajectory ${record.trajectoryId}: ${stage} sample of step ${step}: ${describeZodIssues(parsed.error)}`);
      }
    }
    out.push({ sample, json: Buffer.from(JSON.stringify(sample), 'utf8'), framePath });
  };
  const steps = record.steps;
  // One entry per run of equal subtasks: the list an episode walks, never "Move to X" twice in a row.
  add('subtasks', 0, steps[0]!.keyFrame, subtasksPrompt(record.instruction), formatSubtaskList(subtaskRuns(steps.map((s) => s.subtask)).map((r) => r.subtask)));
  for (const s of steps) add('motion_plan', s.index, s.keyFrame, motionPlanPrompt(s.subtask), s.motionPlan);
  for (const s of steps) add('action', s.index, s.keyFrame, actionPrompt(s.subtask, s.motionPlan), formatActionChunk(s.actionChunk));
  if (options.directionLabels) {
    const bySourceStep = new Map(record.auxiliary.directions.map((d) => [d.sourceStep, d.direction]));
    for (const s of steps) {
      const [start, end] = s.sourceSteps;
      const labels = Array.from({ length: end - start }, (_, k) => {
        const label = bySourceStep.get(start + k);
        if (label === undefined) throw new Error(`trajectory ${record.trajectoryId}: auxiliary.directions has no label for source step ${start + k} (step ${s.index})`);
        return label;
      });
      add('direction', s.index, s.keyFrame, directionPrompt(s.subtask, labels.length), formatDirections(labels));
    }
  }
  return out;
}

const BLOCK = 512;
const padded = (n: number): number => Math.ceil(n / BLOCK) * BLOCK;

/** Bytes one regular file takes in a tar: header (plus a PAX header for names over 100 bytes) and padded data. */
export function tarEntryBytes(name: string, size: number): number {
  const pax = Buffer.byteLength(name) > 100 ? BLOCK + padded(Buffer.byteLength(name) + 20) : 0;
  return pax + BLOCK + padded(size);
}

/** The two end-of-archive blocks. */
export const TAR_END_BYTES = 2 * BLOCK;

/** Tar bytes of a trajectory's samples, given each frame's size (from the D_rob manifest). */
export function estimateSampleBytes(samples: readonly BuiltSample[], frameBytes: (path: string) => number): number {
  let total = 0;
  for (const s of samples) total += tarEntryBytes(`${s.sample.key}.json`, s.json.length) + tarEntryBytes(`${s.sample.key}.${s.sample.image}`, frameBytes(s.framePath));
  return total;
}


/** A trajectory before assignShards gives it a split and shard; new plans always carry the content hash. */
export type TrajectoryToPlace = Omit<PlannedTrajectory, 'split' | 'shard' | 'contentSha256'> & { contentSha256: string };


/**
 * Splits by recording and assigns shards: the split from the hash of the trajectory's content hash,
 * the number of shards per split from the split's estimated bytes, the shard from the hash mod that
 * number. Independent of input order (the output is sorted by id).
 */
export function assignShards(
  trajectories: readonly TrajectoryToPlace[],
  options: { seed: number; validationFraction: number; targetShardBytes: number },
): { trajectories: PlannedTrajectory[]; shardsPerSplit: Record<Split, number> } {
  const sorted = [...trajectories].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const withSplit = sorted.map((t) => ({ ...t, split: splitOf(t.contentSha256, options.seed, options.validationFraction) }));
  const bytes: Record<Split, number> = { train: 0, validation: 0 };
  const any: Record<Split, boolean> = { train: false, validation: false };
  for (const t of withSplit) {
    bytes[t.split] += t.estimatedBytes;
    any[t.split] = true;
  }
  const shardsPerSplit: Record<Split, number> = {
    train: any.train ? shardCount(bytes.train, options.targetShardBytes) : 0,
    validation: any.validation ? shardCount(bytes.validation, options.targetShardBytes) : 0,
  };
  return { trajectories: withSplit.map((t) => ({ ...t, shard: shardOf(t.contentSha256, options.seed, shardsPerSplit[t.split]) })), shardsPerSplit };
}

/** One non-empty shard of a plan and the trajectories it holds. */
export interface PlannedShard {
  split: Split;
  index: number;
  trajectories: PlannedTrajectory[];
}

/** The non-empty shards of a plan, train first, each with its trajectories in id order. */
export function plannedShards(trajectories: readonly PlannedTrajectory[]): PlannedShard[] {
  const byShard = new Map<string, PlannedShard>();
  for (const t of trajectories) {
    const k = `${t.split}/${t.shard}`;
    let shard = byShard.get(k);
    if (!shard) byShard.set(k, (shard = { split: t.split, index: t.shard, trajectories: [] }));
    shard.trajectories.push(t);
  }
  const order = (s: Split): number => (s === 'train' ? 0 : 1);
  const shards = [...byShard.values()].sort((a, b) => order(a.split) - order(b.split) || a.index - b.index);
  for (const s of shards) s.trajectories.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return shards;
}

/** Trajectories per split. */
export function trajectoriesPerSplit(trajectories: readonly PlannedTrajectory[]): Record<Split, number> {
  const counts = { train: 0, validation: 0 };
  for (const t of trajectories) counts[t.split]++;
  return counts;
}

/**
 * Why an existing plan (key `was`) cannot serve this run (key `now`), naming both keys, or
 * undefined when they are the same shard set.
 */
export function planKeyConflict(planUri: string, was: ShardPlanKey, now: ShardPlanKey): string | undefined {
  if (samePlanKey(was, now)) return undefined;
  return `${planUri} belongs to another shard set (source manifest sha256 ${was.datasetManifestSha256}, seed ${was.seed}, validationFraction ${was.validationFraction}, targetShardBytes ${was.targetShardBytes}, prompts ${was.promptVersion}, directionLabels ${was.directionLabels}); this run has sha256 ${now.datasetManifestSha256}, seed ${now.seed}, validationFraction ${now.validationFraction}, targetShardBytes ${now.targetShardBytes}, prompts ${now.promptVersion}, directionLabels ${now.directionLabels}: choose a new outputUri`;
}
