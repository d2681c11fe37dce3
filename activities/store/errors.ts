/**
 * Store errors. Each names the URI; activities map them to retryable or non-retryable failures by
 * `code` (docs/design.md, "Classify every failure").
 */
export const StoreErrorCode = {
  NotFound: 'OBJECT_NOT_FOUND',
  AccessDenied: 'STORE_ACCESS_DENIED',
  NoSuchBucket: 'STORE_NO_SUCH_BUCKET',
  Unavailable: 'STORE_UNAVAILABLE',
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
