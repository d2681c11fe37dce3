import { ApplicationFailure } from '@temporalio/activity';
import { DataError } from './data/errors';
import { StationError } from './robot/station/errors';
import { StoreError } from './store/errors';

/**
 * Classifies an error thrown inside an activity (docs/design.md, "Classify every failure"): errors that cannot heal
 * by retrying (bad credentials, a missing bucket or dataset, corrupt data) become non-retryable
 * ApplicationFailures whose type is the error's code; everything else is rethrown for Temporal's
 * retry policy. Station errors become `Station:<code>` failures, keeping the driver's retryable flag.
 */
export function classifyActivityError(err: unknown): unknown {
  if (err instanceof ApplicationFailure) return err;
  if (err instanceof StoreError || err instanceof DataError) {
    return err.retryable ? ApplicationFailure.retryable(err.message, err.code) : ApplicationFailure.nonRetryable(err.message, err.code);
  }
  if (err instanceof StationError) {
    // A chunk whose outcome is unknown is never retried: the episode must observe before it plans.
    if (err.mayHaveMoved) return ApplicationFailure.nonRetryable(err.message, 'Station:may_have_moved');
    const type = `Station:${err.code}`;
    return err.retryable ? ApplicationFailure.retryable(err.message, type) : ApplicationFailure.nonRetryable(err.message, type);
  }
  return err;
}

/** Wraps an activity so its errors are classified. */
export function classified<A extends unknown[], R>(fn: (...args: A) => Promise<R>): (...args: A) => Promise<R> {
  return async (...args: A) => {
    try {
      return await fn(...args);
    } catch (err) {
      throw classifyActivityError(err);
    }
  };
}
