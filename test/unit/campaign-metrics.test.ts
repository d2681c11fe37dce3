import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ZodError } from 'zod';
import {
  CampaignEpisodeSummary,
  CampaignSummary,
  latencyStats,
  PAPER_CYCLE_LATENCY,
  partialCredit,
  summarizeCampaign,
  wilsonInterval,
  type FilmstripFrame,
} from '../../activities/robot/campaign/metrics';
import { quantile } from '../../activities/statistics';
import type { StageLatency } from '../../data-schemas/robot';

const Z = 1.959964;

/**
 * The Wilson bounds as the two roots of the score test's quadratic,
 * (1 + z²/n) p² - (2 p̂ + z²/n) p + p̂² = 0, a different derivation from the closed form under test.
 */
function wilsonByQuadratic(k: number, n: number): [number, number] {
  const p = k / n;
  const a = 1 + (Z * Z) / n;
  const b = -(2 * p + (Z * Z) / n);
  const c = p * p;
  const d = Math.sqrt(b * b - 4 * a * c);
  return [(-b - d) / (2 * a), (-b + d) / (2 * a)];
}

describe('wilsonInterval', () => {
  it.each([
    // Published 95% Wilson intervals (e.g. Newcombe 1998; any statistics package), to 4 decimals.
    [0, 10, 0, 0.2775],
    [5, 10, 0.2366, 0.7634],
    [10, 10, 0.7225, 1],
    [62, 100, 0.5221, 0.709],
    [1, 30, 0.0059, 0.1667],
  ])('%i/%i is [%f, %f], as tables and the quadratic say', (k, n, low, high) => {
    const ci = wilsonInterval(k, n);
    expect(ci.rate).toBe(k / n);
    expect(ci.low).toBeCloseTo(low, 4);
    expect(ci.high).toBeCloseTo(high, 4);
    const [qLow, qHigh] = wilsonByQuadratic(k, n);
    expect(ci.low).toBeCloseTo(qLow, 10);
    expect(ci.high).toBeCloseTo(qHigh, 10);
  });

  it('is exactly 0 at 0/n and exactly 1 at n/n', () => {
    expect(wilsonInterval(0, 7).low).toBe(0);
    expect(wilsonInterval(7, 7).high).toBe(1);
  });

  it('answers the whole range, not NaN, for no trials', () => {
    expect(wilsonInterval(0, 0)).toEqual({ rate: 0, low: 0, high: 1 });
  });

  it('narrows with a smaller z and refuses impossible counts', () => {
    const wide = wilsonInterval(5, 10);
    const narrow = wilsonInterval(5, 10, 1);
    expect(narrow.high - narrow.low).toBeLessThan(wide.high - wide.low);
    expect(() => wilsonInterval(11, 10)).toThrow(RangeError);
    expect(() => wilsonInterval(-1, 10)).toThrow(RangeError);
    expect(() => wilsonInterval(1.5, 10)).toThrow(RangeError);
    expect(() => wilsonInterval(1, 10, 0)).toThrow(RangeError);
  });

  it('holds the rate inside [low, high] within [0, 1], each bound a root of the score test', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 2000 }).chain((n) => fc.tuple(fc.integer({ min: 0, max: n }), fc.constant(n))),
        ([k, n]) => {
          const { rate, low, high } = wilsonInterval(k, n);
          expect(0 <= low && low <= rate && rate <= high && high <= 1).toBe(true);
          for (const bound of [low, high]) expect(Math.abs(rate - bound)).toBeCloseTo(Z * Math.sqrt((bound * (1 - bound)) / n), 9);
        },
      ),
    );
  });
});

describe('latencyStats', () => {
  it('takes the median, the sample std and p95 by linear interpolation between ranks', () => {
    const s = latencyStats([4, 1, 3, 2]);
    expect(s.n).toBe(4);
    expect(s.medianMs).toBe(2.5);
    expect(s.meanMs).toBe(2.5);
    expect(s.maxMs).toBe(4);
    // Sample variance: (2.25 + 0.25 + 0.25 + 2.25) / 3.
    expect(s.stdMs).toBeCloseTo(Math.sqrt(5 / 3), 12);
    // h = 3 * 0.95 = 2.85: 3 + 0.85 * (4 - 3).
    expect(s.p95Ms).toBeCloseTo(3.85, 12);
    // numpy.percentile(range(1, 21), 95) == 19.05; odd n: the middle value.
    expect(latencyStats(Array.from({ length: 20 }, (_, i) => i + 1)).p95Ms).toBeCloseTo(19.05, 12);
    expect(latencyStats([10, 30, 20]).medianMs).toBe(20);
  });

  it('gives std 0 for one value and zeros with n = 0 for none', () => {
    expect(latencyStats([6100])).toEqual({ n: 1, medianMs: 6100, stdMs: 0, p95Ms: 6100, meanMs: 6100, maxMs: 6100 });
    expect(latencyStats([])).toEqual({ n: 0, medianMs: 0, stdMs: 0, p95Ms: 0, meanMs: 0, maxMs: 0 });
    expect(() => latencyStats([1, Number.NaN])).toThrow(RangeError);
    expect(() => latencyStats([-1])).toThrow(RangeError);
  });

  it('quantile: the ends are min and max, empty is NaN', () => {
    expect(quantile([5, 1, 9], 0)).toBe(1);
    expect(quantile([5, 1, 9], 1)).toBe(9);
    expect(quantile([], 0.5)).toBeNaN();
    expect(() => quantile([1], 1.5)).toThrow(RangeError);
  });

  it('keeps the paper figures of docs/method.md', () => {
    expect(PAPER_CYCLE_LATENCY).toEqual({ medianMs: 6100, stdMs: 14300, tailOverMs: 45000 });
  });
});

describe('partialCredit', () => {
  it('averages fractions per episode, not points over points', () => {
    const pc = partialCredit([
      { score: 5, maxScore: 5 },
      { score: 0, maxScore: 2 },
      { score: 1, maxScore: 2 },
    ]);
    expect(pc.n).toBe(3);
    expect(pc.meanFraction).toBeCloseTo((1 + 0 + 0.5) / 3, 12);
    expect(pc.meanPoints).toBe(2);
    expect(pc.meanMaxPoints).toBe(3);
    expect(partialCredit([])).toEqual({ n: 0, meanFraction: 0, meanPoints: 0, meanMaxPoints: 0 });
  });
});

const lat = (stage: StageLatency['stage'], ms: number): StageLatency => ({ stage, ms });
const frame = (cycle: number, verdict: FilmstripFrame['verdict']): FilmstripFrame => ({ frameUri: `frames/${cycle}.jpg`, cycle, subtask: 'Move to the eggplant', verdict, reason: verdict ? 'ok' : null });

function episode(over: Partial<CampaignEpisodeSummary> & Pick<CampaignEpisodeSummary, 'episodeId' | 'taskId' | 'trial'>): CampaignEpisodeSummary {
  return {
    workflowId: `wf-${over.episodeId}`,
    stationId: 'sim-1',
    taskName: over.taskId === 'pick_up' ? 'Pick up (in-distribution)' : 'Pick up, multilingual instruction',
    instruction: 'pick up the eggplant',
    outcome: 'completed',
    success: true,
    score: 2,
    maxScore: 2,
    planHit: true,
    subtasks: ['Move to the eggplant', 'Grasp the eggplant', 'Lift the eggplant'],
    cycles: 3,
    chunks: 3,
    formatFailures: 0,
    repairs: 0,
    latenciesMs: [],
    filmstrip: [frame(0, null), frame(1, 'proceed')],
    ...over,
  };
}

const EPISODES: CampaignEpisodeSummary[] = [
  episode({ episodeId: 'pick_up-t000', taskId: 'pick_up', trial: 0, latenciesMs: [lat('subtasks', 900), lat('cycle', 1000), lat('cycle', 3000), lat('action', 400)] }),
  episode({
    episodeId: 'pick_up-t001',
    taskId: 'pick_up',
    trial: 1,
    outcome: 'retries_exhausted',
    success: false,
    score: 1,
    planHit: false,
    chunks: 10,
    formatFailures: 3,
    repairs: 2,
    latenciesMs: [lat('cycle', 50000), lat('action', 600)],
  }),
  episode({ episodeId: 'pick_up-t002', taskId: 'pick_up', trial: 2, outcome: 'policy_format', success: false, score: 0, planHit: null, cycles: 0, chunks: 0, formatFailures: 3, repairs: 2, filmstrip: [] }),
  episode({ episodeId: 'multilingual-t000', taskId: 'multilingual', trial: 0, language: 'es', instruction: 'recoge la berenjena', chunks: 4, latenciesMs: [lat('cycle', 2000)] }),
  episode({ episodeId: 'multilingual-t001', taskId: 'multilingual', trial: 1, language: 'zh', instruction: '拿起茄子', success: false, outcome: 'aborted', score: 1, chunks: 4, formatFailures: 1, repairs: 1 }),
  episode({ episodeId: 'multilingual-t002', taskId: 'multilingual', trial: 2, language: 'es', instruction: 'levanta la berenjena', chunks: 2 }),
];

describe('summarizeCampaign', () => {
  const summary = summarizeCampaign(EPISODES);

  it('groups by task in order of first appearance and counts trials and successes with their interval', () => {
    expect(CampaignSummary.parse(summary)).toEqual(summary);
    expect(summary.episodes).toBe(6);
    expect(summary.tasks.map((t) => [t.taskId, t.taskName, t.trials, t.successes])).toEqual([
      ['pick_up', 'Pick up (in-distribution)', 3, 1],
      ['multilingual', 'Pick up, multilingual instruction', 3, 2],
    ]);
    expect(summary.tasks[0]!.success).toEqual(wilsonInterval(1, 3));
    expect(summary.overall.success).toEqual(wilsonInterval(3, 6));
  });

  it('computes partial credit, plan hit rate over judged plans, and outcome counts', () => {
    const [pickUp, multilingual] = summary.tasks;
    expect(pickUp!.partialCredit.meanFraction).toBeCloseTo((1 + 0.5 + 0) / 3, 12);
    expect(pickUp!.partialCredit.meanPoints).toBe(1);
    expect(pickUp!.planHit).toEqual({ judged: 2, hits: 1, rate: 0.5 });
    expect(multilingual!.planHit).toEqual({ judged: 3, hits: 3, rate: 1 });
    expect(pickUp!.outcomes).toMatchObject({ completed: 1, retries_exhausted: 1, policy_format: 1, aborted: 0, error: 0 });
    expect(summary.overall.outcomes).toEqual({ completed: 3, retries_exhausted: 1, cycle_limit: 0, time_limit: 0, aborted: 1, policy_format: 1, error: 0 });
  });

  it('pools latencies per stage and counts cycles past the paper tail', () => {
    const pickUp = summary.tasks[0]!;
    expect(pickUp.latency.cycle).toEqual(latencyStats([1000, 3000, 50000]));
    expect(pickUp.latency.action.medianMs).toBe(500);
    expect(pickUp.latency.subtasks.n).toBe(1);
    expect(pickUp.latency.verify.n).toBe(0);
    expect(pickUp.cyclesOverPaperTail).toBe(1);
    expect(summary.overall.latency.cycle).toEqual(latencyStats([1000, 3000, 50000, 2000]));
  });

  it('reports format failures and repairs per 100 action chunks, null without chunks', () => {
    const [pickUp, multilingual] = summary.tasks;
    expect(pickUp!.chunks).toBe(13);
    expect(pickUp!.formatFailuresPer100Chunks).toBeCloseTo((100 * 6) / 13, 12);
    expect(pickUp!.repairsPer100Chunks).toBeCloseTo((100 * 4) / 13, 12);
    expect(multilingual!.formatFailuresPer100Chunks).toBeCloseTo(10, 12);
    expect(summary.overall.formatFailuresPer100Chunks).toBeCloseTo((100 * 7) / 23, 12);
    expect(summarizeCampaign([EPISODES[2]!]).overall.formatFailuresPer100Chunks).toBeNull();
  });

  it('breaks the multilingual task down by language', () => {
    expect(summary.tasks[0]!.languages).toEqual([]);
    expect(summary.tasks[1]!.languages).toEqual([
      { language: 'es', trials: 2, successes: 2, success: wilsonInterval(2, 2) },
      { language: 'zh', trials: 1, successes: 0, success: wilsonInterval(0, 1) },
    ]);
  });

  it('summarizes nothing without NaN', () => {
    const empty = summarizeCampaign([]);
    expect(empty.tasks).toEqual([]);
    expect(empty.overall.success).toEqual({ rate: 0, low: 0, high: 1 });
    expect(empty.overall.planHit.rate).toBeNull();
    const notFinite: string[] = [];
    JSON.stringify(empty, (key, value: unknown) => {
      if (typeof value === 'number' && !Number.isFinite(value)) notFinite.push(key);
      return value;
    });
    expect(notFinite).toEqual([]);
  });

  it('refuses a duplicated episode and an invalid one', () => {
    expect(() => summarizeCampaign([EPISODES[0]!, EPISODES[0]!])).toThrow(/listed twice/);
    expect(() => summarizeCampaign([{ ...EPISODES[0]!, score: 3 }])).toThrow(ZodError);
    expect(() => summarizeCampaign([{ ...EPISODES[0]!, chunks: -1 }])).toThrow(ZodError);
  });
});

describe('CampaignEpisodeSummary frames', () => {
  it('accepts what a page can show and refuses what it cannot (or must not) load', () => {
    const withFrame = (frameUri: string) => CampaignEpisodeSummary.safeParse({ ...EPISODES[0]!, filmstrip: [{ ...frame(0, 'retry'), frameUri }] }).success;
    expect(withFrame('data:image/jpeg;base64,/9j/4AAQ')).toBe(true);
    expect(withFrame('episodes/pick_up-t000/frames/0001.jpg')).toBe(true);
    expect(withFrame('https://example.org/f.jpg')).toBe(true);
    expect(withFrame('file:///tmp/f.jpg')).toBe(true);
    expect(withFrame('s3://bucket/f.jpg')).toBe(false);
    expect(withFrame('javascript:alert(1)')).toBe(false);
    expect(withFrame('data:text/html,<script>alert(1)</script>')).toBe(false);
  });
});
