import { ApplicationFailure } from '@temporalio/activity';
import { TrainerEvent, TrainingFailure, type TrainerEvalEvent, type TrainerStepEvent, type TrainingProgress } from '../../data-schemas/training';

export type TrainerDoneEvent = Extract<TrainerEvent, { event: 'done' }>;
export type TrainerErrorEvent = Extract<TrainerEvent, { event: 'error' }>;

/** One stdout line of the trainer as its event, or undefined for anything else (kept with stderr). */
export function parseTrainerEventLine(line: string): TrainerEvent | undefined {
  let json: unknown;
  try {
    json = JSON.parse(line);
  } catch {
    return undefined;
  }
  const parsed = TrainerEvent.safeParse(json);
  return parsed.success ? parsed.data : undefined;
}

/** What a finished trainer process came to. */
export type TrainerOutcome =
  | { kind: 'done'; done: TrainerDoneEvent; steps: TrainerStepEvent[]; evals: TrainerEvalEvent[] }
  | { kind: 'cancelled' }
  | { kind: 'failed'; code: number | null; signal: NodeJS.Signals | null; error?: TrainerErrorEvent; stderr: string[] };

/** The events of one trainer run that decide its outcome: every step and evaluation, the `done`, the last `error`. */
export class TrainerEventLog {
  readonly steps: TrainerStepEvent[] = [];
  readonly evals: TrainerEvalEvent[] = [];
  done: TrainerDoneEvent | undefined;
  error: TrainerErrorEvent | undefined;

  record(event: TrainerEvent): void {
    if (event.event === 'step') this.steps.push(event);
    if (event.event === 'eval') this.evals.push(event);
    if (event.event === 'done') this.done = event;
    if (event.event === 'error') this.error = event;
  }

  /** The outcome of an exited trainer: done only with exit code 0 and a `done` event. */
  outcome(exit: { code: number | null; signal: NodeJS.Signals | null; cancelled: boolean; stderr: string[] }): TrainerOutcome {
    if (exit.cancelled) return { kind: 'cancelled' };
    if (exit.code === 0 && this.done) return { kind: 'done', done: this.done, steps: this.steps, evals: this.evals };
    return { kind: 'failed', code: exit.code, signal: exit.signal, ...(this.error && { error: this.error }), stderr: exit.stderr };
  }
}

/** The progress a `start`, `step` or `eval` event moves to; undefined for events that carry none. */
export function progressAfter(progress: TrainingProgress, event: TrainerEvent): TrainingProgress | undefined {
  switch (event.event) {
    case 'start':
      return { ...progress, totalSteps: event.totalSteps, step: event.resumedFromStep };
    case 'step':
      return { ...progress, step: event.step, totalSteps: event.totalSteps, loss: event.loss, lr: event.lr, tokensPerSecond: event.tokensPerSecond, etaSeconds: event.etaSeconds };
    case 'eval':
      return { ...progress, evalLoss: event.loss, evalStep: event.step };
    default:
      return undefined;
  }
}

/**
 * The activity failure of a failed trainer: its `error` event's code decides (what no retry can fix
 * fails at once), a stopped trainer is retried from the last checkpoint, anything else is a crash.
 * `shardByLocalPath` names a corrupt shard by its path in the shard set, not on this machine.
 */
export function trainerFailure(outcome: Extract<TrainerOutcome, { kind: 'failed' }>, shardByLocalPath: ReadonlyMap<string, string>): ApplicationFailure {
  const tail = outcome.stderr.slice(-15).join('\n');
  const e = outcome.error;
  switch (e?.code) {
    case 'base_model_not_found':
      return ApplicationFailure.nonRetryable(`base model not found: ${e.message}`, TrainingFailure.baseModelNotFound);
    case 'out_of_memory':
      return ApplicationFailure.nonRetryable(`out of GPU memory: ${e.message}`, TrainingFailure.outOfMemory);
    case 'corrupt_shard': {
      const shard = e.shard !== undefined ? (shardByLocalPath.get(e.shard) ?? e.shard) : 'unknown shard';
      return ApplicationFailure.nonRetryable(`corrupt shard ${shard}: ${e.message}`, TrainingFailure.corruptShard);
    }
    case 'bad_config':
      return ApplicationFailure.nonRetryable(`the trainer refused its config: ${e.message}`, TrainingFailure.badConfig);
    default:
      break;
  }
  if (outcome.signal !== null || e?.code === 'interrupted') {
    return ApplicationFailure.retryable(`the trainer was stopped (${outcome.signal ?? 'interrupted'}); the next attempt resumes from the last checkpoint${tail ? `\nlast stderr lines:\n${tail}` : ''}`, TrainingFailure.trainerKilled);
  }
  return ApplicationFailure.retryable(`the trainer exited with code ${outcome.code}${e ? `: ${e.message}` : ''}\nlast stderr lines:\n${tail}`, TrainingFailure.trainerCrashed);
}
