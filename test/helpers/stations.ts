import { randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { inject } from 'vitest';
import { loadConfig, REPO_ROOT } from '../../infra/config';
import { waitForPollers } from '../../infra/dev-stack';
import { isAlive, startProcess, stopProcess } from '../../activities/runtime/processes';
import { TaskQueue } from '../../data-schemas/workflows';
import { devServerEnv, workflowBundle } from './temporal';

let bundleFile: Promise<string> | undefined;
/** The workflow bundle, written once per test file for the station processes to load. */
function sharedBundleFile(dir: string): Promise<string> {
  bundleFile ??= workflowBundle().then((b) => {
    mkdirSync(dir, { recursive: true });
    const file = join(dir, `workflow-bundle-${randomUUID().slice(0, 8)}.js`);
    writeFileSync(file, b.code);
    return file;
  });
  return bundleFile;
}

export interface StationProcess {
  stationId: string;
  pid: number;
  logFile: string;
  /** The station's folder (owner.json, sim-arm.jsonl). */
  stateDir: string;
  /** SIGKILL: the worker dies mid-whatever, as a crashed machine would. */
  kill(): void;
  /** Graceful stop (SIGTERM, then SIGKILL after the grace period). */
  stop(): Promise<void>;
}

export interface StationProcessOptions {
  stationId?: string;
  /** The project state directory the worker uses (the station's folder lies under it). */
  stateDir: string;
  storeUri: string;
  stepDelayMs?: number;
  /** A real-arm URL (the widowx-http driver) instead of the simulator. */
  url?: string;
  /** More environment for the worker (VLA_METRICS_ADDRESS, ...). */
  env?: Record<string, string>;
}

/** A fresh station id no other test shares. */
export const uniqueStationId = (name: string): string => `t-${name}-${randomUUID().slice(0, 6)}`;

/** A real worker process (`vla worker <args>`) against the suite's dev server, returned once it polls `taskQueue`. */
export async function startWorkerProcess(options: { args: string[]; taskQueue: string; name: string; stateDir: string; storeUri: string; env?: Record<string, string> }): Promise<{ pid: number; logFile: string; kill(): void; stop(): Promise<void> }> {
  const { address, namespace } = inject('temporal');
  const env = {
    ...devServerEnv(address, namespace),
    VLA_STATE_DIR: options.stateDir,
    VLA_STORE_URI: options.storeUri,
    VLA_WORKFLOW_BUNDLE: await sharedBundleFile(options.stateDir),
    ...options.env,
  };
  const logFile = join(options.stateDir, 'logs', `${options.name}-${Date.now()}.log`);
  const proc = startProcess(join(REPO_ROOT, 'node_modules', '.bin', 'tsx'), [join(REPO_ROOT, 'cli', 'main.ts'), 'worker', ...options.args], { logFile, env, cwd: REPO_ROOT, detached: true });
  const config = loadConfig(env);
  await waitForPollers(config, options.taskQueue, 'workflow', proc.pid, logFile);
  await waitForPollers(config, options.taskQueue, 'activity', proc.pid, logFile);
  return {
    pid: proc.pid,
    logFile,
    kill() {
      if (isAlive(proc.pid)) process.kill(-proc.pid, 'SIGKILL');
    },
    stop: () => stopProcess(proc.pid, { graceMs: 10_000, group: true }),
  };
}

/**
 * A real station worker process (`vla worker station`) against the suite's dev server, returned
 * once it polls its task queue.
 */
export async function startStationProcess(options: StationProcessOptions): Promise<StationProcess> {
  const stationId = options.stationId ?? uniqueStationId('station');
  const args = ['station', '--id', stationId];
  if (options.url) args.push('--url', options.url);
  if (options.stepDelayMs !== undefined) args.push('--step-delay-ms', String(options.stepDelayMs));
  const worker = await startWorkerProcess({
    args,
    taskQueue: TaskQueue.station(stationId),
    name: `station-${stationId}`,
    stateDir: options.stateDir,
    storeUri: options.storeUri,
    ...(options.env && { env: options.env }),
  });
  return { stationId, ...worker, stateDir: join(options.stateDir, 'stations', stationId) };
}
