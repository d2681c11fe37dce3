/**
 * Store errors. Each names the URI; activities map them to retryable or non-retryable failures by
 * `code` (docs/design.md, "Classify every failure").
 */
import type { Readable } from 'node:stream';

export const StoreErrorCode = {
  NotFound: 'OBJECT_NOT_FOUND',
  AccessDenied: 'STORE_ACCESS_DENIED',
  NoSuchBucket: 'STORE_NO_SUCH_BUCKET',
  Unavailable: 'STORE_UNAVAILABLE',
  /** The URI is outside the store's configured roots (activities/store/roots.ts); never retried. */
  OutsideRoots: 'STORE_OUTSIDE_ROOTS',
  Other: 'STORE_ERROR',
} as const;
export type StoreErrorCode = (typeof StoreErrorCode)[keyof typeof StoreErrorCode];

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
  /** Bad credentials, a missing bucket or object do not heal by retrying. */
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
