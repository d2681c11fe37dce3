import * as path from 'node:path';
import type { Readable } from 'node:stream';
import type { z } from 'zod';
import { MULTI_HOST_NEEDS_S3 } from '../../data-schemas/config';
import { fileUri, InvalidUriError, parseObjectUri } from '../../data-schemas/uri';
import { ObjectNotFoundError, StoreError, StoreErrorCode } from './errors';
import { FileStore } from './file-store';
import { RootGuard, type StoreAccess, type StoreRoots } from './roots';
import { S3Store, type S3StoreOptions } from './s3-store';
import type { DeleteOptions, ObjectInfo, ObjectStore, PutOptions, PutResult } from './types';
import { describeZodIssues, formatIssuePath } from '../../data-schemas/issues';

export * from './types';
export * from './errors';
export { sha256Hex, sha256HexOfStream } from './checksum';
export { stageDirectory } from './stage-directory';
export { FileStore, TEMP_FILE_PREFIX } from './file-store';
export { RootGuard, StoreOutsideRootsError, describeRoots, isInsideRoots, validateStoreRoots, type StoreAccess, type StoreRoots } from './roots';
export { S3Store, addS3Defaults, type S3StoreOptions, type S3Credentials, type ResolvedS3StoreOptions } from './s3-store';

export interface CreateObjectStoreOptions {
  /**
   * Where the store may act (docs/design.md, "The store confines every URI"): every URI is checked
   * against these roots before any I/O, and one outside them fails with STORE_OUTSIDE_ROOTS. Workers
   * get `loadConfig().storeRoots`. `'unconfined'` is for a command that acts on its own user's paths
   * with that user's rights (`vla data import`), and for tests.
   */
  roots: StoreRoots | 'unconfined';
  /** Options for the S3 side; created on the first s3:// URI, so file-only runs never need credentials. */
  s3?: S3StoreOptions;
  /**
   * Workers run on several hosts (VLA_MULTI_HOST=1): every `file://` URI is refused with
   * STORE_NOT_SHARED before any I/O, since another host would not see the folder. @default false
   */
  multiHost?: boolean;
}

/**
 * The store activities use: routes each URI by scheme, `file://` to the filesystem and `s3://`
 * to S3, after checking it against the roots. The S3 client is built lazily on first use.
 * @throws Error naming a root URI that is not a usable root
 */
export function createObjectStore(options: CreateObjectStoreOptions): ObjectStore {
  return new RoutingStore(options);
}

class RoutingStore implements ObjectStore {
  private readonly file = new FileStore();
  private s3?: S3Store;
  private readonly guard?: RootGuard;

  constructor(private readonly options: CreateObjectStoreOptions) {
    if (options.roots !== 'unconfined') this.guard = new RootGuard(options.roots);
  }

  /** The store for `uri`, once the roots allow `access` to it. */
  private async route(uri: string, access: StoreAccess): Promise<ObjectStore> {
    if (this.options.multiHost === true && uri.startsWith('file://')) {
      throw new StoreError(StoreErrorCode.NotShared, uri, `${MULTI_HOST_NEEDS_S3} (VLA_MULTI_HOST=1): a file:// URI names a folder on one host only; use s3://bucket/prefix`);
    }
    await this.guard?.check(uri, access);
    let scheme: 'file' | 's3';
    try {
      scheme = parseObjectUri(uri).scheme;
    } catch (err) {
      throw new StoreError(StoreErrorCode.Other, uri, err instanceof Error ? err.message : String(err), { cause: err });
    }
    if (scheme === 'file') return this.file;
    this.s3 ??= new S3Store(this.options.s3);
    return this.s3;
  }

  async put(uri: string, body: Uint8Array | string, options?: PutOptions): Promise<ObjectInfo> {
    return (await this.route(uri, 'write')).put(uri, body, options);
  }
  async putIfAbsent(uri: string, body: Uint8Array | string, options?: PutOptions): Promise<PutResult> {
    return (await this.route(uri, 'write')).putIfAbsent(uri, body, options);
  }
  async putStream(uri: string, body: Readable, options?: PutOptions & { ifAbsent?: boolean }): Promise<PutResult> {
    let store: ObjectStore;
    try {
      store = await this.route(uri, 'write');
    } catch (err) {
      body.destroy(); // Nobody will read it now; leave no producer waiting.
      throw err;
    }
    return store.putStream(uri, body, options);
  }
  async get(uri: string): Promise<Buffer> {
    return (await this.route(uri, 'read')).get(uri);
  }
  async getStream(uri: string): Promise<Readable> {
    return (await this.route(uri, 'read')).getStream(uri);
  }
  async getRange(uri: string, start: number, end: number): Promise<Buffer> {
    return (await this.route(uri, 'read')).getRange(uri, start, end);
  }
  async head(uri: string): Promise<ObjectInfo | undefined> {
    return (await this.route(uri, 'read')).head(uri);
  }
  async *list(prefixUri: string): AsyncIterable<ObjectInfo> {
    yield* (await this.route(prefixUri, 'read')).list(prefixUri);
  }
  async delete(uri: string, options?: DeleteOptions): Promise<void> {
    return (await this.route(uri, 'write')).delete(uri, options);
  }
}

/**
 * Turns what a researcher types into an object URI: `file://` and `s3://` URIs pass through
 * (validated), anything else is a filesystem path resolved against the working directory.
 * @throws InvalidUriError for a malformed file:// or s3:// URI or another scheme
 */
export function toObjectUri(pathOrUri: string): string {
  if (pathOrUri === '') throw new InvalidUriError('an empty string is neither a path nor a URI');
  if (pathOrUri.startsWith('file://') || pathOrUri.startsWith('s3://')) {
    try {
      parseObjectUri(pathOrUri);
    } catch (err) {
      // decodeURIComponent throws a bare URIError on a stray "%".
      if (err instanceof URIError) throw new InvalidUriError(`${pathOrUri}: malformed percent-encoding`);
      throw err;
    }
    return pathOrUri;
  }
  // "http://..." or "gs://..." is a typo'd URI, not a relative directory called "http:".
  if (/^[a-zA-Z][a-zA-Z0-9+.-]*:\/\//.test(pathOrUri)) throw new InvalidUriError(`${pathOrUri}: unsupported scheme; expected file:///abs/path, s3://bucket/key or a filesystem path`);
  return fileUri(path.resolve(pathOrUri));
}

/** Writes `value` as pretty JSON (UTF-8, trailing newline). */
export function putJson(store: ObjectStore, uri: string, value: unknown, options?: { ifAbsent?: boolean }): Promise<PutResult> {
  const body = `${JSON.stringify(value, null, 2)}\n`;
  const putOptions = { contentType: 'application/json' };
  if (options?.ifAbsent) return store.putIfAbsent(uri, body, putOptions);
  return store.put(uri, body, putOptions).then((info) => ({ created: true, info }) as const);
}

/** Thrown when an object's bytes are not valid JSON or do not match the expected schema. */
export class InvalidObjectError extends StoreError {
  override name = 'InvalidObjectError';
  constructor(
    uri: string,
    message: string,
    readonly issues: readonly { path: string; message: string }[] = [],
    options?: { cause?: unknown; json?: unknown },
  ) {
    super(StoreErrorCode.Other, uri, message, options);
    this.problem = message;
    this.json = options?.json;
  }
  /** The message without the URI, for reports that name the file their own way. */
  readonly problem: string;
  /** The parsed JSON that failed the schema (the cause is then the ZodError), so a caller can locate each issue in it. */
  readonly json: unknown;
  /** The same bytes will fail the same way. */
  override get retryable(): boolean {
    return false;
  }
}

/**
 * Reads and validates a JSON object.
 * @throws ObjectNotFoundError when it is missing
 * @throws InvalidObjectError naming the URI and each bad field when it does not parse
 */
/** `getJson`, or undefined when nothing is stored at `uri` (a bad object still throws). */
export async function getJsonIfExists<S extends z.ZodType>(store: ObjectStore, uri: string, schema: S): Promise<z.output<S> | undefined> {
  try {
    return await getJson(store, uri, schema);
  } catch (err) {
    if (err instanceof ObjectNotFoundError) return undefined;
    throw err;
  }
}

export async function getJson<S extends z.ZodType>(store: ObjectStore, uri: string, schema: S, expected?: string): Promise<z.output<S>> {
  return parseStoredJson(uri, await store.get(uri), schema, expected);
}

/**
 * Parses the bytes of a stored JSON object read by other means (its sha256 is needed too, or it
 * is one line of a JSON-lines file), with getJson's errors.
 * @param expected what the object should be, for the message ("a shard manifest (shards.json)")
 * @throws InvalidObjectError naming the URI, what was expected and each bad field
 */
export function parseStoredJson<S extends z.ZodType>(uri: string, bytes: Buffer | string, schema: S, expected?: string): z.output<S> {
  const what = expected !== undefined ? ` (expected ${expected})` : '';
  let raw: unknown;
  try {
    raw = JSON.parse(typeof bytes === 'string' ? bytes : bytes.toString('utf8'));
  } catch (err) {
    throw new InvalidObjectError(uri, `not valid JSON${what}: ${err instanceof Error ? err.message : String(err)}`, [], { cause: err });
  }
  const result = schema.safeParse(raw);
  if (result.success) return result.data;
  const issues = result.error.issues.map((issue) => ({ path: formatIssuePath(issue.path) || '(root)', message: issue.message }));
  throw new InvalidObjectError(uri, `does not match the expected schema${what}: ${describeZodIssues(result.error)}`, issues, { cause: result.error, json: raw });
}
