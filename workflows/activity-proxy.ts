import { proxyActivities, proxyLocalActivities, type ActivityInterfaceFor, type LocalActivityInterfaceFor } from '@temporalio/workflow';
import type {
  ActivitiesOf,
  ActivityPreset,
  AnyContract,
  LocalActivityPreset,
  QueueFor,
  RolesOf,
  WorkerRole,
  WorkflowQueue,
} from '../data-schemas/activity-contract';

function isWorkflowQueue(queue: unknown): queue is WorkflowQueue<WorkerRole> {
  return typeof queue === 'object' && queue !== null && 'workflowQueue' in queue;
}

/**
 * The one way a workflow calls activities: the contract says which kinds of worker serve them, the
 * queue's type says which kind polls it, so a proxy onto the wrong queue does not compile. Options
 * come from the contract's named presets.
 */
export function proxyFor<C extends AnyContract>(contract: C, queue: QueueFor<C>, preset: ActivityPreset): ActivityInterfaceFor<ActivitiesOf<C>> {
  return proxyActivities<ActivitiesOf<C>>(isWorkflowQueue(queue) ? preset : { ...preset, taskQueue: queue });
}

/** Local activities run in the worker that runs the workflow: only a contract its kind serves. */
export function proxyLocalFor<C extends AnyContract>(contract: C, _queue: WorkflowQueue<RolesOf<C>>, preset: LocalActivityPreset): LocalActivityInterfaceFor<ActivitiesOf<C>> {
  return proxyLocalActivities<ActivitiesOf<C>>(preset);
}
