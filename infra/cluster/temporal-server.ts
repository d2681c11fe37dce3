import { Connection, type TLSConfig } from '@temporalio/client';
import { msToTs } from '@temporalio/common/lib/time';
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { isAlive, startProcess, tailFile } from '../../activities/runtime/processes';
import { addMissingSearchAttributes, checkNamespaceReady } from '../temporal';
import { ensureGoTool } from '../tools';
import type { CertificateFiles } from './certs';

const run = promisify(execFile);

/**
 * The Temporal server of the cluster profile, built from the official Go module (no dev server):
 * frontend, history, matching and the system worker in one process on PostgreSQL (`postgres12`
 * plugin, default and visibility stores), mTLS on the frontend and between services.
 */

/** The server release the cluster profile runs; its schemas come with the same module. */
export const TEMPORAL_SERVER_VERSION = 'v1.29.1';

/**
 * The server binary: `TEMPORAL_SERVER_PATH`, else built once into the cache. Never looked up on
 * PATH: the binary is called `server`, a name anything could have.
 */
export function ensureTemporalServer(cacheDir: string, log: (line: string) => void): Promise<string> {
  return ensureGoTool({ binary: 'server', envVar: 'TEMPORAL_SERVER_PATH', module: 'go.temporal.io/server/cmd/server', version: TEMPORAL_SERVER_VERSION, lookOnPath: false }, cacheDir, log);
}

/** temporal-sql-tool: `TEMPORAL_SQL_TOOL_PATH`, else built once into the cache (its binary is `sql`: not looked up on PATH either). */
export function ensureTemporalSqlTool(cacheDir: string, log: (line: string) => void): Promise<string> {
  return ensureGoTool({ binary: 'sql', envVar: 'TEMPORAL_SQL_TOOL_PATH', module: 'go.temporal.io/server/cmd/tools/sql', version: TEMPORAL_SERVER_VERSION, lookOnPath: false }, cacheDir, log);
}

export interface SqlEndpoint {
  host: string;
  port: number;
  user: string;
  password: string;
}

/** The two databases and the schema each gets (embedded in the tool, by name). */
const DATABASES = [
  { name: 'temporal', schema: 'postgresql/v12/temporal' },
  { name: 'temporal_visibility', schema: 'postgresql/v12/visibility' },
] as const;

async function sqlTool(tool: string, db: SqlEndpoint, database: string, args: string[], netns?: string): Promise<string> {
  const argv = ['--endpoint', db.host, '--port', String(db.port), '--user', db.user, '--plugin', 'postgres12', '--database', database, ...args];
  const [file, fullArgv] = netns === undefined ? [tool, argv] : ['ip', ['netns', 'exec', netns, tool, ...argv]];
  try {
    // The password goes through the environment, not argv, which any local user can read in `ps`.
    const { stdout, stderr } = await run(file, fullArgv, { env: { ...process.env, SQL_PASSWORD: db.password }, maxBuffer: 16 * 1024 * 1024 });
    return `${stdout}${stderr}`;
  } catch (err) {
    const output = `${(err as { stdout?: string }).stdout ?? ''}${(err as { stderr?: string }).stderr ?? ''}`;
    throw new Error(`temporal-sql-tool ${args[0]} on ${database} failed: ${output.trim().split('\n').slice(-5).join(' / ') || (err as Error).message}`);
  }
}

/**
 * Creates the `temporal` and `temporal_visibility` databases and brings both schemas to the
 * version this server release embeds, with the official temporal-sql-tool. Safe to run again:
 * `create-database` keeps an existing database, `setup-schema -v 0.0` leaves a newer version alone, and
 * `update-schema` applies only the missing steps.
 */
export async function setupTemporalSchemas(options: { sqlTool: string; db: SqlEndpoint; netns?: string; log: (line: string) => void }): Promise<void> {
  for (const { name, schema } of DATABASES) {
    await sqlTool(options.sqlTool, options.db, name, ['create-database'], options.netns);
    await sqlTool(options.sqlTool, options.db, name, ['setup-schema', '-v', '0.0'], options.netns);
    await sqlTool(options.sqlTool, options.db, name, ['update-schema', '--schema-name', schema], options.netns);
  }
  options.log(`databases ${DATABASES.map((d) => d.name).join(' and ')} exist, schemas up to date (${TEMPORAL_SERVER_VERSION})`);
}

/** An IP as it stands before `:port` (IPv6 in brackets). */
const bracket = (ip: string): string => (ip.includes(':') ? `[${ip}]` : ip);

/** The ports of one server process: each service's gRPC and membership port. */
export interface TemporalPorts {
  frontend: number;
  frontendMembership: number;
  history: number;
  historyMembership: number;
  matching: number;
  matchingMembership: number;
  worker: number;
  workerMembership: number;
}

/** The variable that hands the server its database password (the config file names it, never holds it). */
export const POSTGRES_PASSWORD_VAR = 'VLA_CLUSTER_POSTGRES_PASSWORD';

/** Where the server keeps its state: PostgreSQL (the cluster profile), or SQLite in memory (test fixtures that need a TLS server and nothing else). */
export type TemporalPersistence = { plugin: 'postgres12'; db: Omit<SqlEndpoint, 'password'> } | { plugin: 'sqlite-memory' };

export interface TemporalServerConfig {
  bindIp: string;
  ports: TemporalPorts;
  persistence: TemporalPersistence;
  /** The cluster CA; every client and peer certificate must chain to it. */
  caFile: string;
  /** Serves the frontend and the services' own gRPC, and identifies this process to its peers (serverAuth + clientAuth). */
  serverCert: CertificateFiles;
  /** A name in the server certificate that peers check. */
  serverName: string;
}

/** The dynamic config: the settings the dev server gets in infra/temporal.ts, so both profiles behave alike. */
export const CLUSTER_DYNAMIC_CONFIG = {
  // One partition per task queue: rate limits stay exact (the server splits a queue's limit across partitions).
  'matching.numTaskqueueReadPartitions': [{ value: 1 }],
  'matching.numTaskqueueWritePartitions': [{ value: 1 }],
  // A station's chunk activity goes straight back to the worker running the episode.
  'system.enableActivityEagerExecution': [{ value: true }],
} as const;

/**
 * The server's config file (`<configDir>/cluster.yaml`) and its dynamic config. Written as JSON,
 * which the server's YAML reader takes as it is.
 */
export function writeTemporalConfig(configDir: string, config: TemporalServerConfig): void {
  mkdirSync(configDir, { recursive: true, mode: 0o700 });
  const dynamicConfigFile = join(configDir, 'dynamicconfig.yaml');
  const { persistence } = config;
  const store = (databaseName: string, maxConns: number): object =>
    persistence.plugin === 'postgres12'
      ? {
          sql: {
            pluginName: 'postgres12',
            databaseName,
            connectAddr: `${bracket(config.bindIp)}:${persistence.db.port}`,
            connectProtocol: 'tcp',
            user: persistence.db.user,
            // Filled in from the server's environment when it loads the file: the password stays out of it.
            password: `{{ env \`${POSTGRES_PASSWORD_VAR}\` }}`,
            maxConns,
            maxIdleConns: maxConns,
            maxConnLifetime: '1h',
          },
        }
      : {
          // One private in-memory database per store; the schema is created at start.
          sql: { pluginName: 'sqlite', databaseName: databaseName, connectAddr: 'localhost', connectProtocol: 'tcp', connectAttributes: { mode: 'memory', cache: 'private' }, maxConns: 1, maxIdleConns: 1 },
        };
  const service = (grpcPort: number, membershipPort: number): object => ({ rpc: { grpcPort, membershipPort, bindOnIP: config.bindIp } });
  const serverTls = { certFile: config.serverCert.certFile, keyFile: config.serverCert.keyFile, requireClientAuth: true, clientCaFiles: [config.caFile] };
  const clientTls = { serverName: config.serverName, rootCaFiles: [config.caFile] };
  const yaml = {
    log: { stdout: true, level: 'warn', format: 'json' },
    persistence: {
      defaultStore: 'postgres-default',
      visibilityStore: 'postgres-visibility',
      // Shards cannot change after the first start; 4 is plenty for one node.
      numHistoryShards: 4,
      datastores: { 'postgres-default': store('temporal', 20), 'postgres-visibility': store('temporal_visibility', 4) },
    },
    global: {
      membership: { maxJoinDuration: '30s', broadcastAddress: config.bindIp },
      tls: {
        // Services talk to each other with mutual TLS too; the server certificate is both ends.
        internode: { server: serverTls, client: clientTls },
        frontend: { server: serverTls, client: clientTls },
        // The system worker dials the frontend like any client, with the same certificate.
        systemWorker: { certFile: config.serverCert.certFile, keyFile: config.serverCert.keyFile, client: clientTls },
      },
    },
    services: {
      frontend: service(config.ports.frontend, config.ports.frontendMembership),
      history: service(config.ports.history, config.ports.historyMembership),
      matching: service(config.ports.matching, config.ports.matchingMembership),
      worker: service(config.ports.worker, config.ports.workerMembership),
    },
    clusterMetadata: {
      enableGlobalNamespace: false,
      failoverVersionIncrement: 10,
      masterClusterName: 'active',
      currentClusterName: 'active',
      clusterInformation: { active: { enabled: true, initialFailoverVersion: 1, rpcName: 'frontend', rpcAddress: `${bracket(config.bindIp)}:${config.ports.frontend}` } },
    },
    dcRedirectionPolicy: { policy: 'noop' },
    dynamicConfigClient: { filepath: dynamicConfigFile, pollInterval: '60s' },
  };
  // The comment turns on the server's template rendering (sprig), which `env` above needs.
  writeFileSync(join(configDir, 'cluster.yaml'), `# enable-template\n${JSON.stringify(yaml, null, 2)}\n`, { mode: 0o600 });
  writeFileSync(dynamicConfigFile, `${JSON.stringify(CLUSTER_DYNAMIC_CONFIG, null, 2)}\n`);
}

/**
 * Starts the server from `<rootDir>/config/cluster.yaml`; returns its PID. With a PID file it is
 * detached (it outlives this process, `vla cluster down` stops it); without, it is this process's child.
 */
export function startTemporalServer(options: { binary: string; rootDir: string; logFile: string; pidFile?: string; dbPassword?: string; netns?: string }): number {
  // --allow-no-auth: no authorizer; mutual TLS is the gate (every certificate from the cluster CA is trusted).
  const args = ['--root', options.rootDir, '--config', 'config', '--env', 'cluster', '--allow-no-auth', 'start'];
  return startProcess(options.binary, args, {
    logFile: options.logFile,
    pidFile: options.pidFile,
    detached: options.pidFile !== undefined,
    netns: options.netns,
    cwd: options.rootDir,
    env: { ...process.env, ...(options.dbPassword !== undefined && { [POSTGRES_PASSWORD_VAR]: options.dbPassword }) },
  }).pid;
}

/** Client TLS options from certificate files: the CA to trust and the certificate to present. */
export function clientTls(caFile: string, client: CertificateFiles | undefined, serverName?: string): TLSConfig {
  return {
    serverRootCACertificate: readFileSync(caFile),
    ...(client && { clientCertPair: { crt: readFileSync(client.certFile), key: readFileSync(client.keyFile) } }),
    ...(serverName !== undefined && { serverNameOverride: serverName }),
  };
}

const RETENTION = '3 days';
/** gRPC status ALREADY_EXISTS. */
const ALREADY_EXISTS = 6;

/**
 * Registers the namespace (3 days' retention) and the project's search attributes, each with
 * its type, through the workflow and operator services; what exists is kept. Then waits until the frontend serves both
 * (its namespace cache refreshes every few seconds).
 */
export async function registerNamespace(connection: Connection, namespace: string, timeoutMs = 60_000): Promise<void> {
  try {
    await connection.workflowService.registerNamespace({ namespace, workflowExecutionRetentionPeriod: msToTs(RETENTION), description: 'vla-pipelines' });
  } catch (err) {
    if ((err as { code?: number }).code !== ALREADY_EXISTS) throw err;
  }
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      await addMissingSearchAttributes(connection, namespace);
      await checkNamespaceReady(connection, namespace);
      return;
    } catch (err) {
      lastError = err;
      await sleep(500);
    }
  }
  throw new Error(`namespace ${namespace} not ready after ${timeoutMs} ms: ${(lastError as Error | undefined)?.message ?? 'no answer'}`);
}

/** Connects over mTLS until the frontend answers (the server process must stay alive meanwhile). */
export async function waitForFrontend(options: { address: string; tls: TLSConfig; pid: number; logFile: string; timeoutMs?: number }): Promise<Connection> {
  const deadline = Date.now() + (options.timeoutMs ?? 120_000);
  let lastError: unknown;
  while (Date.now() < deadline) {
    if (!isAlive(options.pid)) throw new Error(`the Temporal server (pid ${options.pid}) exited during start-up; last lines of ${options.logFile}:\n${tailFile(options.logFile, 20)}`);
    try {
      const connection = await Connection.connect({ address: options.address, tls: options.tls, connectTimeout: 2_000 });
      try {
        await connection.workflowService.getSystemInfo({});
        return connection;
      } catch (err) {
        await connection.close();
        throw err;
      }
    } catch (err) {
      lastError = err;
      await sleep(500);
    }
  }
  throw new Error(`the Temporal server at ${options.address} did not answer: ${(lastError as Error | undefined)?.message ?? 'no answer'}; last lines of ${options.logFile}:\n${tailFile(options.logFile, 20)}`);
}
