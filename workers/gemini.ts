import { NativeConnection, Worker } from '@temporalio/worker';
import { TaskQueue } from '../data-schemas/workflows';
import { createGeminiActivities, type ActivityDeps } from '../activities';
import { classifyActivityErrors } from '../activities/failures';
import { withTracing, type WorkerTracing } from '../infra/telemetry';

export interface GeminiWorkerOptions {
  connection: NativeConnection;
  namespace: string;
  deps: ActivityDeps;
  /** @default 'vla-gemini' */
  taskQueue?: string;
  /**
   * The global Gemini quota, enforced by the Temporal server for every worker of this queue
   * together (docs/design.md, "Rate limits live in Temporal"). @default 5
   */
  maxCallsPerSecond?: number;
  /** Model calls in flight in this worker. @default 16 */
  maxConcurrentCalls?: number;
  /** Tracing interceptors and span sink (infra/telemetry.ts), when OTEL_EXPORTER_OTLP_ENDPOINT is set. */
  tracing?: WorkerTracing;
}

/** The Gemini worker: only model calls, on their own task queue with a server-side rate limit. */
export async function createGeminiWorker(options: GeminiWorkerOptions): Promise<Worker> {
  return Worker.create(withTracing({
    connection: options.connection,
    namespace: options.namespace,
    taskQueue: options.taskQueue ?? TaskQueue.gemini,
    activities: createGeminiActivities(options.deps),
    // Whatever an activity throws is classified (docs/design.md, "Classify every failure").
    interceptors: { activity: [classifyActivityErrors] },
    maxTaskQueueActivitiesPerSecond: options.maxCallsPerSecond ?? 5,
    maxConcurrentActivityTaskExecutions: options.maxConcurrentCalls ?? 16,
  }, options.tracing));
}
