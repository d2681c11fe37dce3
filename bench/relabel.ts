/**
 * The relabel pipeline (relabelDataset -> relabelTrajectory children -> labelGemini on its own task
 * queue) against a plain promise pool doing the same work at the same concurrency without Temporal,
 * both against one local Gemini wire server with a fixed latency. Then a second pipeline run under a
 * server-side rate limit: achieved call rate / limit, zero lost, zero duplicated.
 *
 *   npx tsx bench/relabel.ts [--trajectories=500] [--concurrency=16] [--children=16,32] [--latency-ms=2000]
 *                            [--rounds=1] [--rate=5] [--rate-trajectories=100] [--rate-concurrency=32] [--db-dir=DIR]
 *
 * Each option can also come from the environment: BENCH_TRAJECTORIES, BENCH_CONCURRENCY,
 * BENCH_CHILDREN, BENCH_LATENCY_MS, BENCH_ROUNDS, BENCH_RATE, BENCH_RATE_TRAJECTORIES,
 * BENCH_RATE_CONCURRENCY, BENCH_DB_DIR.
 *
 * Everything runs here: its own Temporal dev server (SQLite in a temp dir) on free loopback ports,
 * the Gemini wire server of test/fixtures, the CPU and Gemini workers in this process. The run also
 * reads a sample of child histories to show where the pipeline's time per trajectory goes, and the
 * CPU time of this process and of the dev server per run. Everything is removed at the end.
 */
import { WorkflowIds } from '../data-schemas/workflow-ids';
import type { Client, Connection } from '@temporalio/client';
import type { NativeConnection, Worker } from '@temporalio/worker';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { readManifest, trajectoryRecordPath } from '../activities/data';
import { relabelRecordUri } from '../activities/relabel/activities';
import { cleanTrajectory } from '../activities/relabel/clean';
import { createGeminiLabeler, type GeminiLabeler } from '../activities/relabel/gemini/labeler';
import { buildDLanRecord } from '../activities/relabel/record';
import { FileStore, putJson, sha256Hex } from '../activities/store';
import { DRobTrajectory } from '../data-schemas/d-rob';
import { ChunkAggregation, labelerIdentity, labelerKey, type LabelerChoice, type RelabelDatasetResult } from '../data-schemas/relabel';
import { fileUri, joinUri } from '../data-schemas/uri';
import { createGeminiServer, type GeminiServer, type RecordedRequest } from '../test/fixtures/gemini-server';
import { importBridgeSample, replicateDataset } from '../test/helpers/datasets';
import { createCpuWorker } from '../workers/cpu';
import { createGeminiWorker } from '../workers/gemini';
import type { relabelDataset } from '../workflows';
import { forEachConcurrent } from '../activities/data/pool';
import { idOf, tsMs } from './history';
import { recordIds } from './relabel-check';
import { printTable } from './table';
import { Cleanups, startBenchTemporal } from './temporal';
import { option, stringOption } from './options';



const concurrency = option('concurrency', 16);
const cfg = {
  trajectories: option('trajectories', 500),
  concurrency,
  /** Pipeline variants: child workflows in flight (maxConcurrent); the Gemini worker's slots stay at `concurrency`. */
  children: (stringOption('children') ?? `${concurrency},${2 * concurrency}`).split(',').map((v) => {
    const k = Number(v);
    if (!Number.isSafeInteger(k) || k <= 0) throw new Error(`--children must be positive integers separated by commas, got "${v}"`);
    return k;
  }),
  latencyMs: option('latency-ms', 2000),
  rounds: option('rounds', 1),
  rate: option('rate', 5),
  rateTrajectories: option('rate-trajectories', 100),
  rateConcurrency: option('rate-concurrency', 32),
  /** Folder of the dev server's SQLite file (e.g. /dev/shm to take the disk out); default the temp dir. */
  dbDir: stringOption('db-dir'),
};

const API_KEY = 'AIzaBENCH-key-for-the-local-gemini-wire-server-01';
const GEMINI = { name: 'gemini', model: 'gemini-2.5-flash' } as const satisfies LabelerChoice;
const NAMESPACE = 'vla-bench';
const CPU_QUEUE = 'bench-cpu';
/** Same as the activity's MAX_KEY_FRAMES (activities/relabel/activities.ts). */
const MAX_KEY_FRAMES = 8;
const AGGREGATION = ChunkAggregation.parse({});
/** High enough never to bind in the throughput comparison. */
const UNBOUND_RATE = 1000;

const store = new FileStore();
const log = (line: string): void => console.log(line);
const seconds = (fromMs: number): number => (performance.now() - fromMs) / 1000;

/** CPU seconds (user + system) of a process from /proc; 0 where /proc is not there. */
function procCpuSeconds(pid: number): number {
  try {
    // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
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
 * The baseline for one trajectory: what the child workflow's three activities do (relabelStatus,
 * labelGemini, writeRelabelRecord), as one would write it by hand without Temporal: the same store
 * reads, the same key frames, cleaned trajectory and client call, the same record written
 * create-if-absent. Reads the trajectory once where the activities read it twice.
 */
async function baselineOne(labeler: GeminiLabeler, datasetUri: string, outputUri: string, trajectoryId: string): Promise<void> {
  const recordUri = relabelRecordUri(outputUri, trajectoryId);
  if (await store.head(recordUri)) return;
  const path = trajectoryRecordPath(trajectoryId);
  const bytes = await store.get(joinUri(datasetUri, path));
  const trajectory = DRobTrajectory.parse(JSON.parse(bytes.toString('utf8')));
  const camera = trajectory.cameras.includes('image_0') ? 'image_0' : trajectory.cameras[0]!;
  const every = Math.max(1, Math.ceil(trajectory.steps.length / MAX_KEY_FRAMES));
  const keySteps = trajectory.steps.filter((s) => s.index % every === 0 && s.frames[camera] !== undefined);
  const keyFrames = await Promise.all(keySteps.map(async (s) => ({ step: s.index, jpeg: await store.get(joinUri(datasetUri, s.frames[camera]!)) })));
  const cleaned = cleanTrajectory(trajectory);
  const outcome = await labeler.label({ instruction: trajectory.instruction, cleaned, keyFrames, feedback: [] });
  if (!outcome.ok) throw new Error(`baseline: ${trajectoryId}: ${outcome.kind}: ${outcome.problem}`);
  const record = buildDLanRecord({
    trajectory,
    cleaned,
    segments: outcome.segments,
    labeler: labelerIdentity(GEMINI),
    sourceDataset: datasetUri,
    sourceRecord: path,
    sourceRecordSha256: sha256Hex(bytes),
    labeledAt: new Date().toISOString(),
    aggregation: AGGREGATION,
    keyFrameCamera: camera,
  });
  await putJson(store, recordUri, record, { ifAbsent: true });
}


/** Where one workflow run's time goes, read from its history. */
interface HistoryProfile {
  wallMs: number;
  workflowTasks: number;
  /** Schedule-to-start and start-to-close of each activity type (summed if it ran twice). */
  activities: Map<string, { count: number; queueMs: number; runMs: number }>;
  /** Workflow tasks: scheduled -> started (queue), started -> completed (worker). */
  wftQueueMs: number;
  wftRunMs: number;
}

async function profileHistory(client: Client, workflowId: string): Promise<HistoryProfile> {
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  const events = history.events ?? [];
  const scheduled = new Map<number, { name: string; at: number }>();
  const started = new Map<number, number>();
  const profile: HistoryProfile = { wallMs: 0, workflowTasks: 0, activities: new Map(), wftQueueMs: 0, wftRunMs: 0 };
  let wftScheduledAt = 0;
  let wftStartedAt = 0;
  let first = 0;
  for (const e of events) {
    const at = tsMs(e.eventTime);
    const id = idOf(e.eventId);
    if (e.workflowExecutionStartedEventAttributes) first = at;
    if (e.workflowExecutionCompletedEventAttributes) profile.wallMs = at - first;
    if (e.workflowTaskScheduledEventAttributes) wftScheduledAt = at;
    if (e.workflowTaskStartedEventAttributes) {
      wftStartedAt = at;
      profile.wftQueueMs += at - wftScheduledAt;
    }
    if (e.workflowTaskCompletedEventAttributes) {
      profile.workflowTasks++;
      profile.wftRunMs += at - wftStartedAt;
    }
    const sched = e.activityTaskScheduledEventAttributes;
    if (sched) scheduled.set(id, { name: sched.activityType?.name ?? '?', at });
    const start = e.activityTaskStartedEventAttributes;
    if (start) started.set(idOf(start.scheduledEventId), at);
    const done = e.activityTaskCompletedEventAttributes;
    if (done) {
      const s = scheduled.get(idOf(done.scheduledEventId));
      const st = started.get(idOf(done.scheduledEventId));
      if (s && st !== undefined) {
        const a = profile.activities.get(s.name) ?? { count: 0, queueMs: 0, runMs: 0 };
        a.count++;
        a.queueMs += st - s.at;
        a.runMs += at - st;
        profile.activities.set(s.name, a);
      }
    }
  }
  return profile;
}

interface Env {
  client: Client;
  connection: Connection;
  native: NativeConnection;
  gemini: GeminiServer;
  datasetUri: string;
  ids: string[];
  dir: string;
  serverPid: number;
}

/** Wall and CPU of one measured run: this Node process (workers, client, Gemini server) and the dev server. */
interface Measured {
  seconds: number;
  calls: number;
  /** Model calls in flight at once, seen by the Gemini server. */
  maxInFlight: number;
  nodeCpu: number;
  serverCpu: number;
}

async function measure(env: Env, fn: () => Promise<void>): Promise<Measured> {
  env.gemini.reset();
  const node0 = nodeCpuSeconds();
  const server0 = procCpuSeconds(env.serverPid);
  const t0 = performance.now();
  await fn();
  const stats = env.gemini.stats();
  return { seconds: seconds(t0), calls: stats.total, maxInFlight: stats.maxInFlight, nodeCpu: nodeCpuSeconds() - node0, serverCpu: procCpuSeconds(env.serverPid) - server0 };
}

interface PipelineRun extends Measured {
  result: RelabelDatasetResult;
  workflowId: string;
}

/** One side of the throughput comparison: the promise pool, or the pipeline with a number of children in flight. */
interface Side {
  name: 'baseline' | 'pipeline';
  children: number;
  runs: Measured[];
  profile?: RunProfile;
}
const label = (side: Side): string => (side.name === 'baseline' ? 'baseline (promise pool)' : `pipeline, ${side.children} children`);

/** Averages over a sample of one run's children, and the parent's own figures. */
interface RunProfile {
  sampled: number;
  cycleMs: number;
  childMs: number;
  wftQueueMs: number;
  wftRunMs: number;
  workflowTasks: number;
  activitiesPerChild: number;
  act(name: string, field: 'queueMs' | 'runMs'): number;
  parentTasksPerChild: number;
  parentTaskMs: number;
  finalizeMs: number;
}

async function profileRun(env: Env, run: PipelineRun, children: number, n: number): Promise<RunProfile> {
  const sample = env.ids.slice(0, n).filter((_, i) => i % Math.max(1, Math.floor(n / 50)) === 0);
  const profiles = await Promise.all(sample.map((id) => profileHistory(env.client, WorkflowIds.relabelTrajectory(run.result.outputUri, labelerKey(GEMINI), id))));
  const avg = (f: (p: HistoryProfile) => number): number => profiles.reduce((t, p) => t + f(p), 0) / profiles.length;
  // The parent's latest run (the one that finalizes); with N <= childrenPerRun it is the only one.
  const parent = await profileHistory(env.client, run.workflowId);
  const finalize = parent.activities.get('finalizeRelabel');
  return {
    sampled: profiles.length,
    cycleMs: (children * run.seconds * 1000) / n,
    childMs: avg((p) => p.wallMs),
    wftQueueMs: avg((p) => p.wftQueueMs),
    wftRunMs: avg((p) => p.wftRunMs),
    workflowTasks: avg((p) => p.workflowTasks),
    activitiesPerChild: avg((p) => [...p.activities.values()].reduce((t, a) => t + a.count, 0)),
    act: (name, field) => avg((p) => p.activities.get(name)?.[field] ?? 0),
    parentTasksPerChild: parent.workflowTasks / n,
    parentTaskMs: (parent.wftQueueMs + parent.wftRunMs) / Math.max(1, parent.workflowTasks),
    finalizeMs: (finalize?.queueMs ?? 0) + (finalize?.runMs ?? 0),
  };
}

const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);

let runSeq = 0;
async function runPipeline(env: Env, geminiQueue: string, n: number, maxConcurrent: number, tag: string): Promise<PipelineRun> {
  const workflowId = `bench-relabel-${tag}-${++runSeq}`;
  const outputUri = fileUri(join(env.dir, 'labels', workflowId));
  let result: RelabelDatasetResult | undefined;
  const m = await measure(env, async () => {
    result = await env.client.workflow.execute<typeof relabelDataset>('relabelDataset', {
      taskQueue: CPU_QUEUE,
      workflowId,
      args: [{ datasetUri: env.datasetUri, outputUri, labeler: GEMINI, maxConcurrent, limit: n, geminiTaskQueue: geminiQueue, maxReprompts: 0 }],
    });
  });
  if (result?.counts.done !== n) throw new Error(`pipeline ${workflowId}: ${JSON.stringify(result?.counts)}; expected ${n} done`);
  return { ...m, result, workflowId };
}

function runBaseline(env: Env, labeler: GeminiLabeler, n: number, concurrency: number, tag: string): Promise<Measured> {
  const outputUri = fileUri(join(env.dir, 'labels', `bench-baseline-${tag}-${++runSeq}`));
  return measure(env, () => forEachConcurrent(env.ids.slice(0, n), concurrency, (id) => baselineOne(labeler, env.datasetUri, outputUri, id)));
}

/** Calls per second between two arrival times. */
function rateBetween(reqs: readonly RecordedRequest[], from: number, to: number): number {
  const inWindow = reqs.filter((r) => r.at >= from && r.at < to).length;
  return inWindow / ((to - from) / 1000);
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'vla-bench-relabel-'));
  const dbDir = cfg.dbDir !== undefined ? mkdtempSync(join(cfg.dbDir, 'vla-bench-relabel-db-')) : dir;
  const cleanups = new Cleanups();
  const workers: { worker: Worker; run: Promise<void> }[] = [];
  const startWorker = (worker: Worker): { worker: Worker; run: Promise<void> } => {
    const w = { worker, run: worker.run() };
    // A worker that dies fails the run it serves; keep the rejection from going unhandled.
    w.run.catch((err: unknown) => log(`worker ${worker.options.taskQueue} stopped: ${(err as Error).message}`));
    workers.push(w);
    return w;
  };
  const stopWorker = async (w: { worker: Worker; run: Promise<void> }): Promise<void> => {
    if (w.worker.getState() === 'RUNNING') w.worker.shutdown();
    await w.run.catch(() => undefined);
  };
  const totalStart = performance.now();
  try {
    // --- setup -------------------------------------------------------------------------------
    const n = Math.max(cfg.trajectories, cfg.rateTrajectories);
    let t0 = performance.now();
    const bridge = fileUri(join(dir, 'bridge'));
    const datasetUri = fileUri(join(dir, `bridge-x${Math.ceil(n / 25)}`));
    await importBridgeSample(store, bridge);
    await replicateDataset(store, bridge, datasetUri, Math.ceil(n / 25));
    const ids = (await readManifest(store, datasetUri)).trajectories.map((t) => t.id);
    log(`dataset: ${ids.length} trajectories (25 Bridge episodes x ${Math.ceil(n / 25)}) in ${seconds(t0).toFixed(1)} s`);

    t0 = performance.now();
    const { server, connection, native, client, workflowBundle } = await startBenchTemporal({ dir, dbDir, namespace: NAMESPACE, cleanups, log });
    const gemini = await createGeminiServer({ apiKey: API_KEY, latencyMs: cfg.latencyMs, recordBodies: false });
    cleanups.add('gemini server', () => gemini.close());
    startWorker(await createCpuWorker({ connection: native, namespace: NAMESPACE, taskQueue: CPU_QUEUE, workflowBundle, deps: { store } }));
    const geminiDeps = { store, gemini: { apiKey: API_KEY, baseUrl: gemini.baseUrl } };
    const fastQueue = 'bench-gemini-unbound';
    const fast = startWorker(
      await createGeminiWorker({ connection: native, namespace: NAMESPACE, taskQueue: fastQueue, deps: geminiDeps, maxCallsPerSecond: UNBOUND_RATE, maxConcurrentCalls: cfg.concurrency }),
    );
    log(`temporal dev server ${server.address} (SQLite in ${dbDir}), gemini wire server ${gemini.baseUrl} (latency ${cfg.latencyMs} ms), workers up in ${seconds(t0).toFixed(1)} s`);
    const env: Env = { client, connection, native, gemini, datasetUri, ids, dir, serverPid: server.pid };
    const labeler = createGeminiLabeler({ apiKey: API_KEY, model: GEMINI.model, baseUrl: gemini.baseUrl });

    // --- 1. throughput: pipeline vs plain promise pool -------------------------------------
    const N = cfg.trajectories;
    const C = cfg.concurrency;
    log(
      `\nthroughput: ${N} trajectories at concurrency ${C} (Gemini worker slots ${C}; pipeline children ${cfg.children.join(' and ')}), ` +
        `${cfg.rounds} round(s) of one run per variant after a warm-up wave of ${C}; ideal ${((C * 1000) / cfg.latencyMs).toFixed(1)} calls/s`,
    );
    await runBaseline(env, labeler, C, C, 'warm');
    await runPipeline(env, fastQueue, C, C, 'warm');
    const sides: Side[] = [{ name: 'baseline', children: C, runs: [] }, ...cfg.children.map((k): Side => ({ name: 'pipeline', children: k, runs: [] }))];
    const describe = (r: Measured): string =>
      `${r.seconds.toFixed(2)} s, ${r.calls} calls (max ${r.maxInFlight} in flight), ${(N / r.seconds).toFixed(2)} traj/s, CPU node ${r.nodeCpu.toFixed(1)} s + server ${r.serverCpu.toFixed(1)} s`;
    for (let round = 0; round < cfg.rounds; round++) {
      // One run per variant and round, the order reversed every other round (the gaps are large, drift small).
      for (const side of round % 2 === 0 ? sides : [...sides].reverse()) {
        if (side.name === 'baseline') {
          side.runs.push(await runBaseline(env, labeler, N, C, 'tput'));
        } else {
          const r = await runPipeline(env, fastQueue, N, side.children, 'tput');
          side.runs.push(r);
          // Child ids derive from (dataset, trajectory, labeler): read the histories before the next run reuses them.
          side.profile = await profileRun(env, r, side.children, N);
        }
        log(`  ${label(side)}: ${describe(side.runs[side.runs.length - 1]!)}`);
      }
    }

    // --- 2. rate limit ------------------------------------------------------------------------
    await stopWorker(fast);
    const R = cfg.rate;
    const M = cfg.rateTrajectories;
    const limitedQueue = 'bench-gemini-limited';
    startWorker(
      await createGeminiWorker({ connection: native, namespace: NAMESPACE, taskQueue: limitedQueue, deps: geminiDeps, maxCallsPerSecond: R, maxConcurrentCalls: cfg.rateConcurrency }),
    );
    log(`\nrate limit: ${M} trajectories, maxCallsPerSecond ${R}, concurrency ${cfg.rateConcurrency} (unbound it would reach ${((cfg.rateConcurrency * 1000) / cfg.latencyMs).toFixed(0)} calls/s)`);
    const limited = await runPipeline(env, limitedQueue, M, cfg.rateConcurrency, 'rate');
    const reqs = [...gemini.requests].sort((a, b) => a.at - b.at);
    const firstAt = reqs[0]!.at;
    const lastAt = reqs[reqs.length - 1]!.at;
    // The first 2 s are the ramp (the limiter starts with a full bucket); the drain at the end has
    // fewer tasks than the limit allows. Steady rate: between the 20th and the 80th percentile call.
    const rampMs = 2000;
    const at = (q: number): number => reqs[Math.floor(q * (reqs.length - 1))]!.at;
    const steadyCalls = Math.floor(0.8 * (reqs.length - 1)) - Math.floor(0.2 * (reqs.length - 1));
    const steady = steadyCalls / ((at(0.8) - at(0.2)) / 1000);
    const overall = reqs.length > 1 ? (reqs.length - 1) / ((lastAt - firstAt) / 1000) : 0;
    let maxWindow = 0;
    const windowMs = 5000;
    for (let from = firstAt + rampMs; from + windowMs <= lastAt + 1; from += 250) maxWindow = Math.max(maxWindow, rateBetween(reqs, from, from + windowMs));
    const okCalls = reqs.filter((r) => r.reply === 'default').length;
    const wanted = ids.slice(0, M).sort();
    const got = (await recordIds(store, limited.result.outputUri)).sort();
    const lost = wanted.filter((id) => !got.includes(id));
    const dupRecords = got.length - new Set(got).size;
    const manifestIds = (await readManifest(store, limited.result.outputUri)).trajectories.map((t) => t.id).sort();
    // Each done trajectory needed at least one successful call; as many calls as trajectories means exactly one each.
    const duplicatedCalls = okCalls - M;

    // --- report -------------------------------------------------------------------------------
    console.log(`\n## throughput (N=${N}, C=${C}, latency ${cfg.latencyMs} ms)`);
    const baseS = sum(sides[0]!.runs.map((r) => r.seconds));
    printTable([
      ['side', 'runs', 'seconds (mean)', 'traj/s', 'calls/s', 'CPU s node + dev server (mean)', 'ratio pipeline/baseline'],
      ...sides.map((side) => {
        const secs = sum(side.runs.map((r) => r.seconds));
        const mean = (f: (r: Measured) => number): string => (sum(side.runs.map(f)) / side.runs.length).toFixed(1);
        return [
          label(side),
          String(side.runs.length),
          (secs / side.runs.length).toFixed(2),
          ((N * side.runs.length) / secs).toFixed(2),
          (sum(side.runs.map((r) => r.calls)) / secs).toFixed(2),
          `${mean((r) => r.nodeCpu)} + ${mean((r) => r.serverCpu)}`,
          side.name === 'baseline' ? '' : (baseS / secs).toFixed(3),
        ];
      }),
    ]);
    const profiled = sides.filter((s): s is Side & { profile: RunProfile } => s.profile !== undefined);
    console.log(`\nper-trajectory time in each variant's last run, ms (average over ${profiled[0]?.profile.sampled ?? 0} children, from their histories):`);
    const col = (f: (p: RunProfile) => string): string[] => profiled.map((s) => f(s.profile));
    printTable([
      ['part', ...profiled.map(label)],
      ['child slot cycle (children x wall / N)', ...col((p) => p.cycleMs.toFixed(0))],
      ['  child workflow wall', ...col((p) => p.childMs.toFixed(0))],
      ['    labelGemini run (model latency + client)', ...col((p) => p.act('labelGemini', 'runMs').toFixed(0))],
      ['    labelGemini schedule-to-start', ...col((p) => p.act('labelGemini', 'queueMs').toFixed(0))],
      ...['relabelStatus', 'writeRelabelRecord'].map((name) => [`    ${name} schedule-to-close`, ...col((p) => (p.act(name, 'queueMs') + p.act(name, 'runMs')).toFixed(0))]),
      ['    workflow tasks: queue + run', ...col((p) => `${p.wftQueueMs.toFixed(0)} + ${p.wftRunMs.toFixed(0)} (${p.workflowTasks.toFixed(1)} tasks)`)],
      ['  parent: slot refill + child start', ...col((p) => (p.cycleMs - p.childMs).toFixed(0))],
      ['parent workflow tasks per child', ...col((p) => `${p.parentTasksPerChild.toFixed(2)} (${p.parentTaskMs.toFixed(0)} ms each)`)],
      ['finalizeRelabel (once per run)', ...col((p) => p.finalizeMs.toFixed(0))],
      ['activities per child', ...col((p) => p.activitiesPerChild.toFixed(1))],
    ]);
    console.log(`machine: ${availableParallelism()} cores`);

    console.log(`\n## rate limit (R=${R}/s, M=${M}, concurrency ${cfg.rateConcurrency})`);
    printTable([
      ['measure', 'value'],
      ['wall', `${limited.seconds.toFixed(1)} s`],
      ['calls at the server', String(reqs.length)],
      ['first 2 s (ramp)', `${reqs.filter((r) => r.at < firstAt + rampMs).length} calls`],
      ['steady rate (20th..80th percentile call)', `${steady.toFixed(2)} /s`],
      ['achieved / R', (steady / R).toFixed(3)],
      ['overall rate first..last call', `${overall.toFixed(2)} /s (${(overall / R).toFixed(3)} x R)`],
      ['max 5 s window after the ramp', `${maxWindow.toFixed(2)} /s (${(maxWindow / R).toFixed(3)} x R)`],
      ['records / trajectories', `${got.length} / ${M}`],
      ['lost', String(lost.length)],
      ['duplicate records', String(dupRecords)],
      ['D_lan manifest matches', String(JSON.stringify(manifestIds) === JSON.stringify(wanted))],
      ['successful calls - trajectories', String(duplicatedCalls)],
    ]);
    console.log(`\nratio = baseline wall time / pipeline wall time (goal >= 0.9); achieved/R goal >= 0.95 and never above ~1.05 sustained (max 5 s window).`);
    console.log(`total ${seconds(totalStart).toFixed(0)} s`);
    if (lost.length > 0 || dupRecords > 0 || duplicatedCalls !== 0 || JSON.stringify(manifestIds) !== JSON.stringify(wanted)) {
      throw new Error(`rate-limit run lost or duplicated work: lost ${lost.join(', ') || 'none'}, duplicate records ${dupRecords}, extra calls ${duplicatedCalls}`);
    }
  } finally {
    for (const w of workers) await stopWorker(w);
    await cleanups.run();
    rmSync(dir, { recursive: true, force: true });
    if (dbDir !== dir) rmSync(dbDir, { recursive: true, force: true });
  }
}

await main();
