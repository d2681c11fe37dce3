/**
 * Errors of station drivers. Every failure a driver reports is a StationError with a stable `code`
 * (the ApplicationFailure type an activity will use) and whether retrying can help.
 */

export type StationErrorCode =
  /** The chunk breaks a safety limit; nothing moved (StationSafetyError). */
  | 'unsafe_action'
  /** The request is malformed or names something the station cannot do (e.g. an unknown task). */
  | 'bad_request'
  /** The station has not been reset yet. */
  | 'not_ready'
  /** Another chunk is being executed. */
  | 'busy'
  /** The chunk was planned from an observation older than the arm's last action; nothing moved. */
  | 'stale_observation'
  /** The server could not be reached (connection refused or reset before an answer). */
  | 'unreachable'
  /** No answer within the time limit. */
  | 'timeout'
  /** The server answered 5xx (or an unexpected status). */
  | 'server_error'
  /** The answer does not follow the protocol (not JSON, wrong shape, not a JPEG). */
  | 'protocol_error'
  /** The driver was closed. */
  | 'closed';

export interface StationErrorDetails {
  retryable?: boolean;
  /** The endpoint, e.g. "POST /act". */
  endpoint?: string;
  /** HTTP status of the answer, when there was one. */
  status?: number;
  /** The `error.code` the server sent, verbatim. */
  serverCode?: string;
  /**
   * Whether the arm may have moved during the failed call (a /act whose outcome is unknown); the
   * caller must observe again before planning the next chunk.
   */
  mayHaveMoved?: boolean;
  cause?: unknown;
}

export class StationError extends Error {
  override name = 'StationError';
  readonly retryable: boolean;
  readonly endpoint: string | undefined;
  readonly status: number | undefined;
  readonly serverCode: string | undefined;
  readonly mayHaveMoved: boolean;
  constructor(
    readonly code: StationErrorCode,
    message: string,
    details: StationErrorDetails = {},
  ) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.retryable = details.retryable ?? false;
    this.endpoint = details.endpoint;
    this.status = details.status;
    this.serverCode = details.serverCode;
    this.mayHaveMoved = details.mayHaveMoved ?? false;
  }
}

/** Which limit a chunk broke. */
export type SafetyLimitName =
  /** Not a list of [dx, dy, dz, gripper] actions, or an empty one. */
  | 'shape'
  /** NaN or an infinite number. */
  | 'finite'
  /** Gripper outside [0, 1]. */
  | 'gripper_range'
  /** Translation norm above maxStepMeters. */
  | 'max_step'
  /** The position after this action leaves the workspace box. */
  | 'workspace'
  /** The station's current state is not 7 finite numbers. */
  | 'state';

export interface SafetyViolation {
  /** Index of the first offending action in the chunk (-1 for the chunk or the state itself). */
  actionIndex: number;
  limit: SafetyLimitName;
  message: string;
}

/** A chunk rejected as a whole before anything moved. Never retryable: the same chunk fails again. */
export class StationSafetyError extends StationError {
  override name = 'StationSafetyError';
  readonly actionIndex: number;
  readonly limit: SafetyLimitName;
  constructor(violation: SafetyViolation, details: Omit<StationErrorDetails, 'retryable'> = {}) {
    super('unsafe_action', violation.message, { ...details, retryable: false });
    this.actionIndex = violation.actionIndex;
    this.limit = violation.limit;
  }
}
