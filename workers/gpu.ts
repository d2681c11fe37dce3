import { Client, type ConnectionLike } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { join } from 'node:path';
import { TaskQueue } from '../data-schemas/workflows';
import { TRAINING_PROGRESS_SIGNAL } from '../data-schemas/training';
import { createGpuActivities, type GpuActivityDeps } from '../activities';
import { classifyActivityErrors } from '../activities/failures';
import { withTracing, type WorkerTracing } from '../infra/telemetry';

export interface GpuWorkerOptions {
  connection: NativeConnection;
  /** For the progress signals the training activity sends its workflow. */
  clientConnection: ConnectionLike;
  namespace: string;
  deps: Omit<GpuActivityDeps, 'reportProgress'>;
  /** @default 'vla-gpu' */
  taskQueue?: string;
  /** Tracing interceptors and span sink (infra/telemetry.ts), when OTEL_EXPORTER_OTLP_ENDPOINT is set. */
  tracing?: WorkerTracing;
}

/**
 * The GPU worker: training activities only (its workflows run on the CPU workers). One activity at
 * a time: a trainer owns every GPU of its machine.
 */
export async function createGpuWorker(options: GpuWorkerOptions): Promise<Worker> {
  const client = new Client({ connection: options.clientConnection, namespace: options.namespace });
  return Worker.create(withTracing({
    connection: options.connection,
    namespace: options.namespace,
    taskQueue: options.taskQueue ?? TaskQueue.gpu,
    activities: createGpuActivities({
      ...options.deps,
      reportProgress: async ({ workflowId, runId }, progress) => {
        await client.workflow.getHandle(workflowId, runId).signal(TRAINING_PROGRESS_SIGNAL, progress);
      },
    }),
    maxConcurrentActivityTaskExecutions: 1,
    // Whatever an activity throws is classified (docs/design.md, "Classify every failure").
    interceptors: { activity: [classifyActivityErrors] },
    // Heartbeats carry cancellation back: a cancelled run stops its trainer within seconds,
    // not after 80% of a heartbeat timeout sized for lost machines.
    maxHeartbeatThrottleInterval: '3 seconds',
    defaultHeartbeatThrottleInterval: '3 seconds',
  }, options.tracing));
}

/** Where a GPU worker stages shards and runs trainers, unless VLA_WORK_DIR says otherwise. */
export const defaultGpuWorkDir = (stateDir: string): string => join(stateDir, 'gpu-work');
