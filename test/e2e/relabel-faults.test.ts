import { Client } from '@temporalio/client';
import getPort from 'get-port';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileStore, getJson } from '../../activities/store';
import { DLanRecord } from '../../data-schemas/d-lan';
import { fileUri } from '../../data-schemas/uri';
import { REPO_ROOT, loadConfig } from '../../infra/config';
import { startProcess, stopProcess, type StartedProcess } from '../../activities/runtime/processes';
import { connectClient, ensureTemporalCli, startDevServer, type DevServer } from '../../infra/temporal';
import type { relabelDataset } from '../../workflows';
import { importBridgeSample, replicateDataset } from '../helpers/datasets';
import { devServerEnv } from '../helpers/temporal';

const TRAJECTORIES = 200;

/**
 * Crash tests with real processes: a worker SIGKILLed several times and a Temporal server
 * restarted in the middle of a relabel run of 200 trajectories. Nothing may be lost or duplicated.
 */
describe('relabelDataset survives killed workers and a restarted server', () => {
  const store = new FileStore();
  let dir: string;
  let server: DevServer;
  let serverOptions: Parameters<typeof startDevServer>[0];
  let worker: StartedProcess | undefined;
  let datasetUri: string;
  let outputDir: string;

  const startWorker = (): StartedProcess =>
    startProcess(join(REPO_ROOT, 'cli', 'vla.sh'), ['worker', 'cpu'], {
      logFile: join(dir, 'worker.log'),
      detached: true, // its own process group: SIGKILL reaches tsx and node together
      cwd: REPO_ROOT,
      // The worker's store is confined to its roots; the default root is the store URI.
      env: { ...devServerEnv(server.address, server.namespace), VLA_STORE_URI: fileUri(dir) },
    });
  const killWorker = async (): Promise<void> => {
    if (!worker) return;
    process.kill(-worker.pid, 'SIGKILL');
    await stopProcess(worker.pid, { group: true, graceMs: 1_000 });
    worker = undefined;
  };
  const recordsWritten = (): number => (existsSync(join(outputDir, 'records')) ? readdirSync(join(outputDir, 'records')).filter((f) => f.endsWith('.json')).length : 0);
  const waitForRecords = async (n: number): Promise<void> => {
    const deadline = Date.now() + 180_000;
    while (recordsWritten() < n) {
      if (Date.now() > deadline) throw new Error(`only ${recordsWritten()} records after 180 s (waiting for ${n})`);
      await sleep(100);
    }
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'vla-faults-'));
    const bridge = fileUri(join(dir, 'bridge'));
    datasetUri = fileUri(join(dir, 'bridge-x8'));
    outputDir = join(dir, 'labels');
    await importBridgeSample(store, bridge);
    await replicateDataset(store, bridge, datasetUri, TRAJECTORIES / 25);
    serverOptions = {
      cli: await ensureTemporalCli(loadConfig().cacheDir),
      dbFile: join(dir, 'temporal.sqlite'),
      logFile: join(dir, 'temporal.log'),
      namespace: 'vla',
      port: await getPort({ host: '127.0.0.1' }),
      uiPort: await getPort({ host: '127.0.0.1' }),
    };
    server = await startDevServer(serverOptions);
  });
  afterAll(async () => {
    await killWorker();
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('writes exactly one record per trajectory', { timeout: 600_000 }, async () => {
    worker = startWorker();
    const connection = await connectClient(server.temporal);
    const client = new Client({ connection, namespace: 'vla' });
    const handle = await client.workflow.start<typeof relabelDataset>('relabelDataset', {
      taskQueue: 'vla-cpu',
      workflowId: 'relabel-faults',
      args: [{ datasetUri, outputUri: fileUri(outputDir), maxConcurrent: 6, childrenPerRun: 60 }],
    });

    for (const at of [20, 70, 120]) {
      await waitForRecords(at);
      await killWorker();
      await sleep(500);
      worker = startWorker();
    }

    // The server goes down mid-run and comes back on the same database and port.
    await waitForRecords(150);
    await server.stop();
    await sleep(1_000);
    server = await startDevServer(serverOptions);
    await connection.close();

    const connection2 = await connectClient(server.temporal);
    const result = await new Client({ connection: connection2, namespace: 'vla' }).workflow.getHandle(handle.workflowId).result();
    await connection2.close();

    expect(result.status).toBe('completed');
    expect(result.counts.total).toBe(TRAJECTORIES);
    expect(result.counts.failed).toBe(0);
    expect(result.counts.quarantined).toBe(0);
    // A child whose record was written before a crash and re-run afterwards reports it as skipped.
    expect(result.counts.done + result.counts.skipped).toBe(TRAJECTORIES);

    // What the store lists is what counts: a write cut by SIGKILL leaves at most an orphaned temp
    // file, which list() never shows and which is never renamed into place.
    const listed: string[] = [];
    for await (const o of store.list(`${fileUri(join(outputDir, 'records'))}/`)) listed.push(o.uri);
    expect(listed).toHaveLength(TRAJECTORIES);
    const ids = new Set<string>();
    for (const uri of listed) ids.add((await getJson(store, uri, DLanRecord)).trajectoryId);
    expect(ids.size).toBe(TRAJECTORIES);
  });
});
