// Node-free on purpose: workflows (in Temporal's sandbox) and the `vla` CLI both import this.
import { ApplicationFailure } from '@temporalio/common';

/** An error and its causes, outermost first (WorkflowFailedError -> ChildWorkflowFailure -> ActivityFailure -> ApplicationFailure ...). */
export function causeChain(err: unknown): Error[] {
  const chain: Error[] = [];
  for (let cause: unknown = err; cause instanceof Error && !chain.includes(cause); cause = cause.cause) chain.push(cause);
  return chain;
}

/** The innermost ApplicationFailure of a failure chain: the one that says what went wrong, and its type. */
export function rootFailure(err: unknown): ApplicationFailure | undefined {
  return causeChain(err)
    .filter((e): e is ApplicationFailure => e instanceof ApplicationFailure)
    .at(-1);
}

/**
 * What went wrong at the bottom of a failure: the innermost ApplicationFailure as `<type>: <message>`
 * (the wrappers only say "Activity task failed" or "Child Workflow execution failed"), else the
 * innermost error's message (a timeout, a cancellation).
 */
export function rootCause(err: unknown): string {
  const app = rootFailure(err);
  if (app) return app.type ? `${app.type}: ${app.message}` : app.message;
  const innermost = causeChain(err).at(-1);
  return innermost ? innermost.message : String(err);
}

/**
 * What kind of failure this is, for telling "the same cause again" (the relabel outage breaker):
 * the innermost ApplicationFailure's type (e.g. GeminiNetwork, a store error code), else the
 * innermost error's class (TimeoutFailure, CancelledFailure ...).
 */
export function rootCauseType(err: unknown): string {
  const type = rootFailure(err)?.type;
  if (type) return type;
  const innermost = causeChain(err).at(-1);
  return innermost ? innermost.name : 'unknown';
}
