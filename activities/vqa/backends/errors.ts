import { ApplicationFailure } from '@temporalio/common';
import { BackendErrorCode, BACKEND_FAILURE_TYPES, RETRYABLE_BACKEND_ERRORS } from '../../../data-schemas/vqa';

/**
 * Failures of the VQA inference backends. The codes and failure types live in data-schemas/vqa.ts,
 * where workflows read them for their retry policies.
 */

export { BackendErrorCode, BACKEND_FAILURE_TYPES, RETRYABLE_BACKEND_ERRORS, FATAL_BACKEND_ERRORS } from '../../../data-schemas/vqa';

export function isRetryableBackendError(code: BackendErrorCode): boolean {
  return RETRYABLE_BACKEND_ERRORS.has(code);
}

/** The backend code of an ApplicationFailure type, if it is one of ours. */
export function backendErrorCodeOf(type: string | null | undefined): BackendErrorCode | undefined {
  return BackendErrorCode.find((code) => BACKEND_FAILURE_TYPES[code] === type);
}

/**
 * A classified backend failure. It is an ApplicationFailure, so an activity can throw it as is: `type`
 * names the code, `nonRetryable` follows RETRYABLE_BACKEND_ERRORS and a rate limit carries the server's
 * delay as `nextRetryDelay`. Messages never contain API keys.
 */
export class BackendError extends ApplicationFailure {
  readonly code: BackendErrorCode;
  /** The delay the server asked for (429 retry-after, Gemini RetryInfo), in milliseconds. */
  readonly retryAfterMs: number | undefined;

  constructor(code: BackendErrorCode, message: string, options: { retryAfterMs?: number } = {}) {
    super(message, BACKEND_FAILURE_TYPES[code], !isRetryableBackendError(code), undefined, undefined, options.retryAfterMs);
    this.code = code;
    this.retryAfterMs = options.retryAfterMs;
  }

  /** Whether Temporal should retry (the opposite of `nonRetryable`). */
  get retryable(): boolean {
    return isRetryableBackendError(this.code);
  }
}
