import type { Readable } from 'node:stream';

/** What `head` and `list` tell about one object. */
export interface ObjectInfo {
  uri: string;
  bytes: number;
  /** Opaque version tag: the S3 ETag, or size+mtime on disk. */
  etag?: string;
  lastModified?: Date;
}

export interface TransferProgress {
  loadedBytes: number;
  totalBytes?: number;
}

export interface PutOptions {
  contentType?: string;
  /** Called as bytes go out; large S3 objects go through multipart upload. */
  onProgress?: (progress: TransferProgress) => void;
}

export type PutResult = { created: true; info: ObjectInfo } | { created: false; info: ObjectInfo };

/**
 * The one object-store interface (docs/design.md, "One object-store interface"). Every URI is absolute
 * (`file:///...` or `s3://bucket/key`).
 */
export interface ObjectStore {
  /** Writes (or replaces) an object; readers see the old or the new bytes, never a mix. */
  put(uri: string, body: Uint8Array | string, options?: PutOptions): Promise<ObjectInfo>;
  /**
   * Creates the object only if nothing exists at `uri` (S3 `If-None-Match: *`, an exclusive
   * link on disk). The exactly-once primitive: `created: false` means another writer won and
   * its bytes were kept.
   */
  putIfAbsent(uri: string, body: Uint8Array | string, options?: PutOptions): Promise<PutResult>;
  /**
   * Streams a body of unknown length in; `ifAbsent` gives it create-if-absent semantics. When the
   * body itself fails, the put rejects with the body's own error (not a StoreError) and stores nothing.
   */
  putStream(uri: string, body: Readable, options?: PutOptions & { ifAbsent?: boolean }): Promise<PutResult>;
  /** @throws ObjectNotFoundError */
  get(uri: string): Promise<Buffer>;
  /** @throws ObjectNotFoundError */
  getStream(uri: string): Promise<Readable>;
  /**
   * Bytes `[start, end)` of an object, clamped to its end (S3 `Range: bytes=start-(end-1)`): how
   * a reader of a large file (a parquet footer, one row group) reads part of it without the whole.
   * @throws ObjectNotFoundError
   */
  getRange(uri: string, start: number, end: number): Promise<Buffer>;
  /** undefined when the object does not exist. */
  head(uri: string): Promise<ObjectInfo | undefined>;
  /** Every object whose URI starts with `prefixUri`, in lexicographic order of URI. */
  list(prefixUri: string): AsyncIterable<ObjectInfo>;
  /** Deleting a missing object is not an error. */
  delete(uri: string, options?: DeleteOptions): Promise<void>;
}

export interface DeleteOptions {
  /**
   * A prefix URI of the deleted object (a dataset root): also remove the directories the deletion
   * leaves empty, from the object's own up to and including this one. Only the file:// store has
   * directories; S3 has none to leave behind. A directory that still holds anything stays.
   */
  pruneEmptyDirsUpTo?: string;
}
