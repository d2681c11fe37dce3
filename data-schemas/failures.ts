/**
 * Failure types (the `type` of an ApplicationFailure) that more than one pipeline meets: the store,
 * dataset files, errors no activity mapped, station drivers, workflow inputs. Each pipeline's own
 * are declared beside its schemas (data-schemas/relabel.ts, training.ts, vqa.ts, robot.ts).
 * Workflows list them in `nonRetryableErrorTypes` and compare them, so they are values here, never
 * retyped as string literals: the strings themselves never change, since running workflows carry
 * them in their retry policies. Node-free: workflows import this module.
 */

/** Thrown by every store (file://, s3://) with the URI it failed on; only `Unavailable` (and `Other`) heal by retrying. */
export const StoreErrorCode = {
  /** Thrown when the object (or file) the URI names does not exist. */
  NotFound: 'OBJECT_NOT_FOUND',
  /** Thrown when the credentials may not read or write there (403, EACCES). */
  AccessDenied: 'STORE_ACCESS_DENIED',
  /** Thrown when the bucket does not exist. */
  NoSuchBucket: 'STORE_NO_SUCH_BUCKET',
  /** Thrown when the store could not be reached or answered 5xx; retried. */
  Unavailable: 'STORE_UNAVAILABLE',
  /** The URI is outside the store's configured roots (activities/store/roots.ts); never retried. */
  OutsideRoots: 'STORE_OUTSIDE_ROOTS',
  /** A file or directory is in the way of the write (file://: the target is a directory, a parent is a file). */
  PathConflict: 'STORE_PATH_CONFLICT',
  /** No space left (ENOSPC) or over quota (EDQUOT): a retry seconds later meets the same full disk. */
  Full: 'STORE_FULL',
  /** A `file://` URI on a worker of several hosts (VLA_MULTI_HOST=1): only s3:// is shared; never retried. */
  NotShared: 'STORE_NOT_SHARED',
  /** Thrown for any other store error; retried. */
  Other: 'STORE_ERROR',
} as const;
export type StoreErrorCode = (typeof StoreErrorCode)[keyof typeof StoreErrorCode];

/** Thrown when a dataset file or record is wrong: caused by the input, so none heals by retrying. */
export const DataErrorCode = {
  /** Thrown when a TFRecord's length checksum does not match (a corrupt file). */
  TfRecordBadLengthCrc: 'TFRECORD_BAD_LENGTH_CRC',
  /** Thrown when a TFRecord's data checksum does not match. */
  TfRecordBadDataCrc: 'TFRECORD_BAD_DATA_CRC',
  /** Thrown when a TFRecord file ends inside a record header. */
  TfRecordTruncatedHeader: 'TFRECORD_TRUNCATED_HEADER',
  /** Thrown when a TFRecord file ends inside a record's data. */
  TfRecordTruncatedData: 'TFRECORD_TRUNCATED_DATA',
  /** Thrown when a record is not a valid tf.train.Example. */
  TfExample: 'TF_EXAMPLE_INVALID',
  /** Thrown when a BridgeData record lacks a feature or does not make a valid D_rob trajectory. */
  BridgeRecord: 'BRIDGE_RECORD_INVALID',
  /** Thrown when an import would overwrite a different dataset at the same root. */
  DatasetExists: 'DATASET_EXISTS',
  /** Thrown when no dataset manifest is at the given root. */
  DatasetNotFound: 'DATASET_NOT_FOUND',
  /** Thrown when a manifest or record fails its schema or its sha256. */
  DatasetInvalid: 'DATASET_INVALID',
  /** Thrown for bad arguments to an import: no files, a missing file, a bad limit. */
  InvalidInput: 'DATA_INPUT_INVALID',
} as const;
export type DataErrorCode = (typeof DataErrorCode)[keyof typeof DataErrorCode];

/**
 * Failure types (ApplicationFailure `type`) for errors that no activity mapped itself: a filesystem
 * error outside the store (a scratch directory, a staged shard), a parse of bytes that no reader
 * named. The store's own codes (StoreErrorCode, STORE_FULL also for a full local disk) and
 * DataErrorCode cover the rest.
 */
export const UnmappedFailure = {
  /** A path is in the way: EEXIST, EISDIR, ENOTDIR, ENAMETOOLONG. */
  PathConflict: 'FILE_PATH_CONFLICT',
  /** EACCES, EPERM, EROFS. */
  AccessDenied: 'FILE_ACCESS_DENIED',
  /** A JSON.parse that no reader wrapped: the same bytes fail the same way. */
  Unparseable: 'UNPARSEABLE',
  /** A zod schema refused a value: the same value fails the same way. */
  InvalidData: 'INVALID_DATA',
} as const;

/** Thrown when a workflow's input fails its schema (the message names every bad field); never retried. */
export const INVALID_WORKFLOW_INPUT = 'InvalidWorkflowInput';

/**
 * Thrown when an activity's input fails its contract's schema (data-schemas/activity-contract.ts):
 * a workflow of other code sent it; never retried.
 */
export const INVALID_ACTIVITY_INPUT = 'InvalidActivityInput';

/**
 * A station driver's failure: `Station:<code>` for each StationErrorCode
 * (activities/robot/station/errors.ts), retryable as the driver says.
 */
export const stationFailureType = (code: string): `Station:${string}` => `Station:${code}`;

/** The station failures a workflow branches on. */
export const StationFailure = {
  /** Thrown when a chunk breaks a safety limit; nothing moved, the episode re-plans. */
  UnsafeAction: 'Station:unsafe_action',
  /** Thrown when a chunk was planned from an observation older than the arm's last action; nothing moved. */
  StaleObservation: 'Station:stale_observation',
  /** Thrown when a chunk's outcome is unknown (the arm may have moved); never retried, the episode observes again. */
  MayHaveMoved: 'Station:may_have_moved',
} as const;
