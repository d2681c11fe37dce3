import { NativeConnection, Worker, type WorkflowBundleOption } from '@temporalio/worker';
import { fileURLToPath } from 'node:url';
import { TaskQueue } from '../data-schemas/workflows';
import { createCpuActivities, type ActivityDeps } from '../activities';
import { createTaskQueueActivities } from '../activities/task-queues';
import { classifyActivityErrors } from '../activities/failures';
import { withTracing, type WorkerTracing } from '../infra/telemetry';

export const WORKFLOWS_PATH = fileURLToPath(new URL('../workflows/index.ts', import.meta.url));

export interface CpuWorkerOptions {
  connection: NativeConnection;
  namespace: string;
  deps: ActivityDeps;
  /** @default 'vla-cpu' */
  taskQueue?: string;
  /** A prebuilt bundle (tests share one); by default the workflows are bundled at start. */
  workflowBundle?: WorkflowBundleOption;
  /** Tracing interceptors and span sink (infra/telemetry.ts), when OTEL_EXPORTER_OTLP_ENDPOINT is set. */
  tracing?: WorkerTracing;
}

/** The CPU worker: orchestration workflows and the activities that need no GPU or arm. */
export async function createCpuWorker(options: CpuWorkerOptions): Promise<Worker> {
  return Worker.create(withTracing({
    connection: options.connection,
    namespace: options.namespace,
    taskQueue: options.taskQueue ?? TaskQueue.cpu,
    ...(options.workflowBundle ? { workflowBundle: options.workflowBundle } : { workflowsPath: WORKFLOWS_PATH }),
    activities: {
      ...createCpuActivities(options.deps),
      // Lets workflows notice a queue that no worker polls (a misspelled Gemini or station queue).
      ...createTaskQueueActivities({ workflowService: options.connection.workflowService, namespace: options.namespace }),
    },
    // Whatever an activity throws is classified (docs/design.md, "Classify every failure").
    interceptors: { activity: [classifyActivityErrors] },
  }, options.tracing));
}
