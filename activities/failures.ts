import { ApplicationFailure } from '@temporalio/activity';
import { TemporalFailure } from '@temporalio/common';
import type { ActivityInterceptorsFactory } from '@temporalio/worker';
import { ZodError } from 'zod';
import { DataError } from './data/errors';
import { StationError } from './robot/station/errors';
import { FULL_DISK_CODES, StoreError, StoreErrorCode } from './store/errors';
import { describeZodIssues } from '../data-schemas/issues';
import { StationFailure, UnmappedFailure, stationFailureType } from '../data-schemas/failures';

export { UnmappedFailure };


const PATH_CONFLICT_CODES = new Set(['EEXIST', 'EISDIR', 'ENOTDIR', 'ENAMETOOLONG']);
const ACCESS_DENIED_CODES = new Set(['EACCES', 'EPERM', 'EROFS']);
/** A Node system error (fs, child_process): it carries an errno `code` and the `syscall` that failed. */
function systemError(err: unknown): (Error & { code: string; syscall: string; path?: string; dest?: string }) | undefined {
  if (!(err instanceof Error) || !('code' in err) || !('syscall' in err)) return undefined;
  if (typeof err.code !== 'string' || typeof err.syscall !== 'string') return undefined;
  return err as Error & { code: string; syscall: string; path?: string; dest?: string };
}

/**
 * Classifies an error thrown inside an activity (docs/design.md, "Classify every failure"): errors that cannot heal
 * by retrying (bad credentials, a missing bucket or dataset, corrupt data, a full disk, a path in the way,
 * bytes that do not parse) become non-retryable ApplicationFailures whose type names the cause;
 * everything else is rethrown for Temporal's retry policy. Station errors become `Station:<code>`
 * failures, keeping the driver's retryable flag.
 */
export function classifyActivityError(err: unknown): unknown {
  // Already classified (ApplicationFailure), or Temporal's own (cancellation, a child's failure).
  if (err instanceof TemporalFailure) return err;
  if (err instanceof StoreError || err instanceof DataError) {
    return err.retryable ? ApplicationFailure.retryable(err.message, err.code) : ApplicationFailure.nonRetryable(err.message, err.code);
  }
  if (err instanceof StationError) {
    // A chunk whose outcome is unknown is never retried: the episode must observe before it plans.
    if (err.mayHaveMoved) return ApplicationFailure.nonRetryable(err.message, StationFailure.MayHaveMoved);
    const type = stationFailureType(err.code);
    return err.retryable ? ApplicationFailure.retryable(err.message, type) : ApplicationFailure.nonRetryable(err.message, type);
  }
  const sys = systemError(err);
  if (sys) {
    // Node's message already names the syscall and the path ("ENOSPC: no space left on device, write '/x'").
    if (FULL_DISK_CODES.has(sys.code)) return nonRetryable(`${sys.message}: free space (or raise the quota), then re-run`, StoreErrorCode.Full, err);
    if (PATH_CONFLICT_CODES.has(sys.code)) {
      const why = sys.code === 'ENAMETOOLONG' ? 'the name is too long for this filesystem' : 'another file or directory is in the way';
      return nonRetryable(`${sys.message}: ${why}`, UnmappedFailure.PathConflict, err);
    }
    if (ACCESS_DENIED_CODES.has(sys.code)) return nonRetryable(`${sys.message}: check that this user may write there`, UnmappedFailure.AccessDenied, err);
    return err;
  }
  if (err instanceof SyntaxError) {
    return nonRetryable(`unparseable data (a reader that does not name its file; please report): ${err.message}`, UnmappedFailure.Unparseable, err);
  }
  if (err instanceof ZodError) {
    return nonRetryable(`invalid data: ${describeZodIssues(err, { max: 5 })}`, UnmappedFailure.InvalidData, err);
  }
  // Anything else may be transient (a network hiccup) or a bug a new deployment fixes: Temporal retries it.
  return err;
}

function nonRetryable(message: string, type: string, cause: unknown): ApplicationFailure {
  return ApplicationFailure.create({ message, type, nonRetryable: true, ...(cause instanceof Error && { cause }) });
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

/**
 * Every worker installs this (workers/*.ts): whatever an activity (or a local activity) throws goes
 * through classifyActivityError, so no activity can forget to classify and no bare SyntaxError,
 * ZodError or errno error reaches Temporal's retry policy unexamined.
 */
export const classifyActivityErrors: ActivityInterceptorsFactory = () => ({
  inbound: {
    async execute(input, next) {
      try {
        return await next(input);
      } catch (err) {
        throw classifyActivityError(err);
      }
    },
  },
});
