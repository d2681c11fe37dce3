import { Connection } from '@temporalio/client';
import getPort, { portNumbers } from 'get-port';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes, randomInt } from 'node:crypto';
import { z } from 'zod';
import { inspectPidFile, stopByPidFile, type PidFileState, type StopOutcome } from '../../activities/runtime/processes';
import { createBucket, ensureVersitygw, startS3Server } from '../s3-server';
import { checkNamespaceReady, connectClient } from '../temporal';
import { loadTemporalConnection, type TemporalConnectionSettings } from '../temporal-connection';
import { createCertificateAuthority, issueCertificate, type CertificateAuthority, type CertificateFiles } from './certs';
import { ensurePassword, ensurePostgres, findPostgresBinDir, initPostgres, postgresAccepts, postgresAccount, POSTGRES_USER, startPostgres, stopPostgres } from './postgres';
import { clientTls, ensureTemporalServer, ensureTemporalSqlTool, registerNamespace, setupTemporalSchemas, startTemporalServer, waitForFrontend, writeTemporalConfig } from './temporal-server';

/**
 * `vla cluster up|down|status|env`: a production-like stack on one machine, all detached
 * processes with PID files under `<VLA_STATE_DIR>/cluster/`: PostgreSQL, the Temporal server on it
 * with mutual TLS, and versitygw as the shared S3 store. Workers connect with a client certificate
 * of their kind (`vla cluster env <kind>`). Re-running `up` keeps every workflow and object.
 */

/** Where the servers listen: an address, and optionally the network namespace they run in. */
export interface ClusterPlacement {
  /** Run the servers inside this network namespace (`ip netns exec`). @default none: the caller's */
  netns?: string;
  /** The address every server binds and clients dial. @default '127.0.0.1' */
  serverIp: string;
}

export const DEFAULT_PLACEMENT: ClusterPlacement = { serverIp: '127.0.0.1' };

/** Who gets a client certificate: each worker kind, and `admin` for the CLI and operators. */
export const CLUSTER_CLIENTS = ['cpu', 'gemini', 'gpu', 'station', 'admin'] as const;
export type ClusterClient = (typeof CLUSTER_CLIENTS)[number];

export const CLUSTER_COMPONENTS = ['postgres', 'temporal', 's3'] as const;
export type ClusterComponent = (typeof CLUSTER_COMPONENTS)[number];

/** The bucket the cluster's workers share. */
export const CLUSTER_BUCKET = 'vla-store';
/** The AWS profile name in the cluster's shared credentials file. */
export const CLUSTER_AWS_PROFILE = 'vla-cluster';
const S3_REGION = 'us-east-1';
/** The name in the server certificate that the server's own services check. */
const SERVER_NAME = 'localhost';

export interface ClusterPaths {
  root: string;
  certs: string;
  postgresData: string;
  temporalRoot: string;
  s3Data: string;
  /** Passwords and the S3 credentials file, 0600 in a 0700 folder. */
  secrets: string;
  postgresPasswordFile: string;
  s3CredentialsFile: string;
  manifestFile: string;
  logFile(component: ClusterComponent): string;
  pidFile(component: ClusterComponent): string;
  clientCert(client: ClusterClient): CertificateFiles;
  caFile: string;
  serverCert: CertificateFiles;
}

const certName = (client: ClusterClient): string => (client === 'admin' ? 'admin' : `worker-${client}`);

export function clusterPaths(stateDir: string): ClusterPaths {
  const root = join(stateDir, 'cluster');
  const certs = join(root, 'certs');
  const secrets = join(root, 'secrets');
  const files = (name: string): CertificateFiles => ({ certFile: join(certs, `${name}.pem`), keyFile: join(certs, `${name}-key.pem`) });
  return {
    root,
    certs,
    postgresData: join(root, 'postgres'),
    temporalRoot: join(root, 'temporal'),
    s3Data: join(root, 's3'),
    secrets,
    postgresPasswordFile: join(secrets, 'postgres-password'),
    s3CredentialsFile: join(secrets, 's3-credentials'),
    manifestFile: join(root, 'cluster.json'),
    logFile: (c) => join(root, 'logs', `${c}.log`),
    pidFile: (c) => join(root, 'pids', `${c}.pid`),
    clientCert: (client) => files(certName(client)),
    caFile: join(certs, 'ca', 'ca.pem'),
    serverCert: files('temporal-server'),
  };
}

const Port = z.int().min(1).max(65535);

/** What the first `up` decided, kept so later runs bind the same addresses (workers keep their env). */
export const ClusterManifest = z.strictObject({
  serverIp: z.ipv4().or(z.ipv6()),
  netns: z.string().min(1).optional(),
  namespace: z.string().min(1),
  ports: z.strictObject({
    postgres: Port,
    frontend: Port,
    frontendMembership: Port,
    history: Port,
    historyMembership: Port,
    matching: Port,
    matchingMembership: Port,
    worker: Port,
    workerMembership: Port,
    s3: Port,
  }),
});
export type ClusterManifest = z.infer<typeof ClusterManifest>;

export function readManifest(paths: ClusterPaths): ClusterManifest | undefined {
  if (!existsSync(paths.manifestFile)) return undefined;
  const parsed = ClusterManifest.safeParse(JSON.parse(readFileSync(paths.manifestFile, 'utf8')));
  if (!parsed.success) throw new Error(`${paths.manifestFile} is not a cluster manifest: ${z.prettifyError(parsed.error).replace(/\n/g, '; ')}`);
  return parsed.data;
}

const bracket = (ip: string): string => (ip.includes(':') ? `[${ip}]` : ip);

export interface ClusterOptions {
  stateDir: string;
  /** Built binaries (the Temporal server, temporal-sql-tool, versitygw). */
  cacheDir: string;
  /** @default 'vla' */
  namespace?: string;
  /** @default DEFAULT_PLACEMENT (loopback, the caller's network namespace) */
  placement?: ClusterPlacement;
  log?: (line: string) => void;
}

/** The addresses of a running cluster. */
export interface ClusterInfo {
  paths: ClusterPaths;
  manifest: ClusterManifest;
  /** host:port of the Temporal frontend (mTLS). */
  temporalAddress: string;
  s3Endpoint: string;
}

function infoOf(paths: ClusterPaths, manifest: ClusterManifest): ClusterInfo {
  return {
    paths,
    manifest,
    temporalAddress: `${bracket(manifest.serverIp)}:${manifest.ports.frontend}`,
    s3Endpoint: `http://${bracket(manifest.serverIp)}:${manifest.ports.s3}`,
  };
}

async function createManifest(paths: ClusterPaths, namespace: string, placement: ClusterPlacement): Promise<ClusterManifest> {
  const existing = readManifest(paths);
  if (existing) {
    if (existing.serverIp !== placement.serverIp || existing.netns !== placement.netns || existing.namespace !== namespace) {
      throw new Error(
        `the cluster in ${paths.root} was set up for ${existing.serverIp}${existing.netns ? ` in netns ${existing.netns}` : ''}, namespace ${existing.namespace}; ` +
          `asked for ${placement.serverIp}${placement.netns ? ` in netns ${placement.netns}` : ''}, namespace ${namespace}. Use another VLA_STATE_DIR, or \`vla cluster down\` and delete ${paths.root}`,
      );
    }
    return existing;
  }
  // Distinct free ports, each checked on the address the servers bind (for servers in another
  // network namespace, where that address is not ours, on every address here instead). Membership
  // ports go into a smallint column of Temporal's schema, so they stay at or below 32767.
  const taken = new Set<number>();
  const membershipFrom = 20_000 + randomInt(12_000);
  const where = placement.netns === undefined ? { host: placement.serverIp } : {};
  const freePort = async (membership = false): Promise<number> => {
    for (;;) {
      const port = await getPort({ ...where, ...(membership && { port: portNumbers(membershipFrom, 32_767) }) });
      if (!taken.has(port)) {
        taken.add(port);
        return port;
      }
    }
  };
  const manifest: ClusterManifest = {
    serverIp: placement.serverIp,
    ...(placement.netns !== undefined && { netns: placement.netns }),
    namespace,
    ports: {
      postgres: await freePort(),
      frontend: await freePort(),
      frontendMembership: await freePort(true),
      history: await freePort(),
      historyMembership: await freePort(true),
      matching: await freePort(),
      matchingMembership: await freePort(true),
      worker: await freePort(),
      workerMembership: await freePort(true),
      s3: await freePort(),
    },
  };
  mkdirSync(paths.root, { recursive: true });
  writeFileSync(paths.manifestFile, `${JSON.stringify(manifest, null, 2)}\n`);
  return manifest;
}

/** The CA, the server's certificate (serverAuth + clientAuth for internode mTLS) and one client certificate per kind; existing ones are kept. */
async function ensureCertificates(paths: ClusterPaths, serverIp: string, log: (line: string) => void): Promise<void> {
  const ca: CertificateAuthority = await createCertificateAuthority(join(paths.certs, 'ca'));
  const ips = [...new Set([serverIp, '127.0.0.1'])];
  if (!existsSync(paths.serverCert.certFile)) {
    await issueCertificate(ca, paths.certs, { name: 'temporal-server', usage: 'peer', dnsNames: [SERVER_NAME], ipAddresses: ips, days: 365 });
    log(`issued the server certificate (${[SERVER_NAME, ...ips].join(', ')})`);
  }
  for (const client of CLUSTER_CLIENTS) {
    if (existsSync(paths.clientCert(client).certFile)) continue;
    await issueCertificate(ca, paths.certs, { name: certName(client), usage: 'client', days: 365 });
    log(`issued the client certificate ${certName(client)}`);
  }
}

interface S3Credentials {
  accessKeyId: string;
  secretAccessKey: string;
}

/** The S3 keys, generated once into an AWS shared credentials file (0600); workers point AWS_SHARED_CREDENTIALS_FILE at it (docs/design.md, "Secrets travel as files, not values"). */
function ensureS3Credentials(paths: ClusterPaths): S3Credentials {
  if (!existsSync(paths.s3CredentialsFile)) {
    mkdirSync(paths.secrets, { recursive: true, mode: 0o700 });
    const text = [`[${CLUSTER_AWS_PROFILE}]`, `aws_access_key_id = vla-${randomBytes(6).toString('hex')}`, `aws_secret_access_key = ${randomBytes(24).toString('base64url')}`, ''].join('\n');
    writeFileSync(paths.s3CredentialsFile, text, { mode: 0o600, flag: 'wx' });
  }
  const text = readFileSync(paths.s3CredentialsFile, 'utf8');
  const accessKeyId = /aws_access_key_id\s*=\s*(\S+)/.exec(text)?.[1];
  const secretAccessKey = /aws_secret_access_key\s*=\s*(\S+)/.exec(text)?.[1];
  if (!accessKeyId || !secretAccessKey) throw new Error(`${paths.s3CredentialsFile} lacks aws_access_key_id or aws_secret_access_key`);
  return { accessKeyId, secretAccessKey };
}

/** Whether a component runs (its PID file names the process we started); a live process we cannot verify stops `up`. */
function running(component: ClusterComponent, paths: ClusterPaths, log: (line: string) => void): boolean {
  const pidFile = paths.pidFile(component);
  const state = inspectPidFile(pidFile);
  switch (state.kind) {
    case 'ours':
      log(`${component} already running (pid ${state.record.pid})`);
      return true;
    case 'stale':
      log(`${component}: stale PID file (${state.reason}); starting it`);
      return false;
    case 'unverifiable':
      if (state.alive) throw new Error(`${component}: ${state.reason}; if that process is the cluster's ${component}, stop it yourself, then delete ${pidFile}`);
      return false;
    case 'absent':
      return false;
  }
}

/**
 * The connection settings of `client` (a worker kind, or `admin`), loaded the way every process
 * loads them (envconfig) from the variables `vla cluster env <client>` prints; no config file.
 */
export function clusterConnection(info: ClusterInfo, client: ClusterClient = 'admin'): TemporalConnectionSettings {
  return loadTemporalConnection({ env: clusterEnv(info, client), disableFile: true });
}

/** An mTLS connection to the cluster's frontend with the certificate of `client`. */
export function connectCluster(info: ClusterInfo, client: ClusterClient = 'admin'): Promise<Connection> {
  return connectClient(clusterConnection(info, client));
}

/**
 * Installs or builds every program `clusterUp` runs (PostgreSQL, the Temporal server and its SQL
 * tool, versitygw), each cached and skipped when present. Called where the package registries are
 * reachable: a cluster on the LAN is brought up from its control host, whose namespace reaches
 * nothing outside.
 */
export async function ensureClusterPrograms(cacheDir: string, log: (line: string) => void): Promise<void> {
  await ensurePostgres(log);
  await ensureTemporalSqlTool(cacheDir, log);
  await ensureTemporalServer(cacheDir, log);
  await ensureVersitygw({ cacheDir, log });
}

/**
 * Brings the cluster up: certificates, PostgreSQL, schemas, the Temporal server, versitygw, the
 * namespace. Components already running (by their PID file) are kept; data always is.
 */
export async function clusterUp(options: ClusterOptions): Promise<ClusterInfo> {
  const log = options.log ?? (() => {});
  const placement = options.placement ?? DEFAULT_PLACEMENT;
  const paths = clusterPaths(options.stateDir);
  const manifest = await createManifest(paths, options.namespace ?? 'vla', placement);
  const info = infoOf(paths, manifest);
  const { netns, serverIp } = manifest;

  await ensureCertificates(paths, serverIp, log);

  const binDir = await ensurePostgres(log);
  const account = await postgresAccount(log);
  const password = ensurePassword(paths.postgresPasswordFile);
  if (!running('postgres', paths, log)) {
    await initPostgres({ binDir, dataDir: paths.postgresData, passwordFile: paths.postgresPasswordFile, account, bindIp: serverIp, log });
    const pid = await startPostgres({ binDir, dataDir: paths.postgresData, logFile: paths.logFile('postgres'), pidFile: paths.pidFile('postgres'), bindIp: serverIp, port: manifest.ports.postgres, account, netns });
    log(`postgres started (pid ${pid}) on ${bracket(serverIp)}:${manifest.ports.postgres}, data ${paths.postgresData}`);
  }
  const db = { host: serverIp, port: manifest.ports.postgres, user: POSTGRES_USER, password };
  await setupTemporalSchemas({ sqlTool: await ensureTemporalSqlTool(options.cacheDir, log), db, netns, log });

  const adminTls = clientTls(paths.caFile, paths.clientCert('admin'), SERVER_NAME);
  if (!running('temporal', paths, log)) {
    const binary = await ensureTemporalServer(options.cacheDir, log);
    writeTemporalConfig(join(paths.temporalRoot, 'config'), { bindIp: serverIp, ports: manifest.ports, persistence: { plugin: 'postgres12', db }, caFile: paths.caFile, serverCert: paths.serverCert, serverName: SERVER_NAME });
    const pid = startTemporalServer({ binary, rootDir: paths.temporalRoot, logFile: paths.logFile('temporal'), pidFile: paths.pidFile('temporal'), dbPassword: password, netns });
    log(`temporal started (pid ${pid}) at ${info.temporalAddress} (mTLS)`);
  }
  const temporalPid = inspectPidFile(paths.pidFile('temporal'));
  if (temporalPid.kind !== 'ours') throw new Error(`the Temporal server is not running: ${paths.pidFile('temporal')} ${temporalPid.kind}`);
  const connection = await waitForFrontend({ address: info.temporalAddress, tls: adminTls, pid: temporalPid.record.pid, logFile: paths.logFile('temporal') });

  try {
    if (!running('s3', paths, log)) {
      const server = await startS3Server({
        binary: await ensureVersitygw({ cacheDir: options.cacheDir, log }),
        dataDir: paths.s3Data,
        port: manifest.ports.s3,
        bindIp: serverIp,
        netns,
        region: S3_REGION,
        ...ensureS3Credentials(paths),
        logFile: paths.logFile('s3'),
        pidFile: paths.pidFile('s3'),
        detached: true,
      });
      log(`s3 (versitygw) started (pid ${server.pid}) at ${server.endpoint}`);
    }
    await createBucket({ endpoint: info.s3Endpoint, region: S3_REGION, ...ensureS3Credentials(paths) }, CLUSTER_BUCKET);

    await registerNamespace(connection, manifest.namespace);
    log(`namespace ${manifest.namespace} ready with the project's search attributes`);
  } finally {
    await connection.close();
  }
  return info;
}

/** How long `down` waits for each server after SIGTERM (SIGINT for PostgreSQL), then after SIGKILL. */
export const CLUSTER_DOWN_WAITS = { graceMs: 30_000, killWaitMs: 5_000 } as const;

function describeStop(component: ClusterComponent, outcome: StopOutcome, pidFile: string, log: (line: string) => void, problems: string[]): void {
  switch (outcome.kind) {
    case 'absent':
      log(`${component} was not running`);
      return;
    case 'stopped':
      log(`${component} stopped (pid ${outcome.pid})`);
      return;
    case 'stale':
      log(`${component} was not running: stale PID file removed (${outcome.reason})`);
      return;
    case 'unverifiable':
      if (outcome.alive) problems.push(`${component}: ${outcome.reason}; not stopped (stop it yourself if it is ${component}, then delete ${pidFile})`);
      else log(`${component} was not running (${outcome.reason})`);
      return;
    case 'still-alive':
      problems.push(`${component}: ${outcome.reason}; PID file kept at ${pidFile}`);
      return;
  }
}

/**
 * Stops the servers by their PID files: Temporal first (it would only retry a vanished
 * database), then versitygw, then PostgreSQL. Workers are stopped before this by whoever started
 * them. Returns what could not be stopped or verified; empty when the cluster is down.
 */
export async function clusterDown(stateDir: string, log: (line: string) => void = () => {}, waits = CLUSTER_DOWN_WAITS): Promise<string[]> {
  const paths = clusterPaths(stateDir);
  const problems: string[] = [];
  for (const component of ['temporal', 's3'] as const) {
    describeStop(component, await stopByPidFile(paths.pidFile(component), waits), paths.pidFile(component), log, problems);
  }
  describeStop('postgres', await stopPostgres(paths.pidFile('postgres'), waits), paths.pidFile('postgres'), log, problems);
  for (const problem of problems) log(problem);
  return problems;
}

export interface ClusterComponentStatus {
  component: ClusterComponent;
  state: PidFileState['kind'];
  pid?: number;
  reason?: string;
  /** Whether the component answers: pg_isready, the frontend over mTLS with the namespace ready, an HTTP answer from S3. */
  healthy: boolean;
  detail?: string;
  logFile: string;
}

export interface ClusterStatus {
  info?: ClusterInfo;
  components: ClusterComponentStatus[];
}

/** Reads the PID files and checks each server; changes nothing. */
export async function clusterStatus(stateDir: string): Promise<ClusterStatus> {
  const paths = clusterPaths(stateDir);
  const manifest = readManifest(paths);
  const info = manifest && infoOf(paths, manifest);
  const health: Record<ClusterComponent, () => Promise<void>> = {
    postgres: async () => {
      const binDir = findPostgresBinDir();
      if (!binDir || !manifest || !(await postgresAccepts(binDir, manifest.serverIp, manifest.ports.postgres, manifest.netns))) throw new Error('pg_isready: not accepting connections');
    },
    temporal: async () => {
      if (!info) throw new Error('no cluster manifest');
      const connection = await connectCluster(info);
      try {
        await checkNamespaceReady(connection, info.manifest.namespace);
      } finally {
        await connection.close();
      }
    },
    s3: async () => {
      if (!info) throw new Error('no cluster manifest');
      const res = await fetch(info.s3Endpoint, { signal: AbortSignal.timeout(3_000) });
      await res.body?.cancel();
    },
  };
  const components: ClusterComponentStatus[] = [];
  for (const component of CLUSTER_COMPONENTS) {
    const state = inspectPidFile(paths.pidFile(component));
    let healthy = false;
    let detail: string | undefined;
    try {
      await health[component]();
      healthy = true;
    } catch (err) {
      detail = err instanceof Error ? err.message : String(err);
    }
    components.push({
      component,
      state: state.kind,
      ...(state.kind === 'ours' || state.kind === 'stale' ? { pid: state.record.pid } : state.kind === 'unverifiable' && state.pid !== undefined ? { pid: state.pid } : {}),
      ...((state.kind === 'stale' || state.kind === 'unverifiable') && { reason: state.reason }),
      healthy,
      ...(detail !== undefined && { detail }),
      logFile: paths.logFile(component),
    });
  }
  return { ...(info && { info }), components };
}

/**
 * The environment a worker of `client`'s kind needs (or the CLI, `admin`): Temporal's standard
 * connection variables with paths to its certificate files, and the shared S3 store. Paths only:
 * never a key or a secret itself.
 */
export function clusterEnv(info: ClusterInfo, client: ClusterClient): Record<string, string> {
  const cert = info.paths.clientCert(client);
  return {
    TEMPORAL_ADDRESS: info.temporalAddress,
    TEMPORAL_NAMESPACE: info.manifest.namespace,
    TEMPORAL_TLS_SERVER_CA_CERT_PATH: info.paths.caFile,
    // A name the server certificate holds: checked instead of the IP address, which TLS's SNI cannot
    // carry (Node warns, DEP0123, when a client sends an IP address as the server name).
    TEMPORAL_TLS_SERVER_NAME: SERVER_NAME,
    TEMPORAL_TLS_CLIENT_CERT_PATH: cert.certFile,
    TEMPORAL_TLS_CLIENT_KEY_PATH: cert.keyFile,
    VLA_STORE_URI: `s3://${CLUSTER_BUCKET}`,
    VLA_MULTI_HOST: '1',
    AWS_ENDPOINT_URL_S3: info.s3Endpoint,
    AWS_REGION: S3_REGION,
    AWS_SHARED_CREDENTIALS_FILE: info.paths.s3CredentialsFile,
    AWS_PROFILE: CLUSTER_AWS_PROFILE,
  };
}

/** The cluster as `up` left it, for `env` and tests; throws when it was never set up. */
export function clusterInfo(stateDir: string): ClusterInfo {
  const paths = clusterPaths(stateDir);
  const manifest = readManifest(paths);
  if (!manifest) throw new Error(`no cluster in ${paths.root}; run \`vla cluster up\` first`);
  return infoOf(paths, manifest);
}
