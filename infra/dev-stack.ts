import { Connection } from '@temporalio/client';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { TaskQueue } from '../data-schemas/workflows';
import { REPO_ROOT, type ResolvedConfig } from './config';
import { isAlive, readPidFile, startProcess, stopByPidFile, tailFile } from './processes';
import { checkTemporal, ensureTemporalCli, startDevServer } from './temporal';

/**
 * `vla dev up|down|status|logs`: the local stack as detached processes, each with a PID file and a
 * log file in the state folder. Temporal keeps its SQLite database there, so a restart keeps every
 * workflow.
 */
export const COMPONENTS = ['temporal', 'worker-cpu', 'worker-gemini', 'worker-gpu', 'station-sim-1'] as const;

/** The simulated station the local stack runs, so robot episodes work out of the box. */
export const DEFAULT_SIM_STATION = 'sim-1';
export type Component = (typeof COMPONENTS)[number];

export interface StackPaths {
  stateDir: string;
  dbFile: string;
  logFile(component: Component): string;
  pidFile(component: Component): string;
}

export function stackPaths(stateDir: string): StackPaths {
  return {
    stateDir,
    dbFile: join(stateDir, 'temporal', 'temporal.sqlite'),
    logFile: (c) => join(stateDir, 'logs', `${c}.log`),
    pidFile: (c) => join(stateDir, 'pids', `${c}.pid`),
  };
}

function splitAddress(address: string): { host: string; port: number } {
  const at = address.lastIndexOf(':');
  const host = address.slice(0, at);
  const port = Number(address.slice(at + 1));
  if (at < 0 || !Number.isInteger(port)) throw new Error(`TEMPORAL_ADDRESS=${address} is not host:port`);
  if (!['127.0.0.1', 'localhost', '::1', '[::1]'].includes(host)) {
    throw new Error(`TEMPORAL_ADDRESS=${address}: the local stack only binds loopback addresses`);
  }
  return { host: host === 'localhost' ? '127.0.0.1' : host.replace(/^\[|\]$/g, ''), port };
}

export function uiUrl(config: ResolvedConfig): string {
  const { host } = splitAddress(config.temporalAddress);
  return `http://${host}:${config.uiPort}/namespaces/${config.namespace}/workflows`;
}

export async function waitForPollers(
  config: ResolvedConfig,
  taskQueue: string,
  kind: 'workflow' | 'activity',
  pid: number,
  logFile: string,
  timeoutMs = 90_000,
): Promise<void> {
  const connection = await Connection.connect({ address: config.temporalAddress });
  try {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (!isAlive(pid)) throw new Error(`the worker (pid ${pid}) exited; last lines of ${logFile}:\n${tailFile(logFile, 20)}`);
      const { pollers } = await connection.workflowService.describeTaskQueue({
        namespace: config.namespace,
        taskQueue: { name: taskQueue },
        taskQueueType: kind === 'workflow' ? 1 : 2, // TASK_QUEUE_TYPE_WORKFLOW / _ACTIVITY
      });
      if ((pollers ?? []).length > 0) return;
      await sleep(500);
    }
    throw new Error(`no worker polls ${taskQueue} after ${timeoutMs} ms; see ${logFile}`);
  } finally {
    await connection.close();
  }
}

/** Brings the stack up; components already running (by their PID file) are kept. */
export async function devUp(config: ResolvedConfig, log: (line: string) => void, options: { worker?: boolean } = {}): Promise<void> {
  const paths = stackPaths(config.stateDir);
  mkdirSync(config.stateDir, { recursive: true });
  const temporalPid = readPidFile(paths.pidFile('temporal'));
  if (temporalPid !== undefined && isAlive(temporalPid)) {
    log(`temporal already running (pid ${temporalPid})`);
  } else {
    const cli = await ensureTemporalCli(config.cacheDir, log);
    const { host, port } = splitAddress(config.temporalAddress);
    const server = await startDevServer({
      cli,
      dbFile: paths.dbFile,
      logFile: paths.logFile('temporal'),
      pidFile: paths.pidFile('temporal'),
      namespace: config.namespace,
      ip: host,
      port,
      uiPort: config.uiPort,
      detached: true,
    });
    log(`temporal started (pid ${server.pid}) at ${server.address}, database ${paths.dbFile}`);
  }
  if (options.worker === false) return;
  for (const kind of ['cpu', 'gemini', 'gpu', 'station'] as const) {
    const component: Component = kind === 'station' ? `station-${DEFAULT_SIM_STATION}` : `worker-${kind}`;
    const pid = readPidFile(paths.pidFile(component));
    if (pid !== undefined && isAlive(pid)) {
      log(`${component} already running (pid ${pid})`);
      continue;
    }
    const args = kind === 'station' ? ['worker', 'station', '--id', DEFAULT_SIM_STATION] : ['worker', kind];
    const worker = startProcess(join(REPO_ROOT, 'node_modules', '.bin', 'tsx'), [join(REPO_ROOT, 'cli', 'main.ts'), ...args], {
      logFile: paths.logFile(component),
      pidFile: paths.pidFile(component),
      detached: true,
      cwd: REPO_ROOT,
      env: { ...process.env, TEMPORAL_ADDRESS: config.temporalAddress, TEMPORAL_NAMESPACE: config.namespace, VLA_STATE_DIR: config.stateDir },
    });
    const queue = kind === 'station' ? TaskQueue.station(DEFAULT_SIM_STATION) : TaskQueue[kind];
    await waitForPollers(config, queue, kind === 'cpu' ? 'workflow' : 'activity', worker.pid, worker.logFile);
    log(`${component} started (pid ${worker.pid}) polling ${queue}`);
  }
}

/** Stops workers first (they finish their current tasks), then the server; by PID only. */
export async function devDown(config: ResolvedConfig, log: (line: string) => void): Promise<void> {
  const paths = stackPaths(config.stateDir);
  for (const component of [...COMPONENTS].reverse()) {
    // Workers were started through tsx: signal the group so the node child stops too.
    const stopped = await stopByPidFile(paths.pidFile(component), { graceMs: 15_000, group: true });
    log(stopped ? `${component} stopped` : `${component} was not running`);
  }
}

export interface ComponentStatus {
  component: Component;
  pid?: number;
  running: boolean;
  logFile: string;
}

export interface StackStatus {
  components: ComponentStatus[];
  temporalHealthy: boolean;
  temporalError?: string;
  uiUrl: string;
}

export async function devStatus(config: ResolvedConfig): Promise<StackStatus> {
  const paths = stackPaths(config.stateDir);
  const components = COMPONENTS.map((component): ComponentStatus => {
    const pid = readPidFile(paths.pidFile(component));
    return { component, pid, running: pid !== undefined && isAlive(pid), logFile: paths.logFile(component) };
  });
  let temporalHealthy = false;
  let temporalError: string | undefined;
  try {
    await checkTemporal(config.temporalAddress, config.namespace);
    temporalHealthy = true;
  } catch (err) {
    temporalError = (err as Error).message;
  }
  return { components, temporalHealthy, temporalError, uiUrl: uiUrl(config) };
}

export function devLogs(config: ResolvedConfig, component: Component, lines: number): string {
  const file = stackPaths(config.stateDir).logFile(component);
  if (!existsSync(file)) return `(no log yet at ${file})`;
  return tailFile(file, lines);
}
