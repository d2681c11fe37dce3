import { ApplicationFailure } from '@temporalio/workflow';

/** An error and its causes, outermost first (ChildWorkflowFailure -> ActivityFailure -> ApplicationFailure ...). */
export function causeChain(err: unknown): Error[] {
  const chain: Error[] = [];
  for (let cause: unknown = err; cause instanceof Error && !chain.includes(cause); cause = cause.cause) chain.push(cause);
  return chain;
}

/**
 * What went wrong at the bottom of a failure: the innermost ApplicationFailure as `<type>: <message>`
 * (the wrappers only say "Activity task failed" or "Child Workflow execution failed"), else the
 * innermost error's message (a timeout, a cancellation).
 */
export function rootCause(err: unknown): string {
  const chain = causeChain(err);
  const app = chain.filter((e): e is ApplicationFailure => e instanceof ApplicationFailure).at(-1);
  if (app) return app.type ? `${app.type}: ${app.message}` : app.message;
  const innermost = chain.at(-1);
  return innermost ? innermost.message : String(err);
}
