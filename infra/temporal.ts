import { Connection } from '@temporalio/client';
import { SearchAttributeType, TypedSearchAttributes } from '@temporalio/common';
import { encodeSearchAttributeIndexedValueType } from '@temporalio/common/lib/search-attributes';
import { NativeConnection } from '@temporalio/worker';
import { execFile } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { SEARCH_ATTRIBUTE_NAMES, SEARCH_ATTRIBUTES, type SearchAttributeName } from '../data-schemas/workflows';
import { isAlive, startProcess, stopProcess, tailFile, type StartedProcess } from '../activities/runtime/processes';
import { ConnectionErrorCode, explainConnectionError, localDevServerConnection, TemporalConnectionError, type TemporalConnectionSettings } from './temporal-connection';
import { ensureGoTool } from './tools';

const run = promisify(execFile);

/** The Temporal CLI release we build when none is installed (later tags fail under go install). */
export const TEMPORAL_CLI_VERSION = 'v1.5.1';

/** The `temporal` CLI: `TEMPORAL_CLI_PATH`, else on PATH, else built once into the cache. */
export function ensureTemporalCli(cacheDir: string, log: (line: string) => void = () => {}): Promise<string> {
  return ensureGoTool({ binary: 'temporal', envVar: 'TEMPORAL_CLI_PATH', module: 'github.com/temporalio/cli/cmd/temporal', version: TEMPORAL_CLI_VERSION }, cacheDir, log);
}

export interface DevServerOptions {
  cli: string;
  /** SQLite file: workflows survive a restart of the server. */
  dbFile: string;
  logFile: string;
  pidFile?: string;
  namespace: string;
  /** @default '127.0.0.1' */
  ip?: string;
  port: number;
  uiPort: number;
  /** Leave the server running after this process exits (`vla dev up`). @default false */
  detached?: boolean;
  /** @default 60000 */
  readyTimeoutMs?: number;
  /**
   * Run inside this network namespace (the cluster LAN, infra/cluster/network.ts), reachable at
   * `ip` there; the readiness check then runs the CLI inside it too. The dev server's own services
   * dial each other at 127.0.0.1 whatever `--ip` says, so in a namespace it listens on all of that
   * namespace's addresses (its loopback and the bridge), which nothing outside the namespace's
   * network can reach. @default none
   */
  netns?: string;
}

export interface DevServer extends StartedProcess {
  address: string;
  /** How to connect to it (plain loopback, no config file). */
  temporal: TemporalConnectionSettings;
  uiUrl: string;
  namespace: string;
  stop(): Promise<void>;
}

/** Starts `temporal server start-dev` on loopback and waits until the namespace answers. */
export async function startDevServer(options: DevServerOptions): Promise<DevServer> {
  const ip = options.ip ?? '127.0.0.1';
  mkdirSync(join(options.dbFile, '..'), { recursive: true });
  const args = [
    'server',
    'start-dev',
    '--ip', options.netns === undefined ? ip : '0.0.0.0',
    '--port', String(options.port),
    '--ui-ip', ip,
    '--ui-port', String(options.uiPort),
    '--db-filename', options.dbFile,
    '--namespace', options.namespace,
    // Applied only when the namespace is created (a new database); on an existing one,
    // waitForTemporal adds the attributes it lacks through the operator service.
    ...SEARCH_ATTRIBUTE_NAMES.flatMap((name) => ['--search-attribute', `${name}=${SEARCH_ATTRIBUTES[name]}`]),
    // WAL + synchronous=NORMAL: 2.2x the dev server's capacity on disk (bench/relabel); a crash of
    // the process loses nothing, only a power cut could lose the last transactions.
    '--sqlite-pragma', 'journal_mode=wal',
    '--sqlite-pragma', 'synchronous=NORMAL',
    // One partition per task queue: a single node needs no more, and rate limits stay exact
    // (the server splits a queue's limit across its partitions).
    '--dynamic-config-value', 'matching.numTaskqueueReadPartitions=1',
    '--dynamic-config-value', 'matching.numTaskqueueWritePartitions=1',
    // A robot episode's chunk activity goes straight back to the station worker that runs the
    // episode, in the answer to its workflow task, instead of through matching (bench/episode).
    '--dynamic-config-value', 'system.enableActivityEagerExecution=true',
    '--log-level', 'warn',
    '--log-format', 'json',
  ];
  const proc = startProcess(options.cli, args, { logFile: options.logFile, pidFile: options.pidFile, detached: options.detached, netns: options.netns });
  const address = `${ip}:${options.port}`;
  const server: DevServer = {
    ...proc,
    address,
    temporal: localDevServerConnection(address, options.namespace),
    uiUrl: `http://${ip}:${options.uiPort}`,
    namespace: options.namespace,
    stop: () => stopProcess(proc.pid),
  };
  try {
    if (options.netns === undefined) await waitForTemporal(server.temporal, options.readyTimeoutMs ?? 60_000, proc.pid);
    else await waitForTemporalInNetns(options.cli, options.netns, address, options.namespace, options.readyTimeoutMs ?? 60_000, proc.pid);
  } catch (err) {
    await server.stop();
    throw new Error(`${(err as Error).message}\nlast lines of ${options.logFile}:\n${tailFile(options.logFile, 20)}`);
  }
  return server;
}

/**
 * Waits for a server this process just started: adds the search attributes its namespace lacks
 * (a database from before they existed), then the health check, repeated until it passes or the
 * time is up (a start-up wait, not a retry of a user's connection).
 */
export async function waitForTemporal(settings: TemporalConnectionSettings, timeoutMs: number, pid?: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    if (pid !== undefined) {
      try {
        process.kill(pid, 0);
      } catch {
        throw new Error(`the Temporal dev server (pid ${pid}) exited during start-up`);
      }
    }
    try {
      await prepareNamespace(settings, { timeoutMs: 2_000 });
      return;
    } catch (err) {
      lastError = err;
      await sleep(250);
    }
  }
  throw new Error(`Temporal at ${settings.connectionOptions.address} not ready after ${timeoutMs} ms: ${(lastError as Error | undefined)?.message ?? 'no answer'}`);
}

/**
 * `waitForTemporal` for a server in a network namespace this process cannot dial: the `temporal`
 * CLI, run inside the namespace, lists the namespace's search attributes.
 */
async function waitForTemporalInNetns(cli: string, netns: string, address: string, namespace: string, timeoutMs: number, pid: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError = 'no answer';
  while (Date.now() < deadline) {
    if (!isAlive(pid)) throw new Error(`the Temporal dev server (pid ${pid}) exited during start-up`);
    try {
      const { stdout } = await run('ip', ['netns', 'exec', netns, cli, 'operator', 'search-attribute', 'list', '--namespace', namespace, '--address', address, '--output', 'json'], { timeout: 10_000 });
      const missing = SEARCH_ATTRIBUTE_NAMES.filter((name) => !stdout.includes(`"${name}"`));
      if (missing.length === 0) return;
      lastError = `search attributes not registered: ${missing.join(', ')}`;
    } catch (err) {
      lastError = ((err as { stderr?: string }).stderr ?? (err as Error).message).trim().split('\n').slice(-1).join('');
    }
    await sleep(500);
  }
  throw new Error(`Temporal at ${address} (network namespace ${netns}) not ready after ${timeoutMs} ms: ${lastError}`);
}

/**
 * Health check through the real client: the connection works, the namespace is described and
 * every search attribute the project needs is registered.
 */
export async function checkTemporal(settings: TemporalConnectionSettings, options: CheckOptions = {}): Promise<void> {
  const connection = await connectClient(settings, options);
  try {
    await checkNamespaceReady(connection, settings.namespace);
  } finally {
    await connection.close();
  }
}

/**
 * `checkTemporal` after adding the search attributes the namespace lacks: for a server the project
 * runs itself (`vla dev up`), whose namespace may predate the newest attributes.
 */
export async function prepareNamespace(settings: TemporalConnectionSettings, options: CheckOptions = {}): Promise<void> {
  const connection = await connectClient(settings, options);
  try {
    await addMissingSearchAttributes(connection, settings.namespace);
    await checkNamespaceReady(connection, settings.namespace);
  } finally {
    await connection.close();
  }
}

/** A search attribute's type as the operator service takes and lists it (temporal.api.enums.v1.IndexedValueType). */
export function indexedValueType(name: SearchAttributeName): NonNullable<ReturnType<typeof encodeSearchAttributeIndexedValueType>> {
  const type = encodeSearchAttributeIndexedValueType(TypedSearchAttributes.toSearchAttributeType(SEARCH_ATTRIBUTES[name]));
  if (type === undefined) throw new Error(`search attribute ${name}: unknown type ${SEARCH_ATTRIBUTES[name]}`);
  return type;
}

/** The registered custom search attributes, by name. */
type CustomAttributes = Record<string, Parameters<typeof encodeSearchAttributeIndexedValueType>[0]>;

/**
 * Registers, each with its type, the project's search attributes the namespace lacks; those it has
 * are kept (one registered with another type is left for `checkNamespaceReady` to name).
 */
export async function addMissingSearchAttributes(connection: Connection, namespace: string): Promise<void> {
  const { customAttributes } = await connection.operatorService.listSearchAttributes({ namespace });
  const missing = SEARCH_ATTRIBUTE_NAMES.filter((name) => !(name in (customAttributes ?? {})));
  if (missing.length === 0) return;
  await connection.operatorService.addSearchAttributes({ namespace, searchAttributes: Object.fromEntries(missing.map((name) => [name, indexedValueType(name)])) });
}

/** What is wrong with the namespace's search attributes: those missing, those of another type. */
function searchAttributeProblems(customAttributes: CustomAttributes): string[] {
  const missing = SEARCH_ATTRIBUTE_NAMES.filter((name) => !(name in customAttributes));
  const mistyped = SEARCH_ATTRIBUTE_NAMES.filter((name) => name in customAttributes && encodeSearchAttributeIndexedValueType(customAttributes[name]) !== indexedValueType(name));
  return [
    ...(missing.length > 0 ? [`search attributes not registered: ${missing.join(', ')}`] : []),
    ...mistyped.map((name) => `search attribute ${name} is registered as ${typeName(customAttributes[name])}, the project needs ${SEARCH_ATTRIBUTES[name]}`),
  ];
}

/** A type the server listed, spelled as the CLI takes it (`KeywordList`). */
function typeName(listed: CustomAttributes[string]): string {
  const encoded = encodeSearchAttributeIndexedValueType(listed);
  const type = Object.values(SearchAttributeType).find((t) => encodeSearchAttributeIndexedValueType(t) === encoded);
  return type === undefined ? String(listed) : TypedSearchAttributes.toMetadataType(type);
}

/** The namespace answers and has every search attribute the project needs, with its type (any connection: plain or mTLS). */
export async function checkNamespaceReady(connection: Connection, namespace: string): Promise<void> {
  await connection.workflowService.describeNamespace({ namespace });
  const attrs = await connection.operatorService.listSearchAttributes({ namespace });
  const problems = searchAttributeProblems(attrs.customAttributes ?? {});
  if (problems.length > 0) throw new Error(problems.join('; '));
}

/** Limits of the connection check: one attempt, no retries. */
export interface CheckOptions {
  /** @default 10000 */
  timeoutMs?: number;
}

/**
 * One cheap check (GetSystemInfo, then DescribeNamespace) over a connection without the SDK's
 * retrying interceptor, so a wrong setting fails in milliseconds with the transport's own reason
 * (grpc-js only says "Failed to connect before the deadline" from `Connection.connect`).
 */
export async function checkTemporalConnection(settings: TemporalConnectionSettings, options: CheckOptions = {}): Promise<void> {
  const connection = Connection.lazy({ ...settings.connectionOptions, interceptors: [] });
  try {
    const deadline = Date.now() + (options.timeoutMs ?? 10_000);
    await connection.withDeadline(deadline, () => connection.workflowService.getSystemInfo({}));
    await connection.withDeadline(deadline, () => connection.workflowService.describeNamespace({ namespace: settings.namespace }));
  } catch (err) {
    throw explainConnectionError(err, settings);
  } finally {
    await connection.close();
  }
}

/** A client connection after the check; `TemporalConnectionError` when the settings do not work. */
export async function connectClient(settings: TemporalConnectionSettings, options: CheckOptions = {}): Promise<Connection> {
  await checkTemporalConnection(settings, options);
  try {
    return await Connection.connect({ ...settings.connectionOptions, connectTimeout: options.timeoutMs ?? 10_000 });
  } catch (err) {
    throw explainConnectionError(err, settings);
  }
}

/** A worker (Rust core) connection after the check; `TemporalConnectionError` when the settings do not work. */
export async function connectWorker(settings: TemporalConnectionSettings, options: CheckOptions = {}): Promise<NativeConnection> {
  await checkTemporalConnection(settings, options);
  try {
    return await NativeConnection.connect(settings.connectionOptions);
  } catch (err) {
    throw await explainWorkerConnectionError(err, settings, options);
  }
}

/**
 * Classifies a failed worker (Rust core) connection. Under TLS 1.3 the client finishes its side of
 * the handshake before the server checks the client certificate, so the Rust transport often sees
 * the server's refusal only as a broken pipe or a closed connection (which one is a race) and not
 * the alert that names it; grpc-js reads the alert. An unclassified failure is therefore diagnosed
 * once more with the client check, which names the cause when there is one.
 */
export async function explainWorkerConnectionError(err: unknown, settings: TemporalConnectionSettings, options: CheckOptions = {}): Promise<TemporalConnectionError> {
  const explained = explainConnectionError(err, settings);
  if (explained.code !== ConnectionErrorCode.UNKNOWN) return explained;
  try {
    await checkTemporalConnection(settings, options);
  } catch (diagnosed) {
    if (diagnosed instanceof TemporalConnectionError && diagnosed.code !== ConnectionErrorCode.UNKNOWN) return diagnosed;
  }
  return explained;
}
