/**
 * Store errors. Each names the URI; activities map them to retryable or non-retryable failures by
 * `code` (docs/design.md, "Classify every failure").
 */
import type { Readable } from 'node:stream';
import { StoreErrorCode } from '../../data-schemas/failures';

export { StoreErrorCode };


/**
 * A full disk or quota is not healed by a retry a few seconds later: the attempts would only
 * rewrite the same partial output onto the same full disk for a quarter of an hour. Free space,
 * then re-run: every activity resumes from what it finished.
 */
export const FULL_DISK_CODES: ReadonlySet<string> = new Set(['ENOSPC', 'EDQUOT']);

export class StoreError extends Error {
  override name = 'StoreError';
  constructor(
    readonly code: StoreErrorCode,
    readonly uri: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`${uri}: ${message}`, options);
  }
  /** Bad credentials, a missing bucket or object, a path in the way, a full disk do not heal by retrying. */
  get retryable(): boolean {
    return this.code === StoreErrorCode.Unavailable || this.code === StoreErrorCode.Other;
  }
}

/** Thrown when an object does not exist. */
export class ObjectNotFoundError extends StoreError {
  override name = 'ObjectNotFoundError';
  constructor(uri: string, options?: { cause?: unknown }) {
    super(StoreErrorCode.NotFound, uri, 'no such object', options);
  }
}

/**
 * Watches the caller's body of a streamed put, so that the body's own failure (e.g. a producer's
 * non-retryable bad-input error) surfaces as itself and is not reclassified as a (retryable) store
 * error. The first failure wins: once the store's side has failed, the error the pipeline then
 * destroys the body with is the store's, not the caller's.
 */
export function watchBody(body: Readable): { storeFailed: () => void; bodyFailure: () => { err: Error } | undefined } {
  let first: { by: 'body'; err: Error } | { by: 'store' } | undefined;
  body.on('error', (err: Error) => {
    first ??= { by: 'body', err };
  });
  return {
    storeFailed: () => {
      first ??= { by: 'store' };
    },
    bodyFailure: () => (first?.by === 'body' ? { err: first.err } : undefined),
  };
}
