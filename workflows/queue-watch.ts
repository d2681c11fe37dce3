import { condition, log } from '@temporalio/workflow';
import { QueueProbeActivities, QueueProbePresets, workflowQueue, type TaskQueueRole } from '../data-schemas/activity-contract';
import { proxyFor } from './activity-proxy';
import { upsertKeywords, VlaWaitingOn } from './search-attributes';

const probe = proxyFor(QueueProbeActivities, workflowQueue('cpu'), QueueProbePresets.describe);

/** Re-checks back off to this, so a run that waits for days adds a few events an hour, not a minute. */
const MAX_RECHECK_MS = 10 * 60 * 1000;

export interface QueueWatchState {
  /** Queues the workflow sends work to that no worker polls, sorted; what its status query reports. */
  waitingOn: string[];
}

/** The search attribute VlaWaitingOn: the waited-on queues, comma-separated (bounded like every value), or unset. */
function publish(state: QueueWatchState): void {
  upsertKeywords([{ key: VlaWaitingOn, value: state.waitingOn.length > 0 ? state.waitingOn.join(',') : null }]);
}

/**
 * Watches a task queue the workflow sends work to (named in its input) while that work waits:
 * `firstCheckAfterMs` after the start, and then at growing intervals, it asks the server for the
 * queue's pollers. With none, it logs a warning naming the queue, adds it to `state.waitingOn` and
 * to the search attribute VlaWaitingOn; once a worker polls, it takes it out again and stops. It
 * never fails the workflow: the work keeps waiting for its worker (a station may come online later).
 * Ends when `done()` turns true. Several watches may share one state (one per station).
 */
export async function watchTaskQueue(
  target: { queue: string; role: TaskQueueRole },
  options: { firstCheckAfterMs: number; done: () => boolean; state: QueueWatchState },
): Promise<void> {
  const { state } = options;
  let waiting = false;
  let waitMs = options.firstCheckAfterMs;
  while (!(await condition(options.done, waitMs))) {
    const pollers = await probe.taskQueuePollers(target).then(
      (r) => r.pollers,
      () => undefined,
    );
    if (pollers === 0 && !waiting) {
      log.warn(`no worker polls task queue ${target.queue} (${target.role} tasks): the work sent there waits; is the queue name right and its worker running?`, {
        taskQueue: target.queue,
      });
      waiting = true;
      state.waitingOn = [...state.waitingOn, target.queue].sort();
      publish(state);
    } else if (pollers !== undefined && pollers > 0) {
      break;
    }
    waitMs = Math.min(waitMs * 2, MAX_RECHECK_MS);
  }
  if (waiting) {
    log.info(`task queue ${target.queue} is no longer waited on`, { taskQueue: target.queue });
    state.waitingOn = state.waitingOn.filter((q) => q !== target.queue);
    publish(state);
  }
}
