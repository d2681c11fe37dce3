import { WorkflowIds } from '../data-schemas/workflow-ids';
import { ScheduleNotFoundError, ScheduleOverlapPolicy, type Client, type ScheduleOptions, type ScheduleUpdateOptions } from '@temporalio/client';
import { TaskQueue } from '../data-schemas/workflows';
import { NightlyEvaluationInput, type NightlyEvaluationInputRaw } from '../data-schemas/vqa';

export const NIGHTLY_SCHEDULE_ID = 'vla-nightly-vqa';
/** What `ensureNightlySchedule` uses for a setting left out; `vla schedule nightly` shows them in --help. */
export const NIGHTLY_SCHEDULE_DEFAULTS = { cron: '0 2 * * *', timeZone: 'UTC', catchupWindow: '1 day' } as const;

export interface NightlyScheduleOptions {
  input: NightlyEvaluationInputRaw;
  /** Cron in the schedule's time zone; by default 02:00 every night. */
  cron?: string;
  timeZone?: string;
  /** Nights missed while the server was down are still run if within this window. */
  catchupWindow?: string;
  /** @default 'vla-cpu' */
  taskQueue?: string;
  /** @default NIGHTLY_SCHEDULE_ID */
  scheduleId?: string;
}

/**
 * Creates the nightly evaluation Schedule, or updates it if it exists (idempotent: running it
 * twice leaves one schedule with the latest settings). An update keeps the schedule's state: a
 * schedule paused from the UI stays paused. Overlap policy SKIP: a night whose previous sweep is
 * still running is skipped, not queued.
 */
export async function ensureNightlySchedule(client: Client, options: NightlyScheduleOptions): Promise<{ scheduleId: string; created: boolean }> {
  const input = NightlyEvaluationInput.parse(options.input);
  const scheduleId = options.scheduleId ?? NIGHTLY_SCHEDULE_ID;
  const spec = { cronExpressions: [options.cron ?? NIGHTLY_SCHEDULE_DEFAULTS.cron], timezone: options.timeZone ?? NIGHTLY_SCHEDULE_DEFAULTS.timeZone };
  const action = {
    type: 'startWorkflow' as const,
    workflowType: 'nightlyEvaluation',
    workflowId: WorkflowIds.nightlyEvaluation(),
    taskQueue: options.taskQueue ?? TaskQueue.cpu,
    args: [input],
  };
  const policies = { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: options.catchupWindow ?? NIGHTLY_SCHEDULE_DEFAULTS.catchupWindow };
  const handle = client.schedule.getHandle(scheduleId);
  try {
    await handle.describe();
  } catch (err) {
    if (!(err instanceof ScheduleNotFoundError)) throw err;
    const create: ScheduleOptions = { scheduleId, spec, action, policies };
    await client.schedule.create(create);
    return { scheduleId, created: true };
  }
  await handle.update((previous): ScheduleUpdateOptions => ({ ...previous, spec, action, policies }));
  return { scheduleId, created: false };
}
