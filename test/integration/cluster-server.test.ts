import { Client } from '@temporalio/client';
import { Worker } from '@temporalio/worker';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createObjectStore, type ObjectStore } from '../../activities/store';
import { clusterConnection, clusterDown, clusterEnv, clusterPaths, clusterStatus, clusterUp, CLUSTER_BUCKET, type ClusterClient, type ClusterInfo } from '../../infra/cluster/cluster';
import { createCertificateAuthority, issueCertificate } from '../../infra/cluster/certs';
import { findPostgresBinDir, initPostgres, postgresAccount, stopPostgres } from '../../infra/cluster/postgres';
import { loadConfig } from '../../infra/config';
import { connectClient, connectWorker } from '../../infra/temporal';
import { ConnectionErrorCode, loadTemporalConnection, TemporalConnectionError } from '../../infra/temporal-connection';
import { inspectPidFile, isAlive, stopByPidFile } from '../../activities/runtime/processes';
import { createCpuWorker } from '../../workers/cpu';
import { quietRuntime, uniqueTaskQueue, workflowBundle } from '../helpers/temporal';

/**
 * The cluster profile end to end: PostgreSQL, the Temporal server built from go.temporal.io/server
 * with mutual TLS, versitygw. Each step starts or restarts real servers (a few seconds each when
 * the machine is idle; the `up` of a fresh cluster, with initdb and the schemas, about 15 s).
 * The limits below allow ten times that for a loaded machine.
 */
const UP_TIMEOUT_MS = 300_000;
const STEP_TIMEOUT_MS = 300_000;
const NAMESPACE = 'vla-cluster-test';

const PROCS = '/proc';
/** Live processes (not zombies) whose /proc stat field `field` (4: parent, 5: process group) is `value`. */
function processesWhere(field: 'ppid' | 'pgrp', value: number): number[] {
  const found: number[] = [];
  for (const entry of readdirSync(PROCS)) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(join(PROCS, entry, 'stat'), 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[field === 'ppid' ? 1 : 2]) === value && fields[0] !== 'Z') found.push(Number(entry));
    } catch {
      // exited while we looked
    }
  }
  return found;
}

describe('cluster profile: PostgreSQL + Temporal server (mTLS) + versitygw', () => {
  let stateDir: string;
  let info: ClusterInfo;
  let store: ObjectStore;

  beforeAll(async () => {
    quietRuntime();
    stateDir = mkdtempSync(join(tmpdir(), 'vla-cluster-'));
    // PostgreSQL runs as an unprivileged account when we are root: it must be able to reach the state folder.
    chmodSync(stateDir, 0o755);
    info = await clusterUp({ stateDir, cacheDir: loadConfig().cacheDir, namespace: NAMESPACE });
    // The worker's store takes its S3 settings from the environment `vla cluster env cpu` prints.
    const env = clusterEnv(info, 'cpu');
    for (const key of ['AWS_ENDPOINT_URL_S3', 'AWS_REGION', 'AWS_SHARED_CREDENTIALS_FILE', 'AWS_PROFILE'] as const) process.env[key] = env[key];
    store = createObjectStore({ roots: 'unconfined' });
  }, UP_TIMEOUT_MS);

  afterAll(async () => {
    if (stateDir === undefined) return;
    await clusterDown(stateDir);
    rmSync(stateDir, { recursive: true, force: true });
  }, STEP_TIMEOUT_MS);

  /** The settings a process of `client`'s kind loads (envconfig) from what `vla cluster env <client>` prints. */
  const settingsFor = (client: ClusterClient) => clusterConnection(info, client);

  /** A client with the admin certificate, and a CPU worker with the worker-cpu certificate on a fresh queue, while `fn` runs. */
  async function withClient<T>(fn: (client: Client) => Promise<T>): Promise<T> {
    const connection = await connectClient(settingsFor('admin'));
    try {
      return await fn(new Client({ connection, namespace: NAMESPACE }));
    } finally {
      await connection.close();
    }
  }
  async function runCpuWorkerUntil<T>(taskQueue: string, promise: Promise<T>): Promise<T> {
    const connection = await connectWorker(settingsFor('cpu'));
    try {
      const worker = await createCpuWorker({ connection, namespace: NAMESPACE, taskQueue, workflowBundle: await workflowBundle(), deps: { store } });
      return await worker.runUntil(promise);
    } finally {
      await connection.close();
    }
  }
  const smokeUri = (name: string): string => `s3://${CLUSTER_BUCKET}/cluster-test/${name}.txt`;

  /**
   * Starts the smoke workflow and runs its first workflow task on a worker without activities: the
   * workflow is in flight, its activity scheduled and waiting in the server's database.
   */
  async function startInFlight(name: string): Promise<{ workflowId: string; taskQueue: string }> {
    const taskQueue = uniqueTaskQueue(name);
    const workflowId = `cluster-${taskQueue}`;
    await withClient(async (client) => {
      const handle = await client.workflow.start('storeSmoke', { taskQueue, workflowId, args: [{ outputUri: smokeUri(name), text: name }] });
      const connection = await connectWorker(settingsFor('cpu'));
      try {
        const workflowsOnly = await Worker.create({ connection, namespace: NAMESPACE, taskQueue, workflowBundle: await workflowBundle() });
        await workflowsOnly.runUntil(async () => {
          while (((await handle.describe()).raw.pendingActivities ?? []).length === 0) await sleep(200);
        });
      } finally {
        await connection.close();
      }
    });
    return { workflowId, taskQueue };
  }

  it('runs a workflow end to end over mTLS, writing to the cluster S3 store, with the namespace and search attributes registered', async () => {
    // Clients check a name the server certificate holds, never send an IP address as TLS server name (Node's DEP0123).
    const warnings: Error[] = [];
    const onWarning = (w: Error): void => void warnings.push(w);
    process.on('warning', onWarning);
    await withClient(async (client) => {
      const taskQueue = uniqueTaskQueue('cluster-smoke');
      const result = await runCpuWorkerUntil(
        taskQueue,
        client.workflow.execute('storeSmoke', { taskQueue, workflowId: `cluster-${taskQueue}`, args: [{ outputUri: smokeUri('hello'), text: 'hello' }] }),
      );
      expect(result).toMatchObject({ uri: smokeUri('hello'), bytes: 5, created: true });
      expect((await store.get(smokeUri('hello'))).toString()).toBe('hello');
      // The workflow tagged itself with a search attribute: registered on this server by `up`.
      expect((await client.workflow.getHandle(`cluster-${taskQueue}`).describe()).searchAttributes.VlaStage).toEqual(['smoke']);
    });
    process.off('warning', onWarning);
    expect(warnings.map((w) => w.message)).not.toContainEqual(expect.stringContaining('TLS ServerName to an IP address'));
    // Secrets stay in their 0600 files: neither the server's config nor a worker's environment holds one.
    const paths = clusterPaths(stateDir);
    const secrets = [readFileSync(paths.postgresPasswordFile, 'utf8').trim(), /aws_secret_access_key = (\S+)/.exec(readFileSync(paths.s3CredentialsFile, 'utf8'))![1]!];
    const serverConfig = readFileSync(join(paths.temporalRoot, 'config', 'cluster.yaml'), 'utf8');
    const workerEnv = Object.values(clusterEnv(info, 'gpu')).join('\n');
    for (const secret of secrets) {
      expect(serverConfig).not.toContain(secret);
      expect(workerEnv).not.toContain(secret);
    }
    expect(statSync(paths.postgresPasswordFile).mode & 0o077).toBe(0);
    expect(statSync(paths.s3CredentialsFile).mode & 0o077).toBe(0);
    expect(clusterEnv(info, 'gpu').TEMPORAL_TLS_CLIENT_CERT_PATH).toBe(join(paths.certs, 'worker-gpu.pem'));
    const status = await clusterStatus(stateDir);
    expect(status.components.map((c) => [c.component, c.state, c.healthy])).toEqual([
      ['postgres', 'ours', true],
      ['temporal', 'ours', true],
      ['s3', 'ours', true],
    ]);
  }, STEP_TIMEOUT_MS);

  it('refuses a client without a certificate and one whose certificate another CA signed, naming the cause', async () => {
    const env = clusterEnv(info, 'cpu');
    const failure = async (overrides: Record<string, string | undefined>): Promise<TemporalConnectionError> => {
      const settings = loadTemporalConnection({ env: Object.fromEntries(Object.entries({ ...env, ...overrides }).filter(([, v]) => v !== undefined)), disableFile: true });
      const err: unknown = await connectWorker(settings, { timeoutMs: 15_000 }).then(
        async (connection) => {
          await connection.close();
          return undefined;
        },
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(TemporalConnectionError);
      return err as TemporalConnectionError;
    };
    // The cluster's own certificate goes through: the refusals below are about the certificate.
    await (await connectWorker(settingsFor('cpu'))).close();
    expect((await failure({ TEMPORAL_TLS_CLIENT_CERT_PATH: undefined, TEMPORAL_TLS_CLIENT_KEY_PATH: undefined })).code).toBe(ConnectionErrorCode.CLIENT_CERT_REQUIRED);

    const otherDir = mkdtempSync(join(tmpdir(), 'vla-other-ca-'));
    try {
      const otherCa = await createCertificateAuthority(join(otherDir, 'ca'), 'some other CA');
      const stranger = await issueCertificate(otherCa, otherDir, { name: 'worker-cpu', usage: 'client' });
      const refused = await failure({ TEMPORAL_TLS_CLIENT_CERT_PATH: stranger.certFile, TEMPORAL_TLS_CLIENT_KEY_PATH: stranger.keyFile });
      expect(refused.code).toBe(ConnectionErrorCode.CLIENT_CERT_REJECTED);
      expect(refused.message).not.toContain(readFileSync(stranger.keyFile, 'utf8').split('\n')[1]);
    } finally {
      rmSync(otherDir, { recursive: true, force: true });
    }
  }, STEP_TIMEOUT_MS);

  it('keeps an in-flight workflow (its activity scheduled) across a restart of the Temporal server (`up` again restarts only what is down)', async () => {
    const paths = clusterPaths(stateDir);
    const before = inspectPidFile(paths.pidFile('postgres'));
    const { workflowId, taskQueue } = await startInFlight('temporal-restart');
    expect((await stopByPidFile(paths.pidFile('temporal'))).kind).toBe('stopped');
    await clusterUp({ stateDir, cacheDir: loadConfig().cacheDir, namespace: NAMESPACE });
    // PostgreSQL kept running: only the Temporal server restarted.
    expect(inspectPidFile(paths.pidFile('postgres'))).toEqual(before);
    const result = await withClient((client) => runCpuWorkerUntil(taskQueue, client.workflow.getHandle(workflowId).result()));
    expect(result).toMatchObject({ uri: smokeUri('temporal-restart'), created: true });
  }, STEP_TIMEOUT_MS);

  it('keeps an in-flight workflow across a restart of PostgreSQL under the running Temporal server', async () => {
    const paths = clusterPaths(stateDir);
    const temporalBefore = inspectPidFile(paths.pidFile('temporal'));
    expect(temporalBefore.kind).toBe('ours');
    const { workflowId, taskQueue } = await startInFlight('postgres-restart');
    expect((await stopPostgres(paths.pidFile('postgres'))).kind).toBe('stopped');
    await clusterUp({ stateDir, cacheDir: loadConfig().cacheDir, namespace: NAMESPACE });
    // The server rode out the database restart: same process.
    expect(inspectPidFile(paths.pidFile('temporal'))).toEqual(temporalBefore);
    const result = await withClient((client) => runCpuWorkerUntil(taskQueue, client.workflow.getHandle(workflowId).result()));
    expect(result).toMatchObject({ uri: smokeUri('postgres-restart'), created: true });
    expect((await store.get(smokeUri('postgres-restart'))).toString()).toBe('postgres-restart');
  }, STEP_TIMEOUT_MS);

  it('`down` leaves no process: each server, its children and its process group are gone', async () => {
    const paths = clusterPaths(stateDir);
    const pids = (['postgres', 'temporal', 's3'] as const).map((component) => {
      const state = inspectPidFile(paths.pidFile(component));
      if (state.kind !== 'ours') throw new Error(`${component} is not running before down: ${state.kind}`);
      return state.record.pid;
    });
    // PostgreSQL forks helpers (checkpointer, walwriter, one per session...), each in a session of its own.
    const children = pids.flatMap((pid) => processesWhere('ppid', pid));
    expect(processesWhere('ppid', pids[0]!).length).toBeGreaterThan(1);
    expect(await clusterDown(stateDir)).toEqual([]);
    for (const pid of [...pids, ...children]) expect(isAlive(pid), `pid ${pid}`).toBe(false);
    for (const pid of pids) expect(processesWhere('pgrp', pid)).toEqual([]);
    expect((await clusterStatus(stateDir)).components.map((c) => [c.state, c.healthy])).toEqual([
      ['absent', false],
      ['absent', false],
      ['absent', false],
    ]);
  }, STEP_TIMEOUT_MS);

  it('lets in password logins from the server address when PostgreSQL listens off loopback (Temporal dials it from there)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vla-pg-hba-'));
    try {
      chmodSync(dir, 0o755);
      const dataDir = join(dir, 'postgres');
      await initPostgres({ binDir: findPostgresBinDir()!, dataDir, passwordFile: join(dir, 'pw'), account: await postgresAccount(() => {}), bindIp: '10.231.7.2', log: () => {} });
      const rules = readFileSync(join(dataDir, 'pg_hba.conf'), 'utf8').split('\n').filter((line) => line.startsWith('host '));
      expect(rules).toContain('host all all 10.231.7.2/32 scram-sha-256');
      // Nothing trusts without a password.
      expect(rules.every((line) => line.endsWith('scram-sha-256'))).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, STEP_TIMEOUT_MS);

  it.runIf(process.getuid?.() === 0)('names the folder when PostgreSQL (run as an unprivileged account) cannot reach its data directory', async () => {
    const binDir = findPostgresBinDir();
    expect(binDir).toBeDefined();
    const closed = mkdtempSync(join(tmpdir(), 'vla-closed-'));
    try {
      chmodSync(closed, 0o700);
      const dataDir = join(closed, 'state', 'cluster', 'postgres');
      await expect(initPostgres({ binDir: binDir!, dataDir, passwordFile: join(closed, 'pw'), account: await postgresAccount(() => {}), bindIp: '127.0.0.1', log: () => {} })).rejects.toThrow(
        `PostgreSQL runs as the account postgres, which cannot reach ${dataDir}`,
      );
    } finally {
      rmSync(closed, { recursive: true, force: true });
    }
  });
});
