import type { Worker } from '@temporalio/worker';
import { readFileSync } from 'node:fs';
import { Argument, Command } from 'commander';
import { createObjectStore, describeRoots } from '../../activities/store';
import { gitRevisionOf } from '../../activities/training/train';
import { InferencePool } from '../../activities/vqa/backends/pool';
import { loadConfig, refuseLocalStore, REPO_ROOT } from '../../infra/config';
import { installWorkerRuntime, startTracing } from '../../infra/telemetry';
import { connectClient, connectWorker } from '../../infra/temporal';
import { ensurePythonEnv } from '../../infra/python';
import { createCpuWorker } from '../../workers/cpu';
import { createGeminiWorker } from '../../workers/gemini';
import { createGpuWorker, defaultGpuWorkDir } from '../../workers/gpu';
import { nonNegativeInt, positiveInt } from '../options';
import { SafeId } from '../../data-schemas/common';
import { StationConfig } from '../../data-schemas/station';
import { formatZodIssues } from '../../data-schemas/issues';
import { closeStation, createStationWorker, stationStateDir } from '../../workers/station';

export const WORKER_KINDS = ['cpu', 'gemini', 'gpu', 'station'] as const;
export type WorkerKind = (typeof WORKER_KINDS)[number];

export function registerWorker(program: Command): void {
  program
    .command('worker')
    .description('run a worker in the foreground (SIGINT/SIGTERM shut it down gracefully)')
    .addArgument(
      new Argument('<kind>', 'cpu: workflows and CPU activities; gemini: model calls under the global rate limit; gpu: LoRA training, one run at a time; station: one robot arm (simulated or real), one chunk at a time').choices(WORKER_KINDS),
    )
    .option('--task-queue <name>', 'poll this task queue instead of the default (vla-cpu / vla-gemini / vla-gpu)')
    .option('--rate <calls-per-second>', 'gemini: the server-side rate limit of the queue, for all its workers together', positiveInt, 5)
    .option('--concurrency <calls>', 'gemini: model calls in flight in this worker at once', positiveInt, 16)
    .option('--id <station-id>', 'station: the station id; the worker polls vla-station-<id>', 'sim-1')
    .option('--url <url>', 'station: a real WidowX behind an HTTP action server (docs/station-protocol.md); without it the station is simulated')
    .option('--widowx-envs <host[:port]>', "station: a real WidowX behind widowx_envs' robot server (widowx_env_service.py --server, port 5556 by default)")
    .option('--station-config <file.json>', 'station: the whole StationConfig as JSON (any kind: camera key, image size, safety limits, ...; docs/station-protocol.md)')
    .option('--step-delay-ms <ms>', 'station (simulated): pause after each action (200 is real time at 5 Hz)', nonNegativeInt, 0)
    .action(async (kind: WorkerKind, opts: { taskQueue?: string; rate: number; concurrency: number; id: string; url?: string; widowxEnvs?: string; stationConfig?: string; stepDelayMs: number }) => {
      const config = loadConfig();
      // Workers on several hosts share only what is in s3://: a local store is refused before anything starts.
      refuseLocalStore(config);
      // Before the first connection: the runtime (and its metrics endpoint) is made once per process.
      installWorkerRuntime(config.env.VLA_METRICS_ADDRESS);
      if (config.env.VLA_METRICS_ADDRESS !== undefined) console.log(`metrics at http://${config.env.VLA_METRICS_ADDRESS}/metrics`);
      const tracing = startTracing(config.env, `vla-worker-${kind}`);
      if (tracing) console.log(`tracing: spans of ${tracing.serviceName} go to ${config.env.OTEL_EXPORTER_OTLP_ENDPOINT}`);
      const temporal = config.temporal();
      // A connection that does not work stops the worker here, non-zero, with a message naming the cause.
      const connection = await connectWorker(temporal);
      console.log(temporal.description);
      try {
        // Workflow inputs come from anyone who reaches Temporal: the store touches only the configured roots.
        const store = createObjectStore({ roots: config.storeRoots, multiHost: config.env.VLA_MULTI_HOST });
        console.log(describeRoots(config.storeRoots));
        const common = { connection, namespace: temporal.namespace, ...(opts.taskQueue !== undefined && { taskQueue: opts.taskQueue }), ...(tracing && { tracing: tracing.worker }) };
        // The key is read here, in the worker that calls Gemini, and nowhere else.
        const apiKey = process.env.GEMINI_API_KEY ?? process.env.GOOGLE_API_KEY;
        const baseUrl = process.env.GOOGLE_GEMINI_BASE_URL;
        let onExit: (() => Promise<void>) | undefined;
        const worker: Worker = await (async () => {
          switch (kind) {
            case 'station': {
              const stationId = SafeId.parse(opts.id);
              const station = stationConfigOf(opts);
              let python: ReturnType<typeof ensurePythonEnv> | undefined;
              const openaiApiKey = process.env.OPENAI_API_KEY;
              // A prebuilt workflow bundle (tests start many station processes; webpack is the slow part).
              const bundlePath = process.env.VLA_WORKFLOW_BUNDLE;
              const created = await createStationWorker({
                ...(bundlePath !== undefined && { workflowBundle: { codePath: bundlePath } }),
                connection,
                namespace: temporal.namespace,
                ...(tracing && { tracing: tracing.worker }),
                stationId,
                station,
                store,
                stateDir: stationStateDir(config.stateDir, stationId),
                modelEnv: { ...(openaiApiKey !== undefined && { openaiApiKey }) },
                python: () => (python ??= ensurePythonEnv(config.cacheDir, (line) => console.log(line))),
              });
              onExit = () => closeStation(created.driver);
              console.log(`station ${stationId} (${describeStation(station)}) polling vla-station-${stationId}`);
              return created.worker;
            }
            case 'cpu': {
              // Only for OpenAI-compatible servers started with an API key (vLLM --api-key).
              const openaiApiKey = process.env.OPENAI_API_KEY;
              // A prebuilt workflow bundle, as for stations (tests start worker processes; webpack is the slow part).
              const bundlePath = process.env.VLA_WORKFLOW_BUNDLE;
              return createCpuWorker({
                ...common,
                ...(bundlePath !== undefined && { workflowBundle: { codePath: bundlePath } }),
                deps: { store, gitRevision: gitRevisionOf(REPO_ROOT), ...(openaiApiKey !== undefined && { openaiApiKey }) },
              });
            }
            case 'gemini':
              return createGeminiWorker({
                ...common,
                deps: { store, gemini: { ...(apiKey !== undefined && { apiKey }), ...(baseUrl !== undefined && { baseUrl }) } },
                maxCallsPerSecond: opts.rate,
                maxConcurrentCalls: opts.concurrency,
              });
            case 'gpu': {
              const clientConnection = await connectClient(temporal);
              let python: ReturnType<typeof ensurePythonEnv> | undefined;
              const inferencePool = new InferencePool({
                maxResident: config.env.VLA_INFERENCE_MAX_RESIDENT,
                idleMs: config.env.VLA_INFERENCE_IDLE_SECONDS * 1000,
                log: (line) => console.log(line),
              });
              onExit = () => inferencePool.releaseAll('the worker shuts down');
              return createGpuWorker({
                ...common,
                clientConnection,
                deps: {
                  store,
                  workDir: config.env.VLA_WORK_DIR ?? defaultGpuWorkDir(config.stateDir),
                  pythonEnv: () => (python ??= ensurePythonEnv(config.cacheDir, (line) => console.log(line))),
                  gitRevision: gitRevisionOf(REPO_ROOT),
                  inferencePool,
                },
              });
            }
          }
        })();
        try {
          await worker.run();
        } finally {
          await onExit?.();
        }
      } finally {
        await connection.close();
        await tracing?.shutdown();
      }
    });
}

/** The station a `vla worker station` command line names: simulated unless --url, --widowx-envs or --station-config says otherwise. */
export function stationConfigOf(opts: { url?: string; widowxEnvs?: string; stationConfig?: string; stepDelayMs: number }): StationConfig {
  const given = [opts.url !== undefined && '--url', opts.widowxEnvs !== undefined && '--widowx-envs', opts.stationConfig !== undefined && '--station-config'].filter(Boolean);
  if (given.length > 1) throw new Error(`station: give one of ${given.join(', ')}, not several`);
  if (opts.url !== undefined) return StationConfig.parse({ kind: 'widowx-http', url: opts.url });
  if (opts.widowxEnvs !== undefined) {
    const m = /^(.*?)(?::(\d+))?$/.exec(opts.widowxEnvs);
    const parsed = StationConfig.safeParse({ kind: 'widowx-envs', host: m?.[1] ?? '', ...(m?.[2] !== undefined && { port: Number(m[2]) }) });
    if (!parsed.success) throw new Error(`--widowx-envs ${opts.widowxEnvs}: expected <host[:port]>: ${formatZodIssues(parsed.error).join('; ')}`);
    return parsed.data;
  }
  if (opts.stationConfig !== undefined) {
    let json: unknown;
    try {
      json = JSON.parse(readFileSync(opts.stationConfig, 'utf8'));
    } catch (err) {
      throw new Error(`--station-config ${opts.stationConfig}: cannot read it as JSON: ${(err as Error).message}`);
    }
    const parsed = StationConfig.safeParse(json);
    if (!parsed.success) throw new Error(`--station-config ${opts.stationConfig}: not a StationConfig: ${formatZodIssues(parsed.error).join('; ')}`);
    return parsed.data;
  }
  return StationConfig.parse({ kind: 'sim', stepDelayMs: opts.stepDelayMs });
}

function describeStation(station: StationConfig): string {
  switch (station.kind) {
    case 'sim':
      return 'simulated';
    case 'widowx-http':
      return station.url;
    case 'widowx-envs':
      return `widowx_envs robot server tcp://${station.host}:${station.port}`;
  }
}
