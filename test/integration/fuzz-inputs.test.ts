import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import fc from 'fast-check';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { z } from 'zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createObjectStore, type ObjectStore } from '../../activities/store';
import { StationLockInput } from '../../data-schemas/robot';
import { fileUri } from '../../data-schemas/uri';
import { WORKFLOW_INPUTS } from '../../data-schemas/workflows';
import { loadConfig } from '../../infra/config';
import { ensurePythonEnv } from '../../infra/python';
import * as workflows from '../../workflows';
import { INVALID_WORKFLOW_INPUT } from '../../workflows/input';
import { connectTestTemporal, type TemporalTestEnv } from '../helpers/temporal';
import { withCpuAndGpuWorkers } from '../helpers/workers';
import { formatIssuePath } from '../../data-schemas/issues';

/**
 * Outside-style fuzzing of every workflow type: generated malformed inputs go through a real
 * client to a real CPU worker (and a GPU worker, so an input that slipped through would really
 * start a trainer or an inference process). Every case must close FAILED at once with a
 * non-retryable InvalidWorkflowInput naming the bad field; the traversal cases' target outside the
 * store stays untouched; no child process is left behind.
 *
 * Seeded: `VLA_FUZZ_SEED=<n>` replays another draw; a failing case prints its seed, workflow and field.
 * `stationLock` is internal (requestStation starts it) but takes input like any other workflow:
 * malformed there means a station id or lease request that is not one, refused instead of idling.
 */

const SEED = Number(process.env.VLA_FUZZ_SEED ?? 20261207);
const CASES_PER_WORKFLOW = 10;
/** A liveness bound per workflow, not a speed assertion: a crash-looping workflow task never closes. */
const CLOSES_WITHIN_MS = 60_000;

type Kind = 'uri' | 'name' | 'id' | 'text' | 'int' | 'number' | 'enum';
interface Field {
  path: (string | number)[];
  kind: Kind;
  required?: boolean;
  /** For numbers: the accepted range (out-of-range cases step outside it). */
  min?: number;
  max?: number;
  /** For names and ids: the longest accepted. */
  maxLength?: number;
}
type MutationClass = 'missing' | 'wrong-type' | 'out-of-range' | 'huge-string' | 'traversal' | 'encoded-traversal' | 'control-chars' | 'over-long-id';
interface Case {
  workflow: string;
  mutation: MutationClass;
  path: string;
  input: unknown;
}

const WORKFLOW_TYPES = Object.entries(workflows)
  .filter(([, value]) => typeof value === 'function')
  .map(([name]) => name)
  .sort();

const uriField = (path: Field['path'], required = true): Field => ({ path, kind: 'uri', required });

describe('fuzzed malformed inputs for every workflow type (real dev server, real workers)', () => {
  // Confined as every CLI-started worker is: a case the schemas let through still could not write outside.
  let store: ObjectStore;
  let env: TemporalTestEnv;
  let dir: string;
  let root: string;
  let sentinel: string;

  beforeAll(async () => {
    env = await connectTestTemporal();
    dir = mkdtempSync(join(tmpdir(), 'vla-fuzz-'));
    mkdirSync(join(dir, 'store', 'a', 'b'), { recursive: true });
    root = fileUri(join(dir, 'store', 'a', 'b'));
    store = createObjectStore({ roots: { readWrite: [fileUri(join(dir, 'store'))], readOnly: [] } });
    // Outside the store: what `<root>/../../../sentinel/...` would reach.
    sentinel = join(dir, 'sentinel');
    mkdirSync(sentinel);
    writeFileSync(join(sentinel, 'keep.txt'), 'untouched\n');
  });
  afterAll(async () => {
    await env?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** Valid inputs, one per workflow type, and the fields the fuzzer bends. */
  const specs = (gpu: string): Record<string, { input: Record<string, unknown>; fields: Field[] }> => {
    const model = { name: 'base', backend: 'local', baseModel: '/models/tiny' };
    const benchmarks = [{ benchmark: 'mmmu', uri: `${root}/mmmu` }];
    return {
      storeSmoke: { input: { outputUri: `${root}/smoke.txt`, text: 'hello' }, fields: [uriField(['outputUri']), { path: ['text'], kind: 'text', required: true }] },
      relabelDataset: {
        input: { datasetUri: `${root}/bridge`, outputUri: `${root}/labels`, labeler: { name: 'heuristic' }, maxConcurrent: 4, maxReprompts: 1, childrenPerRun: 10, limit: 2, geminiTaskQueue: 'vla-gemini' },
        fields: [
          uriField(['datasetUri']),
          uriField(['outputUri'], false),
          { path: ['labeler', 'name'], kind: 'enum' },
          { path: ['maxConcurrent'], kind: 'int', min: 1, max: 256 },
          { path: ['maxReprompts'], kind: 'int', min: 0, max: 10 },
          { path: ['childrenPerRun'], kind: 'int', min: 1, max: 5000 },
          { path: ['limit'], kind: 'int', min: 1 },
          { path: ['geminiTaskQueue'], kind: 'name', maxLength: 200 },
        ],
      },
      relabelTrajectory: {
        input: {
          datasetUri: `${root}/bridge`,
          trajectoryId: 'traj-0',
          labeler: { name: 'heuristic' },
          outputUri: `${root}/labels`,
          maxReprompts: 1,
          aggregation: { perAxisMeters: 0.025, absoluteMeters: 0.05 },
          geminiTaskQueue: 'vla-gemini',
        },
        fields: [
          uriField(['datasetUri']),
          { path: ['trajectoryId'], kind: 'id', required: true, maxLength: 128 },
          { path: ['labeler', 'name'], kind: 'enum' },
          uriField(['outputUri']),
          { path: ['maxReprompts'], kind: 'int', required: true, min: 0, max: 10 },
          { path: ['aggregation', 'perAxisMeters'], kind: 'number', min: Number.MIN_VALUE, max: 1 },
          { path: ['geminiTaskQueue'], kind: 'name', required: true, maxLength: 200 },
        ],
      },
      shardDataset: {
        input: { datasetUri: `${root}/d-lan`, outputUri: `${root}/shards`, validationFraction: 0.05, seed: 0, targetShardBytes: 1 << 20, maxConcurrentShards: 2 },
        fields: [
          uriField(['datasetUri']),
          uriField(['outputUri'], false),
          { path: ['validationFraction'], kind: 'number', min: 0, max: 0.5 },
          { path: ['seed'], kind: 'int', min: 0 },
          { path: ['targetShardBytes'], kind: 'int', min: 64 * 1024 },
          { path: ['maxConcurrentShards'], kind: 'int', min: 1, max: 64 },
        ],
      },
      trainLora: {
        input: { shardsUri: `${root}/shards/shards.json`, baseModel: '/models/tiny', outputUri: `${root}/run`, lora: { rank: 4 }, learningRate: 1e-4, precision: 'fp32', gpuTaskQueue: gpu },
        fields: [
          uriField(['shardsUri']),
          { path: ['baseModel'], kind: 'name', required: true, maxLength: 512 },
          uriField(['outputUri']),
          { path: ['lora', 'rank'], kind: 'int', min: 1, max: 1024 },
          { path: ['learningRate'], kind: 'number', min: Number.MIN_VALUE, max: 1 },
          { path: ['precision'], kind: 'enum' },
          { path: ['gpuTaskQueue'], kind: 'name', maxLength: 200 },
        ],
      },
      vqaSweep: {
        input: { models: [model], benchmarks, outputUri: `${root}/vqa`, concurrency: 2, taskQueues: { local: gpu } },
        fields: [
          { path: ['models', 0, 'name'], kind: 'id', required: true, maxLength: 64 },
          { path: ['models', 0, 'baseModel'], kind: 'name', required: true, maxLength: 512 },
          { path: ['benchmarks', 0, 'benchmark'], kind: 'enum', required: true },
          uriField(['benchmarks', 0, 'uri']),
          uriField(['outputUri']),
          { path: ['concurrency'], kind: 'int', min: 1, max: 256 },
          { path: ['taskQueues', 'local'], kind: 'name', maxLength: 200 },
        ],
      },
      vqaEvaluate: {
        input: { outputUri: `${root}/vqa`, itemsUri: `${root}/vqa/items/mmmu/x`, model, modelKey: '0'.repeat(64), benchmark: 'mmmu', concurrency: 2, batchSize: 8, taskQueue: gpu },
        fields: [
          uriField(['outputUri']),
          uriField(['itemsUri']),
          { path: ['model', 'baseModel'], kind: 'name', required: true, maxLength: 512 },
          { path: ['modelKey'], kind: 'id', required: true, maxLength: 64 },
          { path: ['benchmark'], kind: 'enum', required: true },
          { path: ['concurrency'], kind: 'int', required: true, min: 1, max: 256 },
          { path: ['batchSize'], kind: 'int', required: true, min: 1, max: 10_000 },
          { path: ['taskQueue'], kind: 'name', required: true, maxLength: 200 },
        ],
      },
      nightlyEvaluation: {
        input: { runsUri: `${root}/runs`, outputUri: `${root}/nightly`, benchmarks, concurrency: 2, localTaskQueue: gpu },
        fields: [
          uriField(['runsUri']),
          uriField(['outputUri']),
          uriField(['benchmarks', 0, 'uri']),
          { path: ['concurrency'], kind: 'int', min: 1, max: 256 },
          { path: ['localTaskQueue'], kind: 'name', maxLength: 200 },
        ],
      },
      robotEpisode: {
        input: { stationId: 'sim-fuzz', instruction: 'pick up the carrot', outputUri: `${root}/episode`, limits: { maxCycles: 5 }, labels: { campaign: 'fuzz' } },
        fields: [
          { path: ['stationId'], kind: 'id', required: true, maxLength: 128 },
          { path: ['instruction'], kind: 'text', required: true },
          uriField(['outputUri']),
          { path: ['limits', 'maxCycles'], kind: 'int', min: 1, max: 500 },
          { path: ['labels', 'campaign'], kind: 'text' },
        ],
      },
      stationLock: {
        input: { stationId: 'sim-fuzz', waiting: [{ workflowId: 'episode-that-does-not-exist', runId: 'run-1' }] },
        fields: [
          { path: ['stationId'], kind: 'id', required: true, maxLength: 128 },
          { path: ['waiting', 0, 'workflowId'], kind: 'text', required: true },
          { path: ['waiting', 0, 'runId'], kind: 'text', required: true },
        ],
      },
      evalCampaign: {
        input: { outputUri: `${root}/campaign`, tasks: ['pick_up'], trials: 1, stations: ['sim-fuzz'], seed: 0, title: 'fuzz' },
        fields: [
          uriField(['outputUri']),
          { path: ['tasks', 0], kind: 'enum' },
          { path: ['trials'], kind: 'int', min: 1, max: 1000 },
          { path: ['stations', 0], kind: 'id', maxLength: 128 },
          { path: ['seed'], kind: 'int', min: 0 },
          { path: ['title'], kind: 'text' },
        ],
      },
      experiment: {
        input: { name: 'fuzz', storeUri: `${root}/experiments`, datasetUri: `${root}/bridge`, variants: [{ name: 'v', baseModel: '/models/tiny', maxSteps: 1 }], taskQueues: { gpu } },
        fields: [
          { path: ['name'], kind: 'id', required: true, maxLength: 64 },
          uriField(['storeUri']),
          uriField(['datasetUri']),
          { path: ['variants', 0, 'name'], kind: 'id', required: true, maxLength: 64 },
          { path: ['variants', 0, 'baseModel'], kind: 'name', required: true, maxLength: 512 },
          { path: ['variants', 0, 'maxSteps'], kind: 'int', min: 1 },
          { path: ['taskQueues', 'gpu'], kind: 'name', maxLength: 200 },
        ],
      },
    };
  };

  const schemaOf = (workflow: string): z.ZodType => (workflow === 'stationLock' ? StationLockInput : WORKFLOW_INPUTS[workflow as keyof typeof WORKFLOW_INPUTS]);

  /** The classes of malformation that apply to a field. */
  const classesFor = (field: Field): MutationClass[] => {
    const out: MutationClass[] = ['wrong-type'];
    if (field.required) out.push('missing');
    if (field.kind === 'int' || field.kind === 'number') out.push('out-of-range');
    if (field.kind === 'enum') out.push('out-of-range');
    if (field.kind === 'uri' || field.kind === 'name' || field.kind === 'id' || field.kind === 'text') out.push('huge-string');
    if (field.kind === 'uri') out.push('traversal', 'encoded-traversal', 'control-chars');
    if (field.kind === 'name' || field.kind === 'id') out.push('control-chars', 'over-long-id');
    return out;
  };

  const HUGE = 100 * 1024;
  /** A value of the given class for the field, drawn from `pick` (the seeded generator). */
  const malformed = (field: Field, mutation: MutationClass, pick: <T>(xs: readonly T[]) => T): unknown => {
    switch (mutation) {
      case 'wrong-type':
        return field.kind === 'int' || field.kind === 'number' ? pick(['7', true, [], { n: 1 }, null]) : pick([42, true, [], { uri: 'x' }, null]);
      case 'out-of-range':
        if (field.kind === 'enum') return pick(['gpt', '', 'MMMU', 'pick_up; rm -rf /']);
        return pick(
          [field.min, field.max]
            .flatMap((bound, i) => (bound === undefined ? [] : i === 0 ? [bound - 1, -1e12] : [bound + 1, 1e12]))
            .concat(field.kind === 'int' ? [(field.min ?? 0) + 0.5] : [])
            .filter((v) => (field.min !== undefined && v < field.min) || (field.max !== undefined && v > field.max) || (field.kind === 'int' && !Number.isInteger(v))),
        );
      case 'huge-string':
        return field.kind === 'uri' ? `${root}/${'h'.repeat(HUGE)}` : 'h'.repeat(HUGE);
      case 'traversal':
        return pick([`${root}/../../../sentinel/x`, `${root}/../../../sentinel/keep.txt`, `${root}/./../../../sentinel`, `${root}/x/../../../../sentinel/y`]);
      case 'encoded-traversal':
        return pick([
          `${root}/%2e%2e/%2e%2e/%2e%2e/sentinel/x`,
          `${root}/%2E./%2E./%2E./sentinel/x`,
          `${root}/.%2e/.%2e/.%2e/sentinel/x`,
          `${root}/%252e%252e/%252e%252e/%252e%252e/sentinel/x`,
          `${root}/%2e%2e%2f%2e%2e%2f%2e%2e%2fsentinel/x`,
          `${root}/..%5c..%5c..%5csentinel/x`,
        ]);
      case 'control-chars': {
        const bad = pick(['\u0000', '\n', '\u0007', '\u202e', '\u200b', '\u001b[31m', '\ufeff']);
        if (field.kind === 'uri') return `${root}/x${bad}y`;
        return `sim${bad}1`;
      }
      case 'over-long-id':
        return 'a'.repeat((field.maxLength ?? 128) + pick([1, 1000, 5000]));
      case 'missing':
        return undefined;
    }
  };

  const withValue = (input: Record<string, unknown>, path: Field['path'], value: unknown): unknown => {
    const copy = structuredClone(input) as Record<string | number, unknown>;
    let at = copy;
    for (const key of path.slice(0, -1)) at = at[key] as Record<string | number, unknown>;
    const last = path[path.length - 1] as string | number;
    if (value === undefined) delete at[last];
    else at[last] = value;
    return copy;
  };

  /** Up to CASES_PER_WORKFLOW cases per workflow: every applicable class once, then more at random. */
  const generateCases = (gpu: string): Case[] => {
    const rng = fc.sample(fc.integer({ min: 0, max: 2 ** 31 - 1 }), { seed: SEED, numRuns: 10_000 });
    let next = 0;
    function pick<T>(xs: readonly T[]): T {
      return xs[(rng[next++ % rng.length] as number) % xs.length] as T;
    }
    const cases: Case[] = [];
    for (const [workflow, spec] of Object.entries(specs(gpu))) {
      const candidates = spec.fields.flatMap((field) => classesFor(field).map((mutation) => ({ field, mutation })));
      const byClass = [...new Set(candidates.map((c) => c.mutation))];
      const chosen = byClass.map((mutation) => pick(candidates.filter((c) => c.mutation === mutation)));
      while (chosen.length < CASES_PER_WORKFLOW) chosen.push(pick(candidates));
      for (const { field, mutation } of chosen.slice(0, CASES_PER_WORKFLOW)) {
        cases.push({ workflow, mutation, path: formatIssuePath(field.path), input: withValue(spec.input, field.path, malformed(field, mutation, pick)) });
      }
    }
    return cases;
  };

  const treeDigest = (path: string): string => {
    const hash = createHash('sha256');
    const walk = (p: string): void => {
      for (const name of readdirSync(p).sort()) {
        const full = join(p, name);
        hash.update(`${full}\n`);
        if (statSync(full).isDirectory()) walk(full);
        else hash.update(readFileSync(full));
      }
    };
    walk(path);
    return hash.digest('hex');
  };

  /** This process's child processes (the workers run in it), without the `ps` that lists them. */
  const childProcesses = (): string[] =>
    execFileSync('ps', ['--ppid', String(process.pid), '-o', 'pid=,args='], { encoding: 'utf8' })
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line && !/^\d+ ps --ppid/.test(line));

  it('the fuzzer covers every workflow type exported from workflows/index.ts, from valid inputs', () => {
    const all = specs('vla-gpu');
    expect(Object.keys(all).sort()).toEqual(WORKFLOW_TYPES);
    for (const [workflow, spec] of Object.entries(all)) {
      expect(schemaOf(workflow).safeParse(spec.input).error?.issues ?? [], workflow).toEqual([]);
    }
  });

  it(`every malformed input fails at once, non-retryable, naming its field (seed ${SEED})`, { timeout: 300_000 }, async () => {
    const python = await ensurePythonEnv(loadConfig().cacheDir);
    const sentinelBefore = treeDigest(sentinel);
    const storeBefore = treeDigest(join(dir, 'store'));
    await withCpuAndGpuWorkers(env, { store, workDir: join(dir, 'gpu-work'), python }, async ({ cpu, gpu }) => {
      const cases = generateCases(gpu);
      expect(cases.length).toBeGreaterThanOrEqual(WORKFLOW_TYPES.length * 5);
      // Every case is refused by its schema before it goes to the server (a generator bug shows here, plainly).
      for (const c of cases) expect(schemaOf(c.workflow).safeParse(c.input).success, `${c.workflow} ${c.mutation} ${c.path}`).toBe(false);

      const childrenBefore = childProcesses();
      const outcomes = await Promise.all(
        cases.map(async (c, i) => {
          const handle = await env.client.workflow.start(c.workflow, { taskQueue: cpu, workflowId: `${cpu}-${i}-${c.workflow}`, args: [c.input] });
          let timer: NodeJS.Timeout | undefined;
          const bound = new Promise<'still running'>((resolve) => (timer = setTimeout(() => resolve('still running'), CLOSES_WITHIN_MS)));
          const result = await Promise.race([handle.result().then(() => 'completed', (e: unknown) => e), bound]);
          clearTimeout(timer);
          if (result === 'still running') await handle.terminate('fuzz liveness bound').catch(() => undefined);
          return { c, result };
        }),
      );
      const problems: string[] = [];
      for (const { c, result } of outcomes) {
        const label = `seed ${SEED}: ${c.workflow} ${c.mutation} at ${c.path}`;
        if (!(result instanceof WorkflowFailedError)) {
          problems.push(`${label}: ${typeof result === 'string' ? result : String(result)}`);
          continue;
        }
        const failure = result.cause;
        if (!(failure instanceof ApplicationFailure) || failure.type !== INVALID_WORKFLOW_INPUT || !failure.nonRetryable) {
          problems.push(`${label}: failed with ${failure?.constructor.name} ${failure instanceof ApplicationFailure ? failure.type : ''}: ${failure?.message.slice(0, 300)}`);
          continue;
        }
        const names = new RegExp(`(?:invalid input: |; )${c.path.replace(/[.[\]]/g, '\\$&')}: `);
        if (!names.test(failure.message)) problems.push(`${label}: the message does not name the field: ${failure.message.slice(0, 300)}`);
        if (failure.message.length > 2_000) problems.push(`${label}: a ${failure.message.length}-character message (the value repeated?)`);
      }
      expect(problems).toEqual([]);
      expect(childProcesses()).toEqual(childrenBefore);
    });
    expect(treeDigest(sentinel)).toBe(sentinelBefore);
    expect(treeDigest(join(dir, 'store'))).toBe(storeBefore);
  });
});
