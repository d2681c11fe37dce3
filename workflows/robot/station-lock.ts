import { WorkflowIds } from '../../data-schemas/workflow-ids';
import {
  condition,
  continueAsNew,
  defineQuery,
  defineSignal,
  getExternalWorkflowHandle,
  ParentClosePolicy,
  setHandler,
  startChild,
  workflowInfo,
} from '@temporalio/workflow';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import { STATION_LOCK_SIGNALS, StationLockInput, type StationLeaseRequest } from '../../data-schemas/robot';
import { parseWorkflowInput } from '../input';

/**
 * One episode at a time per station, by design: each station has one lock workflow
 * (`station-lock-<id>`, unique by Temporal's workflow-id rule) that hands the arm to waiting
 * episodes in arrival order. An episode that ends releases it; one that was terminated is noticed
 * by the lock's liveness ping (a signal to a closed workflow fails) and skipped. The station's
 * worker adds a second guard: it refuses any activity of an episode that does not own the arm.
 */
export const acquireSignal = defineSignal<[StationLeaseRequest]>(STATION_LOCK_SIGNALS.acquire);
export const releaseSignal = defineSignal<[StationLeaseRequest]>(STATION_LOCK_SIGNALS.release);
export const grantedSignal = defineSignal<[]>(STATION_LOCK_SIGNALS.granted);
export const pingSignal = defineSignal<[]>(STATION_LOCK_SIGNALS.ping);

export interface StationLockState {
  stationId: string;
  holder: StationLeaseRequest | null;
  waiting: StationLeaseRequest[];
  grants: number;
}
export const stationLockQuery = defineQuery<StationLockState>('state');


/** How often the lock checks that its holder still runs, while others wait. */
const LIVENESS_INTERVAL = '20 seconds';
/** An idle lock ends after this; the next episode starts a new one. */
const IDLE_TIMEOUT = '10 minutes';
/** History stays small: after this many grants the lock continues as new. */
const GRANTS_PER_RUN = 200;

const same = (a: StationLeaseRequest, b: StationLeaseRequest): boolean => a.workflowId === b.workflowId && a.runId === b.runId;

export async function stationLock(raw: StationLockInput): Promise<void> {
  const input = parseWorkflowInput('stationLock', StationLockInput, raw);
  const state: StationLockState = { stationId: input.stationId, holder: input.holder ?? null, waiting: [...(input.waiting ?? [])], grants: 0 };
  setHandler(stationLockQuery, () => state);
  setHandler(acquireSignal, (req) => {
    if ((state.holder && same(state.holder, req)) || state.waiting.some((w) => same(w, req))) return;
    state.waiting.push(req);
  });
  setHandler(releaseSignal, (req) => {
    if (state.holder && same(state.holder, req)) state.holder = null;
    else state.waiting = state.waiting.filter((w) => !same(w, req));
  });

  for (;;) {
    if (state.holder === null && state.waiting.length > 0) {
      const next = state.waiting.shift() as StationLeaseRequest;
      try {
        await getExternalWorkflowHandle(next.workflowId, next.runId).signal(grantedSignal);
        state.holder = next;
        state.grants++;
      } catch {
        continue; // the episode is gone: the next in line
      }
      continue;
    }
    if (state.holder !== null) {
      const released = await condition(() => state.holder === null, LIVENESS_INTERVAL);
      if (!released && state.holder !== null) {
        try {
          await getExternalWorkflowHandle(state.holder.workflowId, state.holder.runId).signal(pingSignal);
        } catch {
          state.holder = null; // terminated or timed out without releasing
        }
      }
      continue;
    }
    if (state.grants >= GRANTS_PER_RUN) await continueAsNew<typeof stationLock>({ stationId: state.stationId, holder: state.holder, waiting: state.waiting });
    const busy = await condition(() => state.waiting.length > 0, IDLE_TIMEOUT);
    if (!busy) return;
  }
}

/**
 * Queues the calling workflow for the station: signals the station's lock, starting it first when
 * none runs. Returns once the request is queued; the grant arrives as the `stationGranted` signal.
 */
export async function requestStation(stationId: string): Promise<void> {
  const { workflowId, runId } = workflowInfo();
  const req: StationLeaseRequest = { workflowId, runId };
  const lockId = WorkflowIds.stationLock(stationId);
  for (let attempt = 0; ; attempt++) {
    try {
      await getExternalWorkflowHandle(lockId).signal(acquireSignal, req);
      return;
    } catch {
      // No lock runs: start one with this request first in line.
    }
    try {
      await startChild(stationLock, {
        workflowId: lockId,
        // The lock runs where its episodes' workflows run.
        taskQueue: workflowInfo().taskQueue,
        args: [{ stationId, waiting: [req] }],
        parentClosePolicy: ParentClosePolicy.ABANDON,
      });
      return;
    } catch (err) {
      // Another episode started it in between: signal it on the next turn.
      if (!(err instanceof WorkflowExecutionAlreadyStartedError) || attempt > 20) throw err;
    }
  }
}

/** Gives the station back (best effort: a lock that is gone holds nothing). */
export async function releaseStation(stationId: string): Promise<void> {
  const { workflowId, runId } = workflowInfo();
  try {
    await getExternalWorkflowHandle(WorkflowIds.stationLock(stationId)).signal(releaseSignal, { workflowId, runId });
  } catch {
    // nothing to release
  }
}
