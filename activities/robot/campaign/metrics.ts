/**
 * Statistics of an evaluation campaign (`evalCampaign`, docs/method.md, "Robot evaluation"):
 * success rates with 95% Wilson intervals, partial credit, plan hit rate, latency per stage set
 * against the paper's cycle latency, and the cost of malformed answers. Pure functions, no I/O and no
 * Node imports, so anything (an activity, a CLI, a test) can summarise recorded episodes the same way.
 */
import { z } from 'zod';
import { EpisodeOutcome, StageLatency, VerdictDecision } from '../../../data-schemas/robot';
import { quantile } from '../../statistics';

/** docs/method.md, "Latency": median cycle 6.1 s, standard deviation 14.3 s, a long tail over 45 s. */
export const PAPER_CYCLE_LATENCY = { medianMs: 6100, stdMs: 14300, tailOverMs: 45000 } as const;

/** z of a two-sided 95% normal interval. */
export const Z_95 = 1.959964;

export const LatencyStage = StageLatency.shape.stage;
export type LatencyStage = z.infer<typeof LatencyStage>;
/** Every stage a latency can be recorded for, in the order of an episode. */
export const LATENCY_STAGES: readonly LatencyStage[] = LatencyStage.options;

// ---------------------------------------------------------------------------------------------
// Input: one recorded episode, as the report needs it

/**
 * A frame reference a page can show: `data:image/...`, `http(s):`, `file:`, or a path relative to the
 * report (no scheme). Anything else (`s3://`, `javascript:`) is refused: a browser cannot or must not load it.
 */
export const FrameUri = z
  .string()
  .min(1)
  .refine((u) => /^(data:image\/|https?:|file:)/i.test(u) || !/^[A-Za-z][A-Za-z0-9+.-]*:/.test(u), {
    message: 'must be a data:image/ URL, an http(s): or file: URL, or a path relative to the report',
  });

export const FilmstripFrame = z.strictObject({
  frameUri: FrameUri,
  /** The cycle the frame was observed in (the frame after its chunk ran, usually). */
  cycle: z.int().nonnegative(),
  subtask: z.string(),
  /** null: no verification belongs to this frame (the reset frame, an aborted cycle). */
  verdict: VerdictDecision.nullable(),
  reason: z.string().nullable(),
});
export type FilmstripFrame = z.infer<typeof FilmstripFrame>;

export const CampaignEpisodeSummary = z
  .strictObject({
    episodeId: z.string().min(1),
    workflowId: z.string().min(1),
    stationId: z.string().min(1),
    /** Suite task id, e.g. `pick_up`; episodes are grouped by it. */
    taskId: z.string().min(1),
    taskName: z.string().min(1),
    instruction: z.string(),
    /** BCP 47 language of the instruction (`es`, `zh`, `hi`), when it is not English. */
    language: z
      .string()
      .regex(/^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$/, 'must be a BCP 47 language tag such as es, zh or hi')
      .optional(),
    trial: z.int().nonnegative(),
    outcome: EpisodeOutcome,
    /** The task's success judgement (the simulator's on the final scene), independent of `outcome`. */
    success: z.boolean(),
    /** Partial credit: milestones achieved out of `maxScore` (the rubric of docs/method.md, "Partial credit and plan hit"). */
    score: z.number().nonnegative(),
    maxScore: z.number().positive(),
    /** Whether the subtask plan names the right object and destination; null when there was no plan to judge. */
    planHit: z.boolean().nullable(),
    subtasks: z.array(z.string()),
    cycles: z.int().nonnegative(),
    /** Action chunks the policy was asked for (one per cycle that reached the action stage). */
    chunks: z.int().nonnegative(),
    /** Malformed answers (attempts that did not parse), over all stages. */
    formatFailures: z.int().nonnegative(),
    /** Repair re-prompts sent (attempts after the first). */
    repairs: z.int().nonnegative(),
    latenciesMs: z.array(StageLatency),
    filmstrip: z.array(FilmstripFrame),
    error: z.string().optional(),
  })
  .refine((e) => e.score <= e.maxScore, { message: 'score must not exceed maxScore', path: ['score'] });
export type CampaignEpisodeSummary = z.infer<typeof CampaignEpisodeSummary>;

// ---------------------------------------------------------------------------------------------
// Success rate

export const WilsonInterval = z.strictObject({ rate: z.number(), low: z.number(), high: z.number() });
export type WilsonInterval = z.infer<typeof WilsonInterval>;

/**
 * Wilson score interval of a binomial proportion (95% with the default zScore): unlike the normal
 * approximation it stays inside [0, 1] and is not empty at 0/n or n/n, which small trial counts hit.
 * With no trials there is no evidence: `{ rate: 0, low: 0, high: 1 }`.
 */
export function wilsonInterval(successes: number, trials: number, zScore = Z_95): WilsonInterval {
  if (!Number.isSafeInteger(trials) || trials < 0) throw new RangeError(`trials must be a non-negative integer, got ${trials}`);
  if (!Number.isSafeInteger(successes) || successes < 0 || successes > trials) throw new RangeError(`successes must be an integer in [0, ${trials}], got ${successes}`);
  if (!(zScore > 0) || !Number.isFinite(zScore)) throw new RangeError(`zScore must be a positive number, got ${zScore}`);
  if (trials === 0) return { rate: 0, low: 0, high: 1 };
  const n = trials;
  const p = successes / n;
  const z2 = zScore * zScore;
  const denominator = 1 + z2 / n;
  const center = (p + z2 / (2 * n)) / denominator;
  const half = (zScore / denominator) * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n));
  // At 0/n and n/n the bound is 0 (1) in exact arithmetic; say so rather than print 1e-17.
  return {
    rate: p,
    low: successes === 0 ? 0 : Math.max(0, center - half),
    high: successes === n ? 1 : Math.min(1, center + half),
  };
}

// ---------------------------------------------------------------------------------------------
// Latency

export const LatencyStats = z.strictObject({
  n: z.int().nonnegative(),
  medianMs: z.number(),
  stdMs: z.number(),
  p95Ms: z.number(),
  meanMs: z.number(),
  maxMs: z.number(),
});
export type LatencyStats = z.infer<typeof LatencyStats>;

/**
 * Median, sample standard deviation (n - 1 in the denominator, as a report of spread over trials
 * should be; 0 for a single value), p95 by `quantile` (linear interpolation), mean and max.
 * No values: n = 0 and every figure 0 (JSON has no NaN); readers check `n`.
 */
export function latencyStats(valuesMs: readonly number[]): LatencyStats {
  const n = valuesMs.length;
  if (n === 0) return { n: 0, medianMs: 0, stdMs: 0, p95Ms: 0, meanMs: 0, maxMs: 0 };
  for (const v of valuesMs) if (!Number.isFinite(v) || v < 0) throw new RangeError(`latencies must be finite and non-negative, got ${v}`);
  const meanMs = valuesMs.reduce((s, v) => s + v, 0) / n;
  const variance = n === 1 ? 0 : valuesMs.reduce((s, v) => s + (v - meanMs) ** 2, 0) / (n - 1);
  return {
    n,
    medianMs: quantile(valuesMs, 0.5),
    stdMs: Math.sqrt(variance),
    p95Ms: quantile(valuesMs, 0.95),
    meanMs,
    maxMs: Math.max(...valuesMs),
  };
}

// ---------------------------------------------------------------------------------------------
// Partial credit

export const PartialCredit = z.strictObject({
  n: z.int().nonnegative(),
  /** Mean of score / maxScore, in [0, 1]. */
  meanFraction: z.number(),
  meanPoints: z.number(),
  meanMaxPoints: z.number(),
});
export type PartialCredit = z.infer<typeof PartialCredit>;

/** Mean fraction of the points and mean points over episodes (each episode weighs the same). No episodes: zeros. */
export function partialCredit(episodes: readonly { score: number; maxScore: number }[]): PartialCredit {
  const n = episodes.length;
  if (n === 0) return { n: 0, meanFraction: 0, meanPoints: 0, meanMaxPoints: 0 };
  const mean = (f: (e: { score: number; maxScore: number }) => number): number => episodes.reduce((s, e) => s + f(e), 0) / n;
  return { n, meanFraction: mean((e) => e.score / e.maxScore), meanPoints: mean((e) => e.score), meanMaxPoints: mean((e) => e.maxScore) };
}

// ---------------------------------------------------------------------------------------------
// The campaign

export const PlanHitRate = z.strictObject({
  /** Episodes whose plan was judged (planHit not null). */
  judged: z.int().nonnegative(),
  hits: z.int().nonnegative(),
  /** hits / judged; null when nothing was judged. */
  rate: z.number().nullable(),
});
export type PlanHitRate = z.infer<typeof PlanHitRate>;

/** The statistics of any set of episodes: one task, one language, or the whole campaign. */
export const GroupSummary = z.strictObject({
  trials: z.int().nonnegative(),
  successes: z.int().nonnegative(),
  success: WilsonInterval,
  partialCredit: PartialCredit,
  planHit: PlanHitRate,
  latency: z.record(LatencyStage, LatencyStats),
  /** Cycles slower than the paper's tail mark (PAPER_CYCLE_LATENCY.tailOverMs). */
  cyclesOverPaperTail: z.int().nonnegative(),
  chunks: z.int().nonnegative(),
  formatFailures: z.int().nonnegative(),
  repairs: z.int().nonnegative(),
  /** Per 100 action chunks; null when no chunk was asked for. */
  formatFailuresPer100Chunks: z.number().nullable(),
  repairsPer100Chunks: z.number().nullable(),
  outcomes: z.record(EpisodeOutcome, z.int().nonnegative()),
});
export type GroupSummary = z.infer<typeof GroupSummary>;

export const LanguageSummary = z.strictObject({
  language: z.string(),
  trials: z.int().nonnegative(),
  successes: z.int().nonnegative(),
  success: WilsonInterval,
});
export type LanguageSummary = z.infer<typeof LanguageSummary>;

export const TaskSummary = z.strictObject({
  ...GroupSummary.shape,
  taskId: z.string(),
  taskName: z.string(),
  /** Per instruction language, for episodes that name one (the multilingual task); sorted by language. */
  languages: z.array(LanguageSummary),
});
export type TaskSummary = z.infer<typeof TaskSummary>;

export const CampaignSummary = z.strictObject({
  episodes: z.int().nonnegative(),
  /** In the order each task first appears among the episodes. */
  tasks: z.array(TaskSummary),
  /** All episodes together. */
  overall: GroupSummary,
});
export type CampaignSummary = z.infer<typeof CampaignSummary>;

const per100 = (count: number, chunks: number): number | null => (chunks === 0 ? null : (100 * count) / chunks);

const sum = (episodes: readonly CampaignEpisodeSummary[], f: (e: CampaignEpisodeSummary) => number): number => episodes.reduce((s, e) => s + f(e), 0);

function summarizeGroup(episodes: readonly CampaignEpisodeSummary[]): GroupSummary {
  const successes = episodes.filter((e) => e.success).length;
  const judged = episodes.filter((e) => e.planHit !== null);
  const hits = judged.filter((e) => e.planHit === true).length;
  const byStage = new Map<LatencyStage, number[]>(LATENCY_STAGES.map((s) => [s, []]));
  for (const e of episodes) for (const l of e.latenciesMs) byStage.get(l.stage)!.push(l.ms);
  const latency = Object.fromEntries(LATENCY_STAGES.map((s) => [s, latencyStats(byStage.get(s)!)])) as Record<LatencyStage, LatencyStats>;
  const outcomes = Object.fromEntries(EpisodeOutcome.options.map((o) => [o, 0])) as Record<EpisodeOutcome, number>;
  for (const e of episodes) outcomes[e.outcome] += 1;
  const chunks = sum(episodes, (e) => e.chunks);
  const formatFailures = sum(episodes, (e) => e.formatFailures);
  const repairs = sum(episodes, (e) => e.repairs);
  return {
    trials: episodes.length,
    successes,
    success: wilsonInterval(successes, episodes.length),
    partialCredit: partialCredit(episodes),
    planHit: { judged: judged.length, hits, rate: judged.length === 0 ? null : hits / judged.length },
    latency,
    cyclesOverPaperTail: byStage.get('cycle')!.filter((ms) => ms > PAPER_CYCLE_LATENCY.tailOverMs).length,
    chunks,
    formatFailures,
    repairs,
    formatFailuresPer100Chunks: per100(formatFailures, chunks),
    repairsPer100Chunks: per100(repairs, chunks),
    outcomes,
  };
}

function groupBy<K>(episodes: readonly CampaignEpisodeSummary[], key: (e: CampaignEpisodeSummary) => K): Map<K, CampaignEpisodeSummary[]> {
  const groups = new Map<K, CampaignEpisodeSummary[]>();
  for (const e of episodes) {
    const k = key(e);
    const group = groups.get(k);
    if (group) group.push(e);
    else groups.set(k, [e]);
  }
  return groups;
}

/** Statistics per task (grouped by `taskId`) and over the whole campaign. Episodes are validated first. */
export function summarizeCampaign(episodes: readonly CampaignEpisodeSummary[]): CampaignSummary {
  const parsed = z.array(CampaignEpisodeSummary).parse(episodes);
  const seen = new Set<string>();
  for (const e of parsed) {
    if (seen.has(e.episodeId)) throw new Error(`episode ${e.episodeId} is listed twice; each episode counts once`);
    seen.add(e.episodeId);
  }
  const tasks = [...groupBy(parsed, (e) => e.taskId)].map(([taskId, group]): TaskSummary => {
    const languages = [...groupBy(group.filter((e) => e.language !== undefined), (e) => e.language!)]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([language, g]): LanguageSummary => {
        const successes = g.filter((e) => e.success).length;
        return { language, trials: g.length, successes, success: wilsonInterval(successes, g.length) };
      });
    return { taskId, taskName: group[0]!.taskName, ...summarizeGroup(group), languages };
  });
  return { episodes: parsed.length, tasks, overall: summarizeGroup(parsed) };
}
