import { ApplicationFailure } from '@temporalio/activity';
import { StationError } from '../station/errors';

/**
 * Station errors as Temporal failures. The type is `Station:<code>`; a chunk whose outcome is
 * unknown (the arm may have moved) is `Station:may_have_moved`, never retried: the episode must
 * observe again before it plans anything. Other errors keep the driver's retryable flag.
 */
export function stationFailure(err: unknown): unknown {
  if (!(err instanceof StationError)) return err;
  if (err.mayHaveMoved) return ApplicationFailure.nonRetryable(err.message, 'Station:may_have_moved');
  const type = `Station:${err.code}`;
  return err.retryable ? ApplicationFailure.retryable(err.message, type) : ApplicationFailure.nonRetryable(err.message, type);
}

/** Wraps a station activity so driver errors become classified Temporal failures. */
export function withStationFailures<A extends unknown[], R>(fn: (...args: A) => Promise<R>): (...args: A) => Promise<R> {
  return async (...args: A) => {
    try {
      return await fn(...args);
    } catch (err) {
      throw stationFailure(err);
    }
  };
}
