/**
 * Data errors. Every one is caused by the input (a corrupt file, a bad record, a name clash), so
 * none heals by retrying; activities map them to non-retryable failures by `code`
 * (docs/design.md, "Classify every failure").
 */
import { DataErrorCode } from '../../data-schemas/failures';

export { DataErrorCode };

export class DataError extends Error {
  override name = 'DataError';
  constructor(
    readonly code: DataErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
  /** Bad data stays bad: a retry reads the same bytes. */
  get retryable(): boolean {
    return false;
  }
}

/** Thrown when TFRecord framing is broken: a CRC mismatch or a file that ends inside a record. */
export class TfRecordError extends DataError {
  override name = 'TfRecordError';
  constructor(
    code: DataErrorCode,
    /** The file (or label of the buffer) being read. */
    readonly file: string,
    /** Zero-based index of the record whose framing is broken. */
    readonly recordIndex: number,
    /** Byte offset of that record's header in the file. */
    readonly offset: number,
    detail: string,
  ) {
    super(code, `${file}: record ${recordIndex} at byte ${offset}: ${detail}`);
  }
}

/** Thrown when a tf.train.Example does not decode or a feature is missing or of the wrong type. */
export class TfExampleError extends DataError {
  override name = 'TfExampleError';
  constructor(
    /** Where the example came from, e.g. `file.tfrecord: record 3`; prefixed to the message. */
    readonly where: string,
    /** The feature at fault, when one is. */
    readonly feature: string | undefined,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super(DataErrorCode.TfExample, `${where}: ${feature === undefined ? '' : `feature "${feature}": `}${detail}`, options);
  }
}

/** Thrown when a Bridge RLDS episode decodes but does not make a valid D_rob trajectory. */
export class BridgeRecordError extends DataError {
  override name = 'BridgeRecordError';
  constructor(
    readonly file: string,
    readonly recordIndex: number,
    /** The feature (e.g. `steps/action`) or trajectory field (e.g. `steps[3].action`) at fault. */
    readonly field: string | undefined,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super(DataErrorCode.BridgeRecord, `${file}: record ${recordIndex}: ${field === undefined ? '' : `${field}: `}${detail}`, options);
  }
}

/** Thrown when writing a dataset to a root that already holds a manifest. */
export class DatasetExistsError extends DataError {
  override name = 'DatasetExistsError';
  constructor(readonly rootUri: string) {
    super(DataErrorCode.DatasetExists, `dataset already exists at ${rootUri}`);
  }
}

/** Thrown when a root holds no `manifest.json`: there is no (complete) dataset there. */
export class DatasetNotFoundError extends DataError {
  override name = 'DatasetNotFoundError';
  constructor(readonly rootUri: string) {
    super(DataErrorCode.DatasetNotFound, `no dataset at ${rootUri} (manifest.json missing)`);
  }
}

/** Thrown when a dataset's manifest or a record in it is malformed, or input to the writer is. */
export class DatasetInvalidError extends DataError {
  override name = 'DatasetInvalidError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(DataErrorCode.DatasetInvalid, message, options);
  }
}
