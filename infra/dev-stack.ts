import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { TaskQueue } from '../data-schemas/workflows';
import { REPO_ROOT, type ResolvedConfig } from './config';
import { inspectPidFile, isAlive, startProcess, stopByPidFile, tailFile, type PidFileState } from '../activities/runtime/processes';
import { checkTemporal, connectClient, ensureTemporalCli, prepareNamespace, startDevServer } from './temporal';
import { isLocalDevServer, type TemporalConnectionSettings } from './temporal-connection';

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

/** The local dev server's Web UI for the configured namespace; undefined when the settings name another server. */
export function uiUrl(config: ResolvedConfig): string | undefined {
  const temporal = config.temporal();
  if (!isLocalDevServer(temporal)) return undefined;
  const { host } = splitAddress(temporal.connectionOptions.address);
  return `http://${host}:${config.uiPort}/namespaces/${temporal.namespace}/workflows`;
}

/**
 * `vla dev up` starts a dev server only where it could be the configured one: plain TCP on
 * loopback. Settings for a remote, TLS or API-key server mean someone else runs it.
 */
function refuseRemote(temporal: TemporalConnectionSettings): void {
  if (isLocalDevServer(temporal)) return;
  throw new Error(
    `${temporal.description}\n` +
      '`vla dev up` only starts a local dev server (plain TCP on 127.0.0.1, ::1 or localhost), and these settings name another server, so it starts nothing. ' +
      'To work against that server, start workers on a machine that reaches it with `vla worker cpu|gemini|gpu|station` (they read the same settings); ' +
      'to use the local stack instead, unset the TEMPORAL_* variables or choose a profile without TLS and API key (TEMPORAL_PROFILE).',
  );
}

export async function waitForPollers(
  config: ResolvedConfig,
  taskQueue: string,
  kind: 'workflow' | 'activity',
  pid: number,
  logFile: string,
  timeoutMs = 90_000,
): Promise<void> {
  const temporal = config.temporal();
  const connection = await connectClient(temporal);
  try {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (!isAlive(pid)) throw new Error(`the worker (pid ${pid}) exited; last lines of ${logFile}:\n${tailFile(logFile, 20)}`);
      const { pollers } = await connection.workflowService.describeTaskQueue({
        namespace: temporal.namespace,
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

/**
 * Whether a component runs, by its PID file: true when it is the process we started; false when
 * there is none or the file is stale. A live PID we cannot verify stops `dev up`: starting a second
 * server on the same port, or a second worker, must be the user's decision.
 */
function alreadyRunning(component: Component, pidFile: string, log: (line: string) => void): boolean {
  const state = inspectPidFile(pidFile);
  switch (state.kind) {
    case 'ours':
      log(`${component} already running (pid ${state.record.pid})`);
      return true;
    case 'stale':
      log(`${component}: stale PID file (${state.reason}); starting it`);
      return false;
    case 'unverifiable':
      if (state.alive) throw new Error(`${component}: ${state.reason}; if that process is ${component}, stop it yourself, then delete ${pidFile}`);
      return false;
    case 'absent':
      return false;
  }
}

/** Brings the stack up; components already running (by their PID file) are kept. */
export async function devUp(config: ResolvedConfig, log: (line: string) => void, options: { worker?: boolean } = {}): Promise<void> {
  const temporal = config.temporal();
  refuseRemote(temporal);
  const paths = stackPaths(config.stateDir);
  mkdirSync(config.stateDir, { recursive: true });
  if (!alreadyRunning('temporal', paths.pidFile('temporal'), log)) {
    const cli = await ensureTemporalCli(config.cacheDir, log);
    const { host, port } = splitAddress(temporal.connectionOptions.address);
    const server = await startDevServer({
      cli,
      dbFile: paths.dbFile,
      logFile: paths.logFile('temporal'),
      pidFile: paths.pidFile('temporal'),
      namespace: temporal.namespace,
      ip: host,
      port,
      uiPort: config.uiPort,
      detached: true,
    });
    log(`temporal started (pid ${server.pid}) at ${server.address}, database ${paths.dbFile}`);
  } else {
    // A server started by an older checkout may lack the newest search attributes.
    await prepareNamespace(temporal);
  }
  if (options.worker === false) return;
  for (const kind of ['cpu', 'gemini', 'gpu', 'station'] as const) {
    const component: Component = kind === 'station' ? `station-${DEFAULT_SIM_STATION}` : `worker-${kind}`;
    if (alreadyRunning(component, paths.pidFile(component), log)) continue;
    const args = kind === 'station' ? ['worker', 'station', '--id', DEFAULT_SIM_STATION] : ['worker', kind];
    const worker = startProcess(join(REPO_ROOT, 'node_modules', '.bin', 'tsx'), [join(REPO_ROOT, 'cli', 'main.ts'), ...args], {
      logFile: paths.logFile(component),
      pidFile: paths.pidFile(component),
      detached: true,
      cwd: REPO_ROOT,
      // The workers load their connection as this process did (same variables, same profile);
      // address and namespace are pinned to what was just checked.
      env: { ...process.env, TEMPORAL_ADDRESS: temporal.connectionOptions.address, TEMPORAL_NAMESPACE: temporal.namespace, VLA_STATE_DIR: config.stateDir },
    });
    const queue = kind === 'station' ? TaskQueue.station(DEFAULT_SIM_STATION) : TaskQueue[kind];
    await waitForPollers(config, queue, kind === 'cpu' ? 'workflow' : 'activity', worker.pid, worker.logFile);
    log(`${component} started (pid ${worker.pid}) polling ${queue}`);
  }
}

/** How long `vla dev down` waits after SIGTERM (workers finish their current tasks), then after SIGKILL. */
export const DOWN_WAITS = { graceMs: 15_000, killWaitMs: 5_000 } as const;

/**
 * Stops workers first, then the server: only processes whose PID file still matches them (start
 * time, boot, command line, group), with bounded waits. Returns what could not be stopped or
 * verified, each naming its PID file; empty when the stack is down.
 */
export async function devDown(config: ResolvedConfig, log: (line: string) => void, waits: { graceMs?: number; killWaitMs?: number } = DOWN_WAITS): Promise<string[]> {
  const paths = stackPaths(config.stateDir);
  const problems: string[] = [];
  for (const component of [...COMPONENTS].reverse()) {
    const outcome = await stopByPidFile(paths.pidFile(component), waits);
    switch (outcome.kind) {
      case 'absent':
        log(`${component} was not running`);
        break;
      case 'stopped':
        log(`${component} stopped (pid ${outcome.pid})`);
        break;
      case 'stale':
        log(`${component} was not running: stale PID file removed (${outcome.reason})`);
        break;
      case 'unverifiable':
        if (outcome.alive) {
          problems.push(`${component}: ${outcome.reason}; not stopped (stop it yourself if it is ${component}, then delete ${paths.pidFile(component)})`);
        } else {
          log(`${component} was not running (${outcome.reason})`);
        }
        break;
      case 'still-alive':
        problems.push(`${component}: ${outcome.reason}; PID file kept at ${paths.pidFile(component)}`);
        break;
    }
  }
  for (const problem of problems) log(problem);
  return problems;
}

export interface ComponentStatus {
  component: Component;
  /** running: the process we started; stale: its PID file names a process that is gone or another one; unverifiable: a PID file without identity. */
  state: 'running' | 'stopped' | 'stale' | 'unverifiable';
  pid?: number;
  /** Why the file is stale or unverifiable. */
  reason?: string;
  logFile: string;
}

export interface StackStatus {
  components: ComponentStatus[];
  temporalHealthy: boolean;
  temporalError?: string;
  /** Absent when the settings name a server other than the local dev server (or cannot be loaded). */
  uiUrl?: string;
}

function componentStatus(component: Component, state: PidFileState, logFile: string): ComponentStatus {
  switch (state.kind) {
    case 'absent':
      return { component, state: 'stopped', logFile };
    case 'ours':
      return { component, state: 'running', pid: state.record.pid, logFile };
    case 'stale':
      return { component, state: 'stale', pid: state.record.pid, reason: state.reason, logFile };
    case 'unverifiable':
      return { component, state: 'unverifiable', ...(state.pid !== undefined && { pid: state.pid }), reason: state.reason, logFile };
  }
}

/** Reads the PID files; changes nothing (`dev down` and `dev up` clear stale files). */
export async function devStatus(config: ResolvedConfig): Promise<StackStatus> {
  const paths = stackPaths(config.stateDir);
  const components = COMPONENTS.map((component) => componentStatus(component, inspectPidFile(paths.pidFile(component)), paths.logFile(component)));
  let temporalHealthy = false;
  let temporalError: string | undefined;
  let url: string | undefined;
  try {
    url = uiUrl(config);
    await checkTemporal(config.temporal());
    temporalHealthy = true;
  } catch (err) {
    temporalError = (err as Error).message;
  }
  return { components, temporalHealthy, temporalError, ...(url !== undefined && { uiUrl: url }) };
}

export function devLogs(config: ResolvedConfig, component: Component, lines: number): string {
  const file = stackPaths(config.stateDir).logFile(component);
  if (!existsSync(file)) return `(no log yet at ${file})`;
  return tailFile(file, lines);
}
