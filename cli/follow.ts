import { Client, WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import type { QueryDefinition } from '@temporalio/common';
import { SingleBar } from 'cli-progress';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileUrisIn, MULTI_HOST_NEEDS_S3 } from '../data-schemas/config';
import { TaskQueue } from '../data-schemas/workflows';
import { loadConfig } from '../infra/config';
import { startTracing } from '../infra/telemetry';
import { uiUrl } from '../infra/dev-stack';
import { connectClient } from '../infra/temporal';
import { rootCause } from '../workflows/failure-cause';

/** Where a workflow's progress bar stands: `undefined` while there is nothing to show yet. */
export interface BarState {
  value: number;
  total: number;
  payload: Record<string, string | number>;
}

export interface FollowOptions<R, P> {
  workflowType: string;
  workflowId: string;
  input: unknown;
  /** Return without waiting; the run goes on and shows in the Web UI. */
  wait: boolean;
  /** A query whose answer becomes a progress bar; without it the command just waits. */
  progress?: {
    query: QueryDefinition<P>;
    /** cli-progress format; `{bar}`, `{value}`, `{total}` and the payload's keys. */
    format: string;
    bar: (progress: P) => BarState | undefined;
  };
  say: (line: string) => void;
  /** Only for the result's type. */
  result?: R;
}

/**
 * With VLA_MULTI_HOST=1, refuses a workflow input that names a `file://` URI before anything
 * starts: the workers would refuse it at the first activity.
 */
export function refuseLocalInput(input: unknown): void {
  const local = loadConfig().env.VLA_MULTI_HOST ? fileUrisIn(input) : [];
  if (local.length > 0) throw new Error(`${MULTI_HOST_NEEDS_S3} (VLA_MULTI_HOST=1): ${local.join(', ')} names a folder on this host only; use s3://bucket/prefix`);
}

/**
 * Starts a workflow on the local stack (or attaches to the run already going under the same id:
 * ids derive from the output, so a second command follows the first) and shows its progress query
 * as a bar until it ends. A failed run throws its root cause's message, which names the problem.
 */
export async function startAndFollow<R, P>(options: FollowOptions<R, P>): Promise<R | undefined> {
  refuseLocalInput(options.input);
  return withTemporalClient(async (client, config) => {
    const handle = await startOrAttach(client, config, options);
    if (!options.wait) return undefined;

    const bar = new SingleBar({ format: options.progress?.format ?? '', hideCursor: true, clearOnComplete: false });
    let started = false;
    const result = handle.result() as Promise<R>;
    let finished = false;
    void result.then(
      () => (finished = true),
      () => (finished = true),
    );
    while (!finished) {
      const follow = options.progress;
      const progress = follow ? await handle.query(follow.query).catch(() => undefined) : undefined;
      const state = follow && progress !== undefined ? follow.bar(progress) : undefined;
      if (state) {
        if (!started) {
          bar.start(state.total, state.value, state.payload);
          started = true;
        } else {
          bar.setTotal(state.total);
          bar.update(state.value, state.payload);
        }
      }
      await Promise.race([result.catch(() => undefined), sleep(1_000)]);
    }
    if (started) bar.stop();
    try {
      return await result;
    } catch (err) {
      // WorkflowFailedError -> ChildWorkflowFailure/ActivityFailure -> ... -> ApplicationFailure: the innermost says what is wrong.
      if (err instanceof WorkflowFailedError) throw new Error(rootCause(err));
      throw err;
    }
  });
}

/**
 * Starts a workflow on the CPU queue, or attaches to the run already going under the same id, and
 * says where to watch it.
 */
export async function startOrAttach(
  client: Client,
  config: ReturnType<typeof loadConfig>,
  options: Pick<FollowOptions<unknown, unknown>, 'workflowType' | 'workflowId' | 'input' | 'say'>,
): Promise<WorkflowHandle> {
  const handle = await client.workflow.start(options.workflowType, {
    taskQueue: TaskQueue.cpu,
    workflowId: options.workflowId,
    args: [options.input],
    workflowIdConflictPolicy: 'USE_EXISTING',
  });
  options.say(`${options.workflowType} ${options.workflowId}`);
  const ui = uiUrl(config);
  if (ui !== undefined) options.say(`  watch it in the Web UI: ${ui}?query=${encodeURIComponent(`WorkflowId="${options.workflowId}"`)}`);
  return handle;
}

/**
 * A client of the configured Temporal server, closed afterwards; a connection that does not work
 * fails at once with a `TemporalConnectionError` naming the profile and the cause.
 */
export async function withTemporalClient<T>(fn: (client: Client, config: ReturnType<typeof loadConfig>) => Promise<T>): Promise<T> {
  const config = loadConfig();
  const temporal = config.temporal();
  const connection = await connectClient(temporal);
  // With OTEL_EXPORTER_OTLP_ENDPOINT set, what this client starts begins a trace (infra/telemetry.ts).
  const tracing = startTracing(config.env, 'vla-cli');
  try {
    return await fn(new Client({ connection, namespace: temporal.namespace, ...(tracing && { interceptors: tracing.clientInterceptors }) }), config);
  } finally {
    await connection.close();
    await tracing?.shutdown();
  }
}
