/**
 * The VQA sweep (vqaSweep -> vqaEvaluate children -> predictItems batches on the CPU queue) against
 * a plain promise pool calling the same OpenAI-compatible backend on the same items at the same
 * concurrency, both against one local OpenAI wire server with a fixed latency. Then resume: a sweep
 * whose predictions are half done against a fresh sweep of the same items.
 *
 *   npx tsx bench/vqa.ts [--items=800] [--concurrency=8] [--latency-ms=200] [--batch-size=16,64]
 *                        [--rounds=1] [--resume-batch-size=N] [--db-dir=DIR]
 *
 * Each option can also come from the environment: BENCH_ITEMS, BENCH_CONCURRENCY, BENCH_LATENCY_MS,
 * BENCH_BATCH_SIZE, BENCH_ROUNDS, BENCH_RESUME_BATCH_SIZE, BENCH_DB_DIR.
 *
 * Items: the bundled samples (data/samples/vqa-samples: MMBench-EN and AI2D rows) copied under new
 * ids until there are `--items` of them, written as two JSON-lines layouts (loaders.ts) in a temp dir.
 * The pipeline variants: every `--batch-size` with one child at a time (maxConcurrentEvaluations 1,
 * so the server sees `--concurrency` requests in flight, as the pool does), and the largest batch
 * size with both children at once at half the concurrency each. Pipeline time is a whole
 * vqaSweep (backend check, children, scoring, report with its Chromium chart); the items are
 * materialised into the sweep's output once beforehand, each variant predicts under its own model
 * name. The histories of each run's children say where the time goes.
 *
 * Everything runs here: its own Temporal dev server (SQLite in a temp dir) on free loopback ports,
 * the OpenAI wire server of test/fixtures, the CPU worker in this process. Everything is removed at
 * the end.
 */
import type { Client } from '@temporalio/client';
import type { Worker } from '@temporalio/worker';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { forEachConcurrent } from '../activities/data/pool';
import { FileStore, putJson } from '../activities/store';
import { createVqaRuntime } from '../activities/vqa/activities';
import { createOpenAIBackend } from '../activities/vqa/backends/openai';
import { ITEMS_FILE, mimeTypeOf } from '../activities/vqa/loaders';
import { BENCHMARKS } from '../activities/vqa/scoring';
import { fileUri, joinUri } from '../data-schemas/uri';
import { VqaItem, type BenchmarkId, type VqaPrediction, type VqaSweepInputRaw, type VqaSweepResult } from '../data-schemas/vqa';
import { REPO_ROOT } from '../infra/config';
import type { DevServer } from '../infra/temporal';
import { createOpenAIServer, type OpenAIServer } from '../test/fixtures/openai-server';
import { createCpuWorker } from '../workers/cpu';
import type { vqaSweep } from '../workflows';
import { WorkflowIds } from '../data-schemas/workflow-ids';
import { idOf, tsMs } from './history';
import { printTable } from './table';
import { Cleanups, startBenchTemporal } from './temporal';
import { option, stringOption } from './options';

const positiveList = (name: string, fallback: string): number[] =>
  (stringOption(name) ?? fallback).split(',').map((v) => {
    const k = Number(v);
    if (!Number.isSafeInteger(k) || k <= 0) throw new Error(`--${name} must be positive integers separated by commas, got "${v}"`);
    return k;
  });

const cfg = {
  items: option('items', 800),
  concurrency: option('concurrency', 8),
  latencyMs: option('latency-ms', 200),
  batchSizes: positiveList('batch-size', '16,64'),
  rounds: option('rounds', 1),
  /** Batch size of the resume runs; default the largest of --batch-size. */
  resumeBatchSize: stringOption('resume-batch-size') !== undefined ? option('resume-batch-size', 1) : undefined,
  dbDir: stringOption('db-dir'),
};

const NAMESPACE = 'vla-bench';
const CPU_QUEUE = 'bench-cpu';
const SERVED_MODEL = 'bench-vlm';
const SAMPLES = join(REPO_ROOT, 'data', 'samples', 'vqa-samples');
const BENCHMARK_IDS: BenchmarkId[] = ['mmbench-en', 'ai2d'];

const store = new FileStore();
const log = (line: string): void => console.log(line);
const seconds = (fromMs: number): number => (performance.now() - fromMs) / 1000;
const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);
const mean = (xs: number[]): number => sum(xs) / Math.max(1, xs.length);

/** CPU seconds (user + system) of a process from /proc; 0 where /proc is not there. */
function procCpuSeconds(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return 0;
  }
}
const nodeCpuSeconds = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

/**
 * Two JSON-lines layouts (`<dir>/mmbench`, `<dir>/ai2d`) holding `n` items: the bundled MMBench-EN
 * and AI2D rows, round robin, each copy under a new id (`<id>-r<k>`), the images shared.
 */
function replicateSamples(dir: string, n: number): Record<BenchmarkId, string> {
  const read = (sub: string, keep: (row: Record<string, unknown>) => boolean): Record<string, unknown>[] =>
    readFileSync(join(SAMPLES, sub, ITEMS_FILE), 'utf8')
      .split('\n')
      .filter((l) => l.trim())
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter(keep);
  const base = [
    ...read('mmbench', (r) => r.lang === 'en').map((row) => ({ row, to: 'mmbench' })),
    ...read('mmmu-pro-ai2d', (r) => r.source === 'ai2d').map((row) => ({ row, to: 'ai2d' })),
  ];
  const out: Record<string, string[]> = { mmbench: [], ai2d: [] };
  for (let i = 0; i < n; i++) {
    const { row, to } = base[i % base.length]!;
    out[to]!.push(JSON.stringify({ ...row, id: `${String(row.id)}-r${Math.floor(i / base.length)}` }));
  }
  for (const [to, from] of [['mmbench', 'mmbench'], ['ai2d', 'mmmu-pro-ai2d']] as const) {
    mkdirSync(join(dir, to), { recursive: true });
    cpSync(join(SAMPLES, from, 'images'), join(dir, to, 'images'), { recursive: true });
    writeFileSync(join(dir, to, ITEMS_FILE), out[to]!.join('\n') + '\n');
  }
  return { 'mmbench-en': join(dir, 'mmbench'), ai2d: join(dir, 'ai2d') } as Record<BenchmarkId, string>;
}


/** Activities of one workflow run, from its history: schedule, start and close times. */
interface ActivitySpan {
  name: string;
  scheduled: number;
  started: number;
  closed: number;
}
async function activitySpans(client: Client, workflowId: string): Promise<{ spans: ActivitySpan[]; first: number; last: number }> {
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  const events = history.events ?? [];
  const open = new Map<number, ActivitySpan>();
  const spans: ActivitySpan[] = [];
  let first = Infinity;
  let last = 0;
  for (const e of events) {
    const at = tsMs(e.eventTime);
    first = Math.min(first, at);
    last = Math.max(last, at);
    const sched = e.activityTaskScheduledEventAttributes;
    if (sched) open.set(idOf(e.eventId), { name: sched.activityType?.name ?? '?', scheduled: at, started: at, closed: at });
    const start = e.activityTaskStartedEventAttributes;
    if (start) {
      const s = open.get(idOf(start.scheduledEventId));
      if (s) s.started = at;
    }
    const done = e.activityTaskCompletedEventAttributes;
    if (done) {
      const s = open.get(idOf(done.scheduledEventId));
      if (s) {
        s.closed = at;
        spans.push(s);
      }
    }
  }
  return { spans, first, last };
}

/** Where one sweep's time went. */
interface SweepProfile {
  /** First predictItems scheduled to last completed, over both children. */
  predictWindowS: number;
  batches: number;
  /** Per batch: time between one batch's completion and the next one's start in the same child (workflow task + dispatch). */
  gapMs: number;
  /** Per batch: schedule-to-start. */
  queueMs: number;
  /** Before the first batch: sweep start -> first predictItems started (checkBackend, child start, pendingItems). */
  headS: number;
  /** After the last batch: -> sweep closed (scoreBenchmark, writeReport with Chromium). */
  tailS: number;
  writeReportS: number;
  scoreS: number;
}

async function profileSweep(client: Client, workflowId: string, outputUri: string, model: string): Promise<SweepProfile> {
  const parent = await activitySpans(client, workflowId);
  const children = await Promise.all(BENCHMARK_IDS.map((b) => activitySpans(client, WorkflowIds.vqaEvaluate(outputUri, model, b))));
  const predicts = children.map((c) => c.spans.filter((s) => s.name === 'predictItems').sort((a, b) => a.scheduled - b.scheduled));
  const all = predicts.flat();
  const gaps = predicts.flatMap((ps) => ps.slice(1).map((p, i) => p.started - ps[i]!.closed));
  const firstStart = Math.min(...all.map((p) => p.started));
  const lastClose = Math.max(...all.map((p) => p.closed));
  const report = parent.spans.find((s) => s.name === 'writeReport');
  const scores = children.flatMap((c) => c.spans.filter((s) => s.name === 'scoreBenchmark'));
  return {
    predictWindowS: (lastClose - Math.min(...all.map((p) => p.scheduled))) / 1000,
    batches: all.length,
    gapMs: mean(gaps),
    queueMs: mean(all.map((p) => p.started - p.scheduled)),
    headS: (firstStart - parent.first) / 1000,
    tailS: (parent.last - lastClose) / 1000,
    writeReportS: report ? (report.closed - report.scheduled) / 1000 : 0,
    scoreS: sum(scores.map((s) => s.closed - s.scheduled)) / 1000,
  };
}

interface Measured {
  seconds: number;
  calls: number;
  maxInFlight: number;
  nodeCpu: number;
  serverCpu: number;
}

interface Env {
  client: Client;
  server: DevServer;
  openai: OpenAIServer;
  dir: string;
  sources: Record<BenchmarkId, string>;
  /** The sweep output the throughput runs share (items materialised once). */
  sharedUri: string;
  /** Each benchmark's item set in the shared output (prepareBenchmark's itemsUri). */
  itemsUris: Partial<Record<BenchmarkId, string>>;
}

async function measure(env: Env, fn: () => Promise<void>): Promise<Measured> {
  env.openai.reset();
  const node0 = nodeCpuSeconds();
  const server0 = procCpuSeconds(env.server.pid);
  const t0 = performance.now();
  await fn();
  const stats = env.openai.stats();
  return { seconds: seconds(t0), calls: stats.total, maxInFlight: stats.maxInFlight, nodeCpu: nodeCpuSeconds() - node0, serverCpu: procCpuSeconds(env.server.pid) - server0 };
}

interface Variant {
  name: string;
  batchSize: number;
  concurrency: number;
  evaluations: number;
}

let seq = 0;
function sweepInput(env: Env, outputUri: string, model: string, v: Omit<Variant, 'name'>): VqaSweepInputRaw {
  return {
    models: [{ name: model, backend: 'openai', baseUrl: env.openai.baseUrl, model: SERVED_MODEL }],
    benchmarks: BENCHMARK_IDS.map((benchmark) => ({ benchmark, uri: fileUri(env.sources[benchmark]) })),
    outputUri,
    concurrency: v.concurrency,
    batchSize: v.batchSize,
    maxConcurrentEvaluations: v.evaluations,
    taskQueues: { openai: CPU_QUEUE, gemini: CPU_QUEUE, local: CPU_QUEUE },
  };
}

async function runSweep(env: Env, input: VqaSweepInputRaw, tag: string): Promise<Measured & { result: VqaSweepResult; workflowId: string }> {
  const workflowId = `bench-vqa-${tag}-${++seq}`;
  let result: VqaSweepResult | undefined;
  const m = await measure(env, async () => {
    result = await env.client.workflow.execute<typeof vqaSweep>('vqaSweep', { taskQueue: CPU_QUEUE, workflowId, args: [input] });
  });
  return { ...m, result: result!, workflowId };
}

/** The same items, prompts, images and backend client as predictItems, in a plain promise pool; predictions written create-if-absent. */
async function runDirect(env: Env, items: VqaItem[], concurrency: number): Promise<Measured> {
  const backend = createOpenAIBackend({ baseUrl: env.openai.baseUrl, model: SERVED_MODEL });
  const out = join(env.dir, 'direct', String(++seq));
  return measure(env, () =>
    forEachConcurrent(items, concurrency, async (item) => {
      const definition = BENCHMARKS[item.benchmark];
      const images = await Promise.all(item.images.map(async (p) => ({ mimeType: mimeTypeOf(p.slice(p.lastIndexOf('.') + 1)), data: new Uint8Array(await store.get(joinUri(env.itemsUris[item.benchmark]!, p))) })));
      const prompt = definition.prompt(item);
      const started = performance.now();
      const answer = await backend.generate({ prompt, images, generation: definition.generation });
      // The same object as predictItems writes; the pool has no model identity, so its key is fixed.
      const prediction: VqaPrediction = {
        itemId: item.id,
        benchmark: item.benchmark,
        model: 'direct',
        key: 'direct',
        modelKey: 'direct',
        itemSha256: 'direct',
        generation: definition.generation,
        prompt,
        response: answer.text,
        truncated: answer.truncated === true,
        latencyMs: performance.now() - started,
      };
      await putJson(store, fileUri(join(out, item.benchmark, `${item.id}.json`)), prediction, { ifAbsent: true });
    }),
  );
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'vla-bench-vqa-'));
  const dbDir = cfg.dbDir !== undefined ? mkdtempSync(join(cfg.dbDir, 'vla-bench-vqa-db-')) : dir;
  const cleanups = new Cleanups();
  let worker: { worker: Worker; run: Promise<void> } | undefined;
  const totalStart = performance.now();
  try {
    // --- setup -------------------------------------------------------------------------------
    const N = cfg.items;
    const C = cfg.concurrency;
    let t0 = performance.now();
    const sources = replicateSamples(join(dir, 'src'), N);
    const { server, native, client, workflowBundle } = await startBenchTemporal({ dir, dbDir, namespace: NAMESPACE, cleanups, log });
    const openai = await createOpenAIServer({ models: [SERVED_MODEL], latencyMs: cfg.latencyMs, recordBodies: false });
    cleanups.add('openai server', () => openai.close());
    const cpu = await createCpuWorker({ connection: native, namespace: NAMESPACE, taskQueue: CPU_QUEUE, workflowBundle, deps: { store } });
    worker = { worker: cpu, run: cpu.run() };
    worker.run.catch((err: unknown) => log(`worker stopped: ${(err as Error).message}`));

    // The throughput runs share one sweep output whose items are materialised here, once.
    const sharedUri = fileUri(join(dir, 'shared'));
    const { store: vqaStore } = createVqaRuntime({ store });
    const items: VqaItem[] = [];
    const itemsUris: Partial<Record<BenchmarkId, string>> = {};
    for (const benchmark of BENCHMARK_IDS) {
      const { itemsUri } = await vqaStore.prepareBenchmark({ source: { benchmark, uri: fileUri(sources[benchmark]) }, outputUri: sharedUri });
      itemsUris[benchmark] = itemsUri;
      const lines = (await store.get(joinUri(itemsUri, ITEMS_FILE))).toString('utf8').split('\n').filter((l) => l.trim());
      items.push(...lines.map((l) => VqaItem.parse(JSON.parse(l))));
    }
    const perBenchmark = BENCHMARK_IDS.map((b) => `${items.filter((i) => i.benchmark === b).length} ${b}`).join(' + ');
    log(`${items.length} items (${perBenchmark}), dev server ${server.address}, openai wire server ${openai.baseUrl} (latency ${cfg.latencyMs} ms); setup ${seconds(t0).toFixed(1)} s`);
    const env: Env = { client, server, openai, dir, sources, sharedUri, itemsUris };

    // --- 1. throughput: vqaSweep vs a promise pool ------------------------------------------
    const biggest = Math.max(...cfg.batchSizes);
    const variants: Variant[] = [
      ...cfg.batchSizes.map((b): Variant => ({ name: `sweep batch ${b}, 1 child x ${C}`, batchSize: b, concurrency: C, evaluations: 1 })),
      ...(C >= 2 ? [{ name: `sweep batch ${biggest}, 2 children x ${Math.floor(C / 2)}`, batchSize: biggest, concurrency: Math.floor(C / 2), evaluations: 2 }] : []),
    ];
    log(`\nthroughput: ${N} items at ${C} requests in flight, ${cfg.rounds} round(s) after a warm-up; ideal ${((C * 1000) / cfg.latencyMs).toFixed(1)} items/s`);
    t0 = performance.now();
    await runDirect(env, items.slice(0, 2 * C), C);
    const warmUri = fileUri(join(dir, 'warm'));
    await runSweep(env, { ...sweepInput(env, warmUri, 'warm', { batchSize: 16, concurrency: C, evaluations: 2 }), limit: 4 }, 'warm');
    log(`  warm-up ${seconds(t0).toFixed(1)} s`);

    type Side = { name: string; variant?: Variant; runs: Measured[]; profile?: SweepProfile };
    const sides: Side[] = [{ name: `direct (promise pool x ${C})`, runs: [] }, ...variants.map((v): Side => ({ name: v.name, variant: v, runs: [] }))];
    const describe = (r: Measured): string =>
      `${r.seconds.toFixed(2)} s, ${r.calls} calls (max ${r.maxInFlight} in flight), ${(N / r.seconds).toFixed(2)} items/s, CPU node ${r.nodeCpu.toFixed(1)} s + dev server ${r.serverCpu.toFixed(1)} s`;
    for (let round = 0; round < cfg.rounds; round++) {
      for (const side of round % 2 === 0 ? sides : [...sides].reverse()) {
        if (!side.variant) {
          side.runs.push(await runDirect(env, items, C));
        } else {
          const model = `m${++seq}`;
          const r = await runSweep(env, sweepInput(env, sharedUri, model, side.variant), 'tput');
          if (r.result.predictions.made !== N || r.calls !== N) throw new Error(`${side.name}: made ${r.result.predictions.made}, ${r.calls} calls; expected ${N}`);
          side.runs.push(r);
          side.profile = await profileSweep(client, r.workflowId, sharedUri, model);
        }
        log(`  ${side.name}: ${describe(side.runs[side.runs.length - 1]!)}`);
      }
    }

    // --- 2. resume: half the predictions deleted vs fresh -------------------------------------
    const resumeBatch = cfg.resumeBatchSize ?? biggest;
    const resumeVariant = { batchSize: resumeBatch, concurrency: C, evaluations: 1 };
    log(`\nresume: batch ${resumeBatch}, 1 child x ${C}`);
    const resumeUri = fileUri(join(dir, 'resume'));
    const fresh = await runSweep(env, sweepInput(env, resumeUri, 'resume', resumeVariant), 'fresh');
    log(`  fresh sweep (items materialised in it): ${describe(fresh)}`);
    const nothing = await runSweep(env, sweepInput(env, resumeUri, 'resume', resumeVariant), 'noop');
    log(`  re-run with nothing missing: ${describe(nothing)}`);
    // Every other item of each benchmark loses its prediction.
    const deleted = items.filter((_, i) => i % 2 === 0);
    // A prediction is `<item>.<key>.json`; the key is a hash the bench need not recompute.
    const deletedNames = new Set(deleted.map((i) => `${i.benchmark}/${i.id}`));
    const predictionsUri = joinUri(resumeUri, 'predictions', 'resume');
    const doomed: string[] = [];
    for await (const o of store.list(`${predictionsUri}/`)) {
      const m = /^(.+)\.[0-9a-f]{32}\.json$/.exec(o.uri.slice(predictionsUri.length + 1));
      if (m && deletedNames.has(m[1]!)) doomed.push(o.uri);
    }
    await Promise.all(doomed.map((uri) => store.delete(uri)));
    const resumed = await runSweep(env, sweepInput(env, resumeUri, 'resume', resumeVariant), 'resume');
    log(`  re-run with ${deleted.length} predictions deleted: ${describe(resumed)}`);
    const resumeOk = resumed.calls === deleted.length && resumed.result.predictions.made === deleted.length && resumed.result.predictions.reused === N - deleted.length;
    const noopOk = nothing.calls === 0 && nothing.result.predictions.made === 0;
    let stored = 0;
    for await (const o of store.list(`${joinUri(resumeUri, 'predictions', 'resume')}/`)) if (o.uri.endsWith('.json')) stored++;

    // --- report -------------------------------------------------------------------------------
    console.log(`\n## throughput (N=${N}, C=${C}, latency ${cfg.latencyMs} ms, ideal ${((C * 1000) / cfg.latencyMs).toFixed(1)} items/s)`);
    const direct = sides[0]!;
    const directS = sum(direct.runs.map((r) => r.seconds));
    printTable([
      ['side', 'runs', 'seconds (mean)', 'items/s', 'max in flight', 'CPU s node + dev server (mean)', 'ratio sweep/direct'],
      ...sides.map((side) => {
        const secs = sum(side.runs.map((r) => r.seconds));
        const m = (f: (r: Measured) => number): string => mean(side.runs.map(f)).toFixed(1);
        return [
          side.name,
          String(side.runs.length),
          (secs / side.runs.length).toFixed(2),
          ((N * side.runs.length) / secs).toFixed(2),
          String(Math.max(...side.runs.map((r) => r.maxInFlight))),
          `${m((r) => r.nodeCpu)} + ${m((r) => r.serverCpu)}`,
          side.variant ? (directS / secs).toFixed(3) : '',
        ];
      }),
    ]);
    const profiled = sides.filter((s): s is Side & { profile: SweepProfile } => s.profile !== undefined);
    console.log(`\nwhere each sweep variant's time goes (its last run, from the histories):`);
    const col = (f: (p: SweepProfile, s: Side) => string): string[] => profiled.map((s) => f(s.profile, s));
    printTable([
      ['part', ...profiled.map((s) => s.name)],
      ['predict window (first batch scheduled -> last done), s', ...col((p) => p.predictWindowS.toFixed(2))],
      ['  items/s in it (ratio to direct)', ...col((p) => `${(N / p.predictWindowS).toFixed(2)} (${((directS / direct.runs.length) / p.predictWindowS).toFixed(3)})`)],
      ['  predictItems batches', ...col((p) => String(p.batches))],
      ['  gap between batches of a child, ms', ...col((p) => p.gapMs.toFixed(0))],
      ['  batch schedule-to-start, ms', ...col((p) => p.queueMs.toFixed(0))],
      ['before the first batch (check, child start, pendingItems), s', ...col((p) => p.headS.toFixed(2))],
      ['after the last batch, s', ...col((p) => p.tailS.toFixed(2))],
      ['  scoreBenchmark (both), s', ...col((p) => p.scoreS.toFixed(2))],
      ['  writeReport (Chromium chart), s', ...col((p) => p.writeReportS.toFixed(2))],
    ]);

    console.log(`\n## resume (N=${N}, batch ${resumeBatch}, C=${C})`);
    const overhead = nothing.seconds;
    printTable([
      ['run', 'seconds', 'calls', 'made / reused'],
      ['fresh sweep', fresh.seconds.toFixed(2), String(fresh.calls), `${fresh.result.predictions.made} / ${fresh.result.predictions.reused}`],
      ['re-run, nothing missing', nothing.seconds.toFixed(2), String(nothing.calls), `${nothing.result.predictions.made} / ${nothing.result.predictions.reused}`],
      [`re-run, ${deleted.length} of ${N} deleted`, resumed.seconds.toFixed(2), String(resumed.calls), `${resumed.result.predictions.made} / ${resumed.result.predictions.reused}`],
    ]);
    console.log(
      `resume / fresh = ${(resumed.seconds / fresh.seconds).toFixed(3)} (half the items: ~0.5 plus fixed overhead; ` +
        `expected from the no-op re-run ${((overhead + (deleted.length / N) * (fresh.seconds - overhead)) / fresh.seconds).toFixed(3)})`,
    );
    console.log(`requests made by the resume run: ${resumed.calls} (deleted ${deleted.length}) -> ${resumeOk ? 'exactly the deleted ones' : 'MISMATCH'}; predictions stored after it: ${stored} / ${N}`);
    console.log(`\nratio = direct wall / sweep wall (goal >= 0.9). machine: ${availableParallelism()} cores (${cpus()[0]?.model ?? 'cpu'})`);
    console.log(`total ${seconds(totalStart).toFixed(0)} s`);
    if (!resumeOk || !noopOk || stored !== N) throw new Error(`resume redid the wrong work: ${resumed.calls} calls for ${deleted.length} deleted, no-op re-run ${nothing.calls} calls, ${stored} of ${N} stored`);
  } finally {
    if (worker) {
      if (worker.worker.getState() === 'RUNNING') worker.worker.shutdown();
      await worker.run.catch(() => undefined);
    }
    await cleanups.run();
    rmSync(dir, { recursive: true, force: true });
    if (dbDir !== dir) rmSync(dbDir, { recursive: true, force: true });
  }
}

await main();
