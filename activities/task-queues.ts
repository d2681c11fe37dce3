import type { WorkflowService } from '@temporalio/client';
import { implement, QueueProbeActivities } from '../data-schemas/activity-contract';

export interface TaskQueueDeps {
  /** The worker's own connection (NativeConnection.workflowService); no extra client is needed. */
  workflowService: WorkflowService;
  namespace: string;
}

// temporal.api.enums.v1 values, spelled out because @temporalio/proto is not a direct dependency.
const TASK_QUEUE_KIND_NORMAL = 1;
const TASK_QUEUE_TYPE = { workflow: 1, activity: 2 } as const;

/** Activities that look at task queues through the Temporal server (on the CPU queue, where the orchestrating workflows run). */
export function createTaskQueueActivities(deps: TaskQueueDeps) {
  return implement(QueueProbeActivities, 'cpu', {
    async taskQueuePollers(input) {
      const response = await deps.workflowService.describeTaskQueue({
        namespace: deps.namespace,
        taskQueue: { name: input.queue, kind: TASK_QUEUE_KIND_NORMAL },
        taskQueueType: TASK_QUEUE_TYPE[input.role],
      });
      return { pollers: response.pollers?.length ?? 0 };
    },
  });
}
