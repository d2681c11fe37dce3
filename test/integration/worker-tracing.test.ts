import { Client } from '@temporalio/client';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { FileStore } from '../../activities/store';
import { fileUri } from '../../data-schemas/uri';
import { loadConfig, REPO_ROOT } from '../../infra/config';
import { waitForPollers } from '../../infra/dev-stack';
import { startProcess, stopProcess, type StartedProcess } from '../../activities/runtime/processes';
import { startTracing, type Tracing } from '../../infra/telemetry';
import type { relabelDataset } from '../../workflows';
import { createOtlpServer, type OtlpServer, type ReceivedSpan } from '../fixtures/otlp-server';
import { simulateSample } from '../helpers/datasets';
import { connectTestTemporal, uniqueTaskQueue, type TemporalTestEnv } from '../helpers/temporal';

/**
 * A relabel followed across processes: this test's client (with the client interceptor, as the
 * CLI's) starts it, a real `vla worker cpu` process with OTEL_EXPORTER_OTLP_ENDPOINT runs it, and
 * both export spans over OTLP/HTTP to a local receiver. One trace id from the client's
 * StartWorkflow to the activities of the child workflows.
 */
describe('OpenTelemetry tracing: client -> workflow -> activities in one trace', () => {
  let env: TemporalTestEnv;
  let otlp: OtlpServer;
  let tracing: Tracing | undefined;
  let dir: string;
  let worker: StartedProcess | undefined;
  let taskQueue: string;
  let logFile: string;

  beforeAll(async () => {
    env = await connectTestTemporal();
    otlp = await createOtlpServer();
    dir = mkdtempSync(join(tmpdir(), 'vla-worker-tracing-'));
    taskQueue = uniqueTaskQueue('tracing-cpu');
    const workerEnv: NodeJS.ProcessEnv = {
      ...process.env,
      TEMPORAL_ADDRESS: inject('temporal').address,
      TEMPORAL_NAMESPACE: env.namespace,
      VLA_STATE_DIR: join(dir, 'state'),
      VLA_STORE_URI: fileUri(dir),
      OTEL_EXPORTER_OTLP_ENDPOINT: otlp.endpoint,
      // The standard batch delay (5 s) shortened: spans arrive while the test waits.
      OTEL_BSP_SCHEDULE_DELAY: '200',
    };
    delete workerEnv.VLA_STORE_ROOTS;
    delete workerEnv.OTEL_SERVICE_NAME;
    // No prebuilt bundle: the worker bundles its workflows with the tracing interceptor module,
    // as a deployed worker does.
    delete workerEnv.VLA_WORKFLOW_BUNDLE;
    logFile = join(dir, 'worker-cpu.log');
    worker = startProcess(join(REPO_ROOT, 'node_modules', '.bin', 'tsx'), [join(REPO_ROOT, 'cli', 'main.ts'), 'worker', 'cpu', '--task-queue', taskQueue], {
      logFile,
      env: workerEnv,
      cwd: REPO_ROOT,
      detached: true,
    });
    process.env.OTEL_EXPORTER_OTLP_ENDPOINT = otlp.endpoint;
    process.env.OTEL_BSP_SCHEDULE_DELAY = '200';
    tracing = startTracing({ OTEL_EXPORTER_OTLP_ENDPOINT: otlp.endpoint }, 'vla-cli');
    await waitForPollers(loadConfig(workerEnv), taskQueue, 'workflow', worker.pid, logFile, 240_000);
  }, 300_000);
  afterAll(async () => {
    if (worker) await stopProcess(worker.pid, { graceMs: 10_000, group: true });
    await tracing?.shutdown();
    await env?.close();
    await otlp?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('one relabel is one trace: StartWorkflow -> RunWorkflow -> StartActivity / RunActivity, child workflows included', { timeout: 240_000 }, async () => {
    expect(tracing?.serviceName).toBe('vla-cli');
    const store = new FileStore();
    const datasetUri = fileUri(join(dir, 'sim'));
    await simulateSample(store, datasetUri, ['pick up the eggplant'], 1, 5);
    const client = new Client({ connection: env.client.connection, namespace: env.namespace, interceptors: tracing!.clientInterceptors });
    const workflowId = `${taskQueue}-relabel`;
    const result = await client.workflow.execute<typeof relabelDataset>('relabelDataset', {
      taskQueue,
      workflowId,
      args: [{ datasetUri, outputUri: fileUri(join(dir, 'labels')) }],
    });
    expect(result.counts.done).toBe(1);

    const find = (name: string): ReceivedSpan | undefined => otlp.spans.find((s) => s.name === name);
    const wanted = ['StartWorkflow:relabelDataset', 'RunWorkflow:relabelDataset', 'RunWorkflow:relabelTrajectory', 'RunActivity:listTrajectoryPage', 'RunActivity:labelHeuristic', 'RunActivity:writeRelabelRecord', 'RunActivity:finalizeRelabel'];
    for (let i = 0; i < 300 && !wanted.every((n) => find(n)); i++) await sleep(200);
    expect(otlp.rejected).toEqual([]);
    expect(wanted.filter((n) => !find(n)), `spans received: ${[...new Set(otlp.spans.map((s) => s.name))].join(', ')}`).toEqual([]);

    const start = find('StartWorkflow:relabelDataset')!;
    expect(start.serviceName).toBe('vla-cli');
    expect(start.parentSpanId).toBeUndefined();
    const trace = otlp.spans.filter((s) => s.traceId === start.traceId);
    for (const name of wanted) expect(trace.some((s) => s.name === name), `${name} is in the client's trace`).toBe(true);
    // Each span hangs off one of the same trace: an unbroken tree rooted at the client.
    const ids = new Set(trace.map((s) => s.spanId));
    for (const s of trace) if (s !== start) expect(ids.has(s.parentSpanId ?? ''), `${s.name} has its parent in the trace`).toBe(true);
    expect(find('RunWorkflow:relabelDataset')!.parentSpanId).toBe(start.spanId);
    const child = find('RunWorkflow:relabelTrajectory')!;
    expect(trace.find((s) => s.spanId === child.parentSpanId)?.name).toBe('StartChildWorkflow:relabelTrajectory');
    const run = find('RunActivity:writeRelabelRecord')!;
    expect(trace.find((s) => s.spanId === run.parentSpanId)?.name).toBe('StartActivity:writeRelabelRecord');
    // Every worker-side span carries the worker's service name.
    expect(new Set(trace.filter((s) => s !== start).map((s) => s.serviceName))).toEqual(new Set(['vla-worker-cpu']));
  });
});
