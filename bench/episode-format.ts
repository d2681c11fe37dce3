/**
 * Format failures and what they cost, per 100 action chunks, with and without structured decoding
 * (the paper's long cycle-latency tail came from format failures: docs/method.md, "Latency").
 *
 *   npx tsx bench/episode-format.ts [--chunks=200] [--seed=1] [--latency-ms=50]
 *                                   [--format-error-rate-pct=10] [--max-repairs=2]
 *
 * Each option can also come from the environment: BENCH_CHUNKS, BENCH_SEED, BENCH_LATENCY_MS,
 * BENCH_FORMAT_ERROR_RATE_PCT, BENCH_MAX_REPAIRS.
 *
 * Every chunk is decoded by the policy's own code (decodeStage: the action prompt with the paper's
 * decoding, parse, bounded repair re-prompts) through the real openai client, against the local
 * OpenAI wire server of test/fixtures with a fixed latency per call. Its fake model is the scripted
 * policy: a ground-truth chunk in the trained text format, or at `formatErrorRate` one of the
 * scripted policy's realistic malformed kinds (truncated, missing gripper, prose, numbers in words);
 * a repair re-prompt is answered the same way, so it fails again at the same rate. When the request
 * carries `response_format` (structured decoding) the fake model acts as a grammar-constrained
 * decoder: it only ever emits the well-formed answer, which is checked to be schema-valid JSON.
 * Not emulated: a constrained answer cut off by max_tokens (the chunk budget leaves ~20 actions).
 *
 * The worlds the chunks are asked in come from simulated episodes over the supported tasks, the arm
 * moved by the ground-truth chunks, so both variants are asked about the same scenes and frames.
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { decodeStage, createPolicyModel, type StageDecodeResult } from '../activities/robot/policy/model';
import { parseActionChunk, type StageValue } from '../activities/robot/policy/parse';
import { createScriptedPolicy, scriptedSubtasks, subtaskReached, type ScriptedPolicyContext } from '../activities/robot/policy/scripted';
import { SimStationDriver } from '../activities/robot/station/sim';
import { SUPPORTED_TASKS } from '../activities/robot/sim/tasks';
import { actionPrompt, PolicyStage } from '../data-schemas/prompts';
import { createOpenAIServer, type RecordedChatRequest } from '../test/fixtures/openai-server';
import { option } from './options';
import { printTable } from './table';

export interface FormatFailureOptions {
  chunks: number;
  seed: number;
  /** Probability that the unconstrained model's answer is malformed. @default 0.1 */
  formatErrorRate?: number;
  /** The fixture's delay per call, ms. @default 50 */
  latencyMs?: number;
  /** Repair re-prompts per malformed chunk. @default 2 (the episode default) */
  maxRepairs?: number;
}

export interface FormatFailureRow {
  decoding: 'free text' | 'structured';
  chunks: number;
  /** Model calls in all, repairs included. */
  calls: number;
  /** Answers that did not parse (an abandoned chunk's last one included). */
  formatFailures: number;
  /** Calls beyond the first of each chunk. */
  repairCalls: number;
  /** Chunks still malformed after maxRepairs. */
  abandoned: number;
  /** Wall time of the repair calls, ms. */
  extraLatencyMs: number;
  /** Per chunk, wall time of the whole action stage, ms. */
  medianStageMs: number;
  p95StageMs: number;
  /** The same per 100 chunks. */
  per100: { formatFailures: number; repairCalls: number; abandoned: number; extraLatencyMs: number };
}

const SERVED_MODEL = 'vla-bench';
/** Chunks one subtask may take before the walk moves on (the ground-truth policy needs far fewer). */
const MAX_CHUNKS_PER_SUBTASK = 12;

function quantile(xs: readonly number[], q: number): number {
  if (xs.length === 0) return 0;
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] ?? 0;
}

/** What a grammar-constrained decoder guarantees: JSON that the chunk schema accepts. */
function assertSchemaValidChunk(text: string): void {
  const value: unknown = JSON.parse(text);
  const ok = Array.isArray(value) && value.length >= 1 && value.every((a) => Array.isArray(a) && a.length === 4 && a.every((v) => typeof v === 'number'));
  if (!ok) throw new Error(`the emulated constrained decoder produced a chunk outside the schema: ${text}`);
}

/**
 * The scenes the chunks are asked in: simulated episodes over the supported tasks, one after the
 * other, the arm moved by the ground-truth chunk after each question.
 */
async function* scenes(seed: number, count: number): AsyncGenerator<{ context: ScriptedPolicyContext; frame: Uint8Array; subtask: string }> {
  const truth = createScriptedPolicy({ seed, noise: { actionStdMeters: 0, formatErrorRate: 0 } });
  let produced = 0;
  for (let episode = 0; produced < count; episode++) {
    const task = SUPPORTED_TASKS[episode % SUPPORTED_TASKS.length]!;
    const station = new SimStationDriver({ seed: seed + episode });
    await station.reset({ instruction: task });
    const plan = scriptedSubtasks(station.simTask());
    for (let i = 0; i < plan.length && produced < count; i++) {
      for (let c = 0; c < MAX_CHUNKS_PER_SUBTASK && produced < count && !subtaskReached(plan[i]!, station.simWorld()); c++) {
        const context: ScriptedPolicyContext = { task: station.simTask(), world: station.simWorld(), subtaskIndex: i };
        const frame = (await station.observe()).image;
        yield { context, frame, subtask: plan[i]!.text };
        produced++;
        const chunk = parseActionChunk(truth.answer(PolicyStage.action, context));
        if (!chunk.ok) throw new Error(`the ground-truth chunk does not parse: ${chunk.error}`);
        await station.execute(chunk.value);
      }
    }
    await station.close();
  }
}

async function measureVariant(structured: boolean, o: Required<FormatFailureOptions>): Promise<FormatFailureRow> {
  const truth = createScriptedPolicy({ seed: o.seed, noise: { actionStdMeters: 0, formatErrorRate: 0 } });
  const noisy = createScriptedPolicy({ seed: o.seed, noise: { actionStdMeters: 0, formatErrorRate: o.formatErrorRate } });
  let current: ScriptedPolicyContext | undefined;
  const answer = (req: RecordedChatRequest): string => {
    if (!current) throw new Error('asked outside a scene');
    if (req.body?.response_format === undefined) return noisy.respond(PolicyStage.action, current).text;
    const text = truth.answer(PolicyStage.action, current);
    assertSchemaValidChunk(text);
    return text;
  };
  const server = await createOpenAIServer({ models: [SERVED_MODEL], latencyMs: o.latencyMs, answer });
  const model = createPolicyModel({ model: { name: SERVED_MODEL, backend: 'openai', baseUrl: server.url, model: SERVED_MODEL }, structuredDecoding: structured }, {});
  const results: StageDecodeResult<StageValue['action']>[] = [];
  try {
    for await (const scene of scenes(o.seed, o.chunks)) {
      current = scene.context;
      const motionPlan = truth.answer(PolicyStage.motionPlan, scene.context);
      results.push(
        await decodeStage(model, {
          stage: PolicyStage.action,
          prompt: actionPrompt(scene.subtask, motionPlan),
          image: { mimeType: 'image/jpeg', data: scene.frame },
          inDistribution: true,
          maxRepairs: o.maxRepairs,
        }),
      );
      // Recorded bodies (images included) are only needed while the request is answered.
      server.reset();
    }
  } finally {
    await model.close();
    await server.close();
  }
  const attempts = results.flatMap((r) => r.attempts);
  if (structured && attempts.some((a) => !a.structured)) throw new Error('structured decoding was asked for but not sent');
  const n = results.length;
  const row = {
    chunks: n,
    calls: attempts.length,
    formatFailures: attempts.filter((a) => a.error !== null).length,
    repairCalls: attempts.length - n,
    abandoned: results.filter((r) => !r.ok).length,
    extraLatencyMs: results.reduce((s, r) => s + r.attempts.slice(1).reduce((t, a) => t + a.latencyMs, 0), 0),
  };
  const per = (v: number): number => (100 * v) / Math.max(1, n);
  return {
    decoding: structured ? 'structured' : 'free text',
    ...row,
    medianStageMs: quantile(
      results.map((r) => r.latencyMs),
      0.5,
    ),
    p95StageMs: quantile(
      results.map((r) => r.latencyMs),
      0.95,
    ),
    per100: { formatFailures: per(row.formatFailures), repairCalls: per(row.repairCalls), abandoned: per(row.abandoned), extraLatencyMs: per(row.extraLatencyMs) },
  };
}

/** Format failures and repair cost per 100 action chunks, free text vs structured decoding, over the same scenes. */
export async function measureFormatFailures(opts: FormatFailureOptions): Promise<{ rows: FormatFailureRow[]; options: Required<FormatFailureOptions> }> {
  const o: Required<FormatFailureOptions> = { formatErrorRate: 0.1, latencyMs: 50, maxRepairs: 2, ...opts };
  if (!Number.isSafeInteger(o.chunks) || o.chunks <= 0) throw new RangeError(`chunks must be a positive integer, got ${o.chunks}`);
  if (!(o.formatErrorRate >= 0 && o.formatErrorRate <= 1)) throw new RangeError(`formatErrorRate must be in [0, 1], got ${o.formatErrorRate}`);
  const rows = [await measureVariant(false, o), await measureVariant(true, o)];
  return { rows, options: o };
}

/** The rows as a Markdown table (header first), for printTable and docs/benchmarks.md. */
export function formatFailureTable(rows: readonly FormatFailureRow[]): string[][] {
  const f1 = (v: number): string => v.toFixed(1);
  return [
    ['decoding', 'chunks', 'format failures /100', 'repair calls /100', 'abandoned /100', 'extra latency /100 chunks (s)', 'stage median (ms)', 'stage p95 (ms)'],
    ...rows.map((r) => [
      r.decoding,
      String(r.chunks),
      f1(r.per100.formatFailures),
      f1(r.per100.repairCalls),
      f1(r.per100.abandoned),
      (r.per100.extraLatencyMs / 1000).toFixed(2),
      r.medianStageMs.toFixed(0),
      r.p95StageMs.toFixed(0),
    ]),
  ];
}

async function main(): Promise<void> {
  const { rows, options } = await measureFormatFailures({
    chunks: option('chunks', 200),
    seed: option('seed', 1),
    formatErrorRate: option('format-error-rate-pct', 10) / 100,
    latencyMs: option('latency-ms', 50),
    maxRepairs: option('max-repairs', 2),
  });
  console.log(
    `Action chunks: ${options.chunks} per variant, unconstrained format error rate ${(options.formatErrorRate * 100).toFixed(0)}%, ` +
      `${options.latencyMs} ms per call (OpenAI wire fixture), at most ${options.maxRepairs} repair(s) per chunk.`,
  );
  printTable(formatFailureTable(rows));
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) await main();
