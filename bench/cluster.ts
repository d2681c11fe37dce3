/**
 * The cluster profile (PostgreSQL + Temporal server v1.29.1 with mTLS + versitygw, `clusterUp` on
 * loopback) under the relabel pipeline, two measurements against one local Gemini wire server with
 * a fixed latency:
 *
 * 1. Throughput, cluster vs dev server: the same N trajectories, concurrency, latency and
 *    in-process CPU + Gemini workers (file store: both sides are this one host), once on the
 *    Temporal CLI dev server (SQLite) and once on the cluster; rounds alternate the order.
 * 2. Scale-out: model latency as the bound, each Gemini worker a separate `vla worker gemini`
 *    process started as a host (`startHost`, isolation 'processes' on loopback) with K calls in
 *    flight; 1 host, then 2 hosts on the same queue. Data in the cluster's S3 store, the CPU
 *    worker in this process with 4K children in flight. Checks 0 lost and 0 duplicated.
 *
 *   npx tsx bench/cluster.ts [--trajectories=160] [--concurrency=16] [--latency-ms=2000] [--rounds=1]
 *                            [--scale-trajectories=96] [--host-concurrency=4] [--scale-latency-ms=1500] [--scale-children=16]
 *
 * Each option can also come from the environment (BENCH_TRAJECTORIES, ..., BENCH_SCALE_CHILDREN).
 * Everything started here (servers, hosts, temp folders) is stopped and removed at the end.
 */
import { Client } from '@temporalio/client';
import type { NativeConnection, WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { readManifest } from '../activities/data';
import { createObjectStore, FileStore, type ObjectStore } from '../activities/store';
import type { LabelerChoice, RelabelDatasetResult } from '../data-schemas/relabel';
import { fileUri } from '../data-schemas/uri';
import { clusterConnection, clusterDown, clusterEnv, clusterUp, CLUSTER_BUCKET, type ClusterInfo } from '../infra/cluster/cluster';
import { startHost, stopHost, waitForHostReady } from '../infra/cluster/hosts';
import { loadConfig } from '../infra/config';
import { connectClient, connectWorker } from '../infra/temporal';
import { createGeminiServer, type GeminiServer } from '../test/fixtures/gemini-server';
import { importBridgeSample, replicateDataset } from '../test/helpers/datasets';
import { createCpuWorker } from '../workers/cpu';
import { createGeminiWorker } from '../workers/gemini';
import type { relabelDataset } from '../workflows';
import { option } from './options';
import { accountWork, recordIds, workIsExact, type WorkAccount } from './relabel-check';
import { printTable } from './table';
import { Cleanups, runBenchWorker, startBenchTemporal } from './temporal';

const hostConcurrency = option('host-concurrency', 4);
const cfg = {
  trajectories: option('trajectories', 160),
  concurrency: option('concurrency', 16),
  latencyMs: option('latency-ms', 2000),
  rounds: option('rounds', 1),
  scaleTrajectories: option('scale-trajectories', 96),
  hostConcurrency,
  scaleLatencyMs: option('scale-latency-ms', 1500),
  /** Children in flight in the scale-out runs: enough to keep two hosts' 2K slots busy while children also read and write. */
  scaleChildren: option('scale-children', 4 * hostConcurrency),
};

const API_KEY = 'AIzaBENCH-key-for-the-local-gemini-wire-server-01';
const GEMINI = { name: 'gemini', model: 'gemini-2.5-flash' } as const satisfies LabelerChoice;
const NAMESPACE = 'vla-bench';
const CPU_QUEUE = 'bench-cpu';
const GEMINI_QUEUE = 'bench-gemini';
const SCALE_CPU_QUEUE = 'bench-scale-cpu';
const SCALE_GEMINI_QUEUE = 'bench-scale-gemini';
/** High enough never to bind: the model latency and the slots are the bound here. */
const UNBOUND_RATE = 1000;
const GEMINI_HOSTS = ['gemini-1', 'gemini-2'] as const;

const log = (line: string): void => console.log(line);
const seconds = (fromMs: number): number => (performance.now() - fromMs) / 1000;
const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);

/** A Temporal server with its client, and workers of both kinds polling it. */
interface Profile {
  name: 'dev server' | 'cluster';
  client: Client;
  runs: number[];
}

let runSeq = 0;
/** One relabelDataset run to completion; its wall seconds. */
async function relabel(
  client: Client,
  input: { datasetUri: string; outputUri: string; n: number; children: number; cpuQueue: string; geminiQueue: string },
): Promise<{ seconds: number; result: RelabelDatasetResult }> {
  const workflowId = `bench-cluster-${++runSeq}`;
  const t0 = performance.now();
  const result = await client.workflow.execute<typeof relabelDataset>('relabelDataset', {
    taskQueue: input.cpuQueue,
    workflowId,
    args: [{ datasetUri: input.datasetUri, outputUri: input.outputUri, labeler: GEMINI, maxConcurrent: input.children, limit: input.n, geminiTaskQueue: input.geminiQueue, maxReprompts: 0 }],
  });
  const took = seconds(t0);
  if (result.counts.done !== input.n) throw new Error(`${workflowId}: ${JSON.stringify(result.counts)}; expected ${input.n} done`);
  return { seconds: took, result };
}

/** Waits until `count` workers poll the activity side of `taskQueue` (the hosts' workers are separate processes). */
async function waitForPollers(client: Client, taskQueue: string, count: number): Promise<void> {
  for (;;) {
    const { pollers } = await client.workflowService.describeTaskQueue({ namespace: NAMESPACE, taskQueue: { name: taskQueue }, taskQueueType: 2 });
    if ((pollers ?? []).length >= count) return;
    await sleep(250);
  }
}

interface ScaleRun {
  hosts: number;
  seconds: number;
  /** Successful calls per second between the 20th and the 80th percentile call: the steady state, without ramp and drain. */
  steadyCallsPerSecond: number;
  maxInFlight: number;
  account: WorkAccount;
  manifestMatches: boolean;
}

async function dataset(store: ObjectStore, root: string, n: number): Promise<{ datasetUri: string; ids: string[] }> {
  const copies = Math.ceil(n / 25);
  const bridge = `${root}/bridge`;
  const datasetUri = `${root}/bridge-x${copies}`;
  await importBridgeSample(store, bridge);
  await replicateDataset(store, bridge, datasetUri, copies);
  return { datasetUri, ids: (await readManifest(store, datasetUri)).trajectories.map((t) => t.id) };
}

/** Part 1: the same relabel on the dev server and on the cluster, in-process workers, file store. */
async function throughput(info: ClusterInfo, dir: string, cleanups: Cleanups, gemini: GeminiServer): Promise<{ dev: Profile; cluster: Profile; workflowBundle: WorkflowBundleWithSourceMap }> {
  const store = new FileStore();
  let t0 = performance.now();
  const { datasetUri } = await dataset(store, fileUri(join(dir, 'data')), cfg.trajectories);
  log(`dataset: ${cfg.trajectories}+ trajectories in the file store in ${seconds(t0).toFixed(1)} s`);

  t0 = performance.now();
  const dev = await startBenchTemporal({ dir, namespace: NAMESPACE, cleanups, log });
  const geminiDeps = { store, gemini: { apiKey: API_KEY, baseUrl: gemini.baseUrl } };
  const workers = async (native: NativeConnection, geminiNative: NativeConnection): Promise<void> => {
    runBenchWorker(await createCpuWorker({ connection: native, namespace: NAMESPACE, taskQueue: CPU_QUEUE, workflowBundle: dev.workflowBundle, deps: { store } }), cleanups, log);
    runBenchWorker(
      await createGeminiWorker({ connection: geminiNative, namespace: NAMESPACE, taskQueue: GEMINI_QUEUE, deps: geminiDeps, maxCallsPerSecond: UNBOUND_RATE, maxConcurrentCalls: cfg.concurrency }),
      cleanups,
      log,
    );
  };
  await workers(dev.native, dev.native);
  // The cluster side: each worker kind with its own client certificate, as `vla cluster env <kind>` gives it.
  const cpuNative = await connectWorker(clusterConnection(info, 'cpu'));
  cleanups.add('cluster cpu worker connection', () => cpuNative.close());
  const geminiNative = await connectWorker(clusterConnection(info, 'gemini'));
  cleanups.add('cluster gemini worker connection', () => geminiNative.close());
  await workers(cpuNative, geminiNative);
  const adminConnection = await connectClient(clusterConnection(info, 'admin'));
  cleanups.add('cluster client connection', () => adminConnection.close());
  const clusterClient = new Client({ connection: adminConnection, namespace: NAMESPACE });
  log(`dev server ${dev.server.address} and cluster ${info.temporalAddress} (mTLS), workers up in ${seconds(t0).toFixed(1)} s`);

  const profiles: Profile[] = [
    { name: 'dev server', client: dev.client, runs: [] },
    { name: 'cluster', client: clusterClient, runs: [] },
  ];
  const N = cfg.trajectories;
  const C = cfg.concurrency;
  const run = (p: Profile, n: number, tag: string): Promise<{ seconds: number }> =>
    relabel(p.client, { datasetUri, outputUri: fileUri(join(dir, 'labels', `${tag}-${runSeq + 1}`)), n, children: C, cpuQueue: CPU_QUEUE, geminiQueue: GEMINI_QUEUE });
  log(`\nthroughput: ${N} trajectories, ${C} children and ${C} model slots, latency ${cfg.latencyMs} ms (ideal ${((C * 1000) / cfg.latencyMs).toFixed(1)} traj/s), ${cfg.rounds} round(s) after a warm-up wave of ${C}`);
  for (const p of profiles) await run(p, C, 'warm');
  for (let round = 0; round < cfg.rounds; round++) {
    for (const p of round % 2 === 0 ? profiles : [...profiles].reverse()) {
      gemini.reset();
      const r = await run(p, N, 'tput');
      p.runs.push(r.seconds);
      log(`  ${p.name}: ${r.seconds.toFixed(2)} s, ${(N / r.seconds).toFixed(2)} traj/s, ${gemini.stats().total} calls (max ${gemini.stats().maxInFlight} in flight)`);
    }
  }
  return { dev: profiles[0]!, cluster: profiles[1]!, workflowBundle: dev.workflowBundle };
}

/** Part 2: 1 then 2 Gemini hosts (separate worker processes) against the cluster, data in its S3 store. */
async function scaleOut(info: ClusterInfo, stateDir: string, cleanups: Cleanups, gemini: GeminiServer, bundle: WorkflowBundleWithSourceMap): Promise<ScaleRun[]> {
  const env = clusterEnv(info, 'cpu');
  // This process's S3 client takes the settings a CPU worker of the cluster gets (as test/integration/cluster-server.test.ts does).
  for (const key of ['AWS_ENDPOINT_URL_S3', 'AWS_REGION', 'AWS_SHARED_CREDENTIALS_FILE', 'AWS_PROFILE'] as const) process.env[key] = env[key];
  const store = createObjectStore({ roots: 'unconfined', multiHost: true });
  const M = cfg.scaleTrajectories;
  const K = cfg.hostConcurrency;
  let t0 = performance.now();
  const { datasetUri, ids } = await dataset(store, `s3://${CLUSTER_BUCKET}/bench`, M);
  const wanted = ids.slice(0, M);
  log(`\nscale-out dataset: ${ids.length} trajectories in ${env.VLA_STORE_URI} in ${seconds(t0).toFixed(1)} s`);

  t0 = performance.now();
  const cpuNative = await connectWorker(clusterConnection(info, 'cpu'));
  cleanups.add('scale-out cpu worker connection', () => cpuNative.close());
  runBenchWorker(await createCpuWorker({ connection: cpuNative, namespace: NAMESPACE, taskQueue: SCALE_CPU_QUEUE, workflowBundle: bundle, deps: { store } }), cleanups, log);
  const adminConnection = await connectClient(clusterConnection(info, 'admin'));
  cleanups.add('scale-out client connection', () => adminConnection.close());
  const client = new Client({ connection: adminConnection, namespace: NAMESPACE });

  gemini.setLatency(cfg.scaleLatencyMs);
  // A host inherits only the allow-listed variables (infra/cluster/hosts.ts): the gemini worker's cluster env, the key and the fake server's URL.
  const hostEnv = { ...process.env, ...clusterEnv(info, 'gemini'), GEMINI_API_KEY: API_KEY, GOOGLE_GEMINI_BASE_URL: gemini.baseUrl };
  const workerArgs = ['--task-queue', SCALE_GEMINI_QUEUE, '--rate', String(UNBOUND_RATE), '--concurrency', String(K)];
  const startGeminiHost = async (name: string): Promise<void> => {
    // 'processes': the cluster listens on loopback, which a host in its own network namespace would not reach.
    await startHost(stateDir, { name, kind: 'gemini', workerArgs }, { env: hostEnv, isolation: 'processes' });
    cleanups.add(`host ${name}`, async () => void (await stopHost(stateDir, name)));
    await waitForHostReady(stateDir, name);
  };

  const runs: ScaleRun[] = [];
  for (let hosts = 1; hosts <= GEMINI_HOSTS.length; hosts++) {
    await startGeminiHost(GEMINI_HOSTS[hosts - 1]!);
    await waitForPollers(client, SCALE_GEMINI_QUEUE, hosts);
    if (hosts === 1) log(`cpu worker and host ${GEMINI_HOSTS[0]} up in ${seconds(t0).toFixed(1)} s`);
    gemini.reset();
    const outputUri = `s3://${CLUSTER_BUCKET}/bench/labels/hosts-${hosts}`;
    const r = await relabel(client, { datasetUri, outputUri, n: M, children: cfg.scaleChildren, cpuQueue: SCALE_CPU_QUEUE, geminiQueue: SCALE_GEMINI_QUEUE });
    const ok = gemini.requests.filter((q) => q.reply === 'default').sort((a, b) => a.at - b.at);
    const at = (q: number): number => ok[Math.floor(q * (ok.length - 1))]!.at;
    const steadyCalls = Math.floor(0.8 * (ok.length - 1)) - Math.floor(0.2 * (ok.length - 1));
    const recorded = await recordIds(store, outputUri);
    const manifestIds = (await readManifest(store, outputUri)).trajectories.map((t) => t.id).sort();
    const run: ScaleRun = {
      hosts,
      seconds: r.seconds,
      steadyCallsPerSecond: steadyCalls / ((at(0.8) - at(0.2)) / 1000),
      maxInFlight: gemini.stats().maxInFlight,
      account: accountWork(wanted, recorded, ok.length),
      manifestMatches: JSON.stringify(manifestIds) === JSON.stringify([...wanted].sort()),
    };
    runs.push(run);
    log(`  ${hosts} host(s): ${run.seconds.toFixed(2)} s, ${(M / run.seconds).toFixed(2)} traj/s, steady ${run.steadyCallsPerSecond.toFixed(2)} calls/s, max ${run.maxInFlight} in flight`);
  }
  return runs;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'vla-bench-cluster-'));
  const stateDir = mkdtempSync(join(tmpdir(), 'vla-bench-cluster-state-'));
  // PostgreSQL runs as an unprivileged account when we are root: it must be able to reach the state folder.
  chmodSync(stateDir, 0o755);
  const cleanups = new Cleanups();
  const totalStart = performance.now();
  const load0 = loadavg()[0]!;
  try {
    const gemini = await createGeminiServer({ apiKey: API_KEY, latencyMs: cfg.latencyMs, recordBodies: false });
    cleanups.add('gemini server', () => gemini.close());
    const t0 = performance.now();
    const info = await clusterUp({ stateDir, cacheDir: loadConfig().cacheDir, namespace: NAMESPACE });
    cleanups.add('cluster', async () => {
      const problems = await clusterDown(stateDir);
      if (problems.length > 0) throw new Error(problems.join('; '));
    });
    log(`cluster up in ${seconds(t0).toFixed(1)} s: temporal ${info.temporalAddress} (mTLS, PostgreSQL), s3 ${info.s3Endpoint}`);

    const { dev, cluster, workflowBundle } = await throughput(info, dir, cleanups, gemini);
    // startBenchTemporal bundled the workflows once; the scale-out CPU worker reuses that bundle.
    const scale = await scaleOut(info, stateDir, cleanups, gemini, workflowBundle);

    // --- report -------------------------------------------------------------------------------
    const N = cfg.trajectories;
    console.log(`\n## throughput, cluster vs dev server (N=${N}, concurrency ${cfg.concurrency}, latency ${cfg.latencyMs} ms)`);
    const rate = (p: Profile): number => (N * p.runs.length) / sum(p.runs);
    printTable([
      ['server', 'runs', 'seconds (mean)', 'traj/s'],
      ...[dev, cluster].map((p) => [p.name, String(p.runs.length), (sum(p.runs) / p.runs.length).toFixed(2), rate(p).toFixed(2)]),
    ]);
    console.log(`ratio cluster/dev (traj/s): ${(rate(cluster) / rate(dev)).toFixed(3)}`);

    const M = cfg.scaleTrajectories;
    console.log(`\n## scale-out, Gemini hosts (M=${M}, K=${cfg.hostConcurrency} calls per host, ${cfg.scaleChildren} children, latency ${cfg.scaleLatencyMs} ms)`);
    printTable([
      ['gemini hosts', 'seconds', 'traj/s', 'steady calls/s', 'ideal calls/s', 'max in flight', 'records', 'lost', 'duplicate records', 'successful calls - trajectories', 'manifest matches'],
      ...scale.map((r) => [
        String(r.hosts),
        r.seconds.toFixed(2),
        (M / r.seconds).toFixed(2),
        r.steadyCallsPerSecond.toFixed(2),
        ((r.hosts * cfg.hostConcurrency * 1000) / cfg.scaleLatencyMs).toFixed(2),
        String(r.maxInFlight),
        String(M - r.account.lost.length + r.account.duplicateRecords + r.account.unexpected.length),
        String(r.account.lost.length),
        String(r.account.duplicateRecords),
        String(r.account.extraCalls),
        String(r.manifestMatches),
      ]),
    ]);
    const [one, two] = scale as [ScaleRun, ScaleRun];
    console.log(`ratio 2 hosts / 1 host: ${(one.seconds / two.seconds).toFixed(3)} (traj/s, whole run), ${(two.steadyCallsPerSecond / one.steadyCallsPerSecond).toFixed(3)} (steady calls/s); goal >= 1.8`);
    console.log(`machine: ${availableParallelism()} cores, load average ${load0.toFixed(2)} at the start, ${loadavg()[0]!.toFixed(2)} at the end; total ${seconds(totalStart).toFixed(0)} s`);
    const bad = scale.filter((r) => !workIsExact(r.account) || !r.manifestMatches || r.maxInFlight > r.hosts * cfg.hostConcurrency);
    if (bad.length > 0) throw new Error(`scale-out lost, duplicated or overran work: ${JSON.stringify(bad)}`);
  } finally {
    await cleanups.run();
    rmSync(dir, { recursive: true, force: true });
    rmSync(stateDir, { recursive: true, force: true });
  }
}

await main();
