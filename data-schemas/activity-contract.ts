import { ApplicationFailure, type ActivityOptions, type LocalActivityOptions } from '@temporalio/common';
import { z } from 'zod';
import { TaskQueueName } from './bounded';
import { INVALID_ACTIVITY_INPUT } from './failures';
import { describeZodIssues } from './issues';

/**
 * Activity contracts: each pipeline declares its activities once (name, input and output schema,
 * which kinds of worker register them), and both sides build on that one declaration:
 * - a worker implements a contract (`implement`): the functions are typed from the schemas and each
 *   input is parsed at the border, so a workflow of older code that sends a wrong shape gets a
 *   named, non-retryable failure instead of a TypeError deep inside;
 * - a workflow proxies a contract onto a queue (`proxyFor` in workflows/activity-proxy.ts) whose
 *   type says which kind of worker polls it: a Gemini activity proxied onto the CPU queue is a type
 *   error, not eight retries and a timeout at run time.
 * Node-free: workflows import this module.
 */

/** The kinds of worker (docs/design.md, "The five pipelines"), by what their activities need. */
export type WorkerRole = 'cpu' | 'gemini' | 'gpu' | 'station';

declare const pollingRole: unique symbol;

/**
 * A task queue name polled by workers of kind `R`. Only the project's queue constants
 * (`TaskQueue` below) and input fields declared with `queueField` have this
 * type, so a queue name carries what kind of worker serves it to every proxy it reaches.
 */
export type QueueOf<R extends WorkerRole> = string & { readonly [pollingRole]: R };

/** The project's task queues (docs/design.md, "The five pipelines"), typed by the kind of worker that polls each. */
export const TaskQueue = {
  cpu: 'vla-cpu' as QueueOf<'cpu'>,
  gemini: 'vla-gemini' as QueueOf<'gemini'>,
  gpu: 'vla-gpu' as QueueOf<'gpu'>,
  station: (id: string) => `vla-station-${id}` as QueueOf<'station'>,
} as const;

/**
 * A workflow input field naming a task queue that workers of kind `R` poll (a deployment may rename
 * queues): its parsed value is a `QueueOf<R>`, so the workflow can hand it to that kind's proxies only.
 */
export function queueField<R extends WorkerRole>(..._roles: R[]): z.ZodType<QueueOf<R>, string> {
  return TaskQueueName as unknown as z.ZodType<QueueOf<R>, string>;
}

/** The queue the workflow itself runs on, served by a worker of kind `R` (e.g. robotEpisode on its station's). */
export interface WorkflowQueue<R extends WorkerRole> {
  readonly workflowQueue: R;
}

/** The workflow's own task queue: its activities go to the worker that runs the workflow. */
export function workflowQueue<R extends WorkerRole>(role: R): WorkflowQueue<R> {
  return { workflowQueue: role };
}

/** One activity: what it takes and what it returns. */
export interface ActivitySpec<I extends z.ZodType = z.ZodType, O extends z.ZodType = z.ZodType> {
  readonly input: I;
  readonly output: O;
}

/** A pipeline's activities served by workers of the kinds in `R` (each kind registers them all). */
export interface ActivityContract<R extends WorkerRole, S extends Record<string, ActivitySpec>> {
  /** Shown in errors and the registration test. */
  readonly name: string;
  readonly roles: readonly R[];
  readonly activities: S;
}

export function activityContract<R extends WorkerRole, S extends Record<string, ActivitySpec>>(
  name: string,
  roles: readonly R[],
  activities: S,
): ActivityContract<R, S> {
  return { name, roles, activities };
}

/** Any contract: what the generic helpers (`implement`, `proxyFor`) accept. */
export type AnyContract = ActivityContract<WorkerRole, Record<string, ActivitySpec>>;
export type RolesOf<C> = C extends ActivityContract<infer R, Record<string, ActivitySpec>> ? R : never;
type SpecsOf<C> = C extends ActivityContract<WorkerRole, infer S> ? S : never;

/** The activities as a workflow calls them: it sends the schema's input type (defaults may be left out). */
export type ActivitiesOf<C extends AnyContract> = {
  [K in keyof SpecsOf<C>]: (input: z.input<SpecsOf<C>[K]['input']>) => Promise<z.output<SpecsOf<C>[K]['output']>>;
};

/** The activities as a worker writes them: they receive the parsed (defaulted) input. */
export type ImplementationOf<C extends AnyContract> = {
  [K in keyof SpecsOf<C>]: (input: z.output<SpecsOf<C>[K]['input']>) => Promise<z.output<SpecsOf<C>[K]['output']>>;
};

/**
 * A contract's activities for a worker to register: each parses its input against the contract
 * first. The worker's kind must be one the contract names (checked by the type and at start).
 */
export function implement<C extends AnyContract>(contract: C, role: RolesOf<C>, functions: ImplementationOf<C>): ActivitiesOf<C> {
  if (!contract.roles.includes(role)) throw new Error(`the ${contract.name} activities are not served by ${role} workers`);
  const activities: Record<string, (input: unknown) => Promise<unknown>> = {};
  const specs: Record<string, ActivitySpec> = contract.activities;
  const fns = functions as Record<string, (input: unknown) => Promise<unknown>>;
  for (const [name, spec] of Object.entries(specs)) {
    const fn = fns[name];
    if (fn === undefined) throw new Error(`the ${contract.name} activities lack an implementation of ${name}`);
    activities[name] = async (raw: unknown) => {
      const parsed = spec.input.safeParse(raw);
      if (!parsed.success) {
        throw ApplicationFailure.nonRetryable(`${name}: invalid input: ${describeZodIssues(parsed.error)}`, INVALID_ACTIVITY_INPUT);
      }
      return fn(parsed.data);
    };
  }
  return activities as ActivitiesOf<C>;
}

/** Activity options a workflow picks from the contract's presets: everything but the queue, which the proxy takes. */
export type ActivityPreset = Readonly<Omit<ActivityOptions, 'taskQueue'>>;
export type LocalActivityPreset = Readonly<LocalActivityOptions>;

/** The queue argument a proxy of contract `C` accepts: a queue of one of its worker kinds, or the workflow's own. */
export type QueueFor<C extends AnyContract> = QueueOf<RolesOf<C>> | WorkflowQueue<RolesOf<C>>;

/** Which tasks of a queue a probe asks about: workflow tasks (a station's episodes) or activity tasks (Gemini calls). */
export const TaskQueueRole = z.enum(['workflow', 'activity']);
export type TaskQueueRole = z.infer<typeof TaskQueueRole>;

/** Looks at task queues through the Temporal server, from the CPU worker where the orchestrating workflows run. */
export const QueueProbeActivities = activityContract('queue probe', ['cpu'], {
  /**
   * How many workers have polled `queue` for `role` tasks lately (the server remembers pollers for
   * a few minutes). Zero on a queue nobody ever polled: a misspelled queue, or its workers are down.
   */
  taskQueuePollers: { input: z.strictObject({ queue: TaskQueueName, role: TaskQueueRole }), output: z.strictObject({ pollers: z.int().nonnegative() }) },
});

export const QueueProbePresets = {
  /** One DescribeTaskQueue call on the workflow's own queue; a failed look is only a missed warning. */
  describe: { startToCloseTimeout: '30 seconds', retry: { maximumAttempts: 3 } },
} as const satisfies Record<string, ActivityPreset>;
