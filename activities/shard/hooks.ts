/** What the shard activities need from Temporal: heartbeats and cancellation. */
import { Context } from '@temporalio/activity';

const HEARTBEAT_EVERY_MS = 1_000;

/** What an activity needs from Temporal; the bench runs the activity code without it. */
export interface ActivityHooks {
  heartbeat(details?: unknown): void;
  signal?: AbortSignal;
}

/** The current activity's context as hooks. */
export function contextHooks(): ActivityHooks {
  const ctx = Context.current();
  return { heartbeat: (d) => ctx.heartbeat(d), signal: ctx.cancellationSignal };
}

/** A heartbeat for byte counters called per chunk: at most one per second reaches Temporal. */
export function throttledHeartbeat(h: ActivityHooks, details: (bytes: number) => unknown): (bytes: number) => void {
  let last = 0;
  return (bytes) => {
    const now = Date.now();
    if (now - last < HEARTBEAT_EVERY_MS) return;
    last = now;
    h.heartbeat(details(bytes));
  };
}
