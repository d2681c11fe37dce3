import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
  type PutObjectCommandInput,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { pipeline, Readable, Transform } from 'node:stream';
import { parseObjectUri } from '../../data-schemas/uri';
import { ObjectNotFoundError, StoreError, StoreErrorCode, watchBody } from './errors';
import type { ObjectInfo, ObjectStore, PutOptions, PutResult, TransferProgress } from './types';

const MiB = 1024 * 1024;
/** S3 rejects multipart parts below 5 MiB (all but the last). */
const MIN_PART_SIZE = 5 * MiB;
const MAX_PARTS = 10_000;

export interface S3Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

export interface S3StoreOptions {
  /**
   * S3-compatible endpoint URL, e.g. `http://127.0.0.1:7070`.
   * @default env `AWS_ENDPOINT_URL_S3`, then `AWS_ENDPOINT_URL`, else AWS's regional endpoint
   */
  endpoint?: string;
  /**
   * @default env `AWS_REGION`, then `AWS_DEFAULT_REGION`, else `'us-east-1'`
   */
  region?: string;
  /**
   * Static credentials. Keep them out of workflow inputs (docs/design.md, "Secrets stay out of histories").
   * @default the SDK default chain (env `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`, profile, IMDS, ...)
   */
  credentials?: S3Credentials;
  /**
   * Address buckets as `endpoint/bucket/key` instead of `bucket.endpoint/key`.
   * @default true when the endpoint host is loopback (127.x, localhost, ::1), else false
   */
  forcePathStyle?: boolean;
  /**
   * Bodies larger than this go through multipart upload.
   * @default 16 MiB
   */
  multipartThresholdBytes?: number;
  /**
   * Multipart part size; at least 5 MiB (S3's minimum). Grown automatically for known-size bodies
   * that would otherwise need more than 10,000 parts.
   * @default 8 MiB
   */
  partSizeBytes?: number;
  /**
   * Parts of one multipart upload in flight at once; memory use is about `queueSize * partSizeBytes`.
   * @default 4
   */
  queueSize?: number;
  /**
   * Attempts per request inside the SDK before the error reaches the activity (and Temporal's retry
   * policy): short hiccups heal here, long outages are Temporal's to wait out.
   * @default 3
   */
  maxAttempts?: number;
}

export type ResolvedS3StoreOptions = Required<Omit<S3StoreOptions, 'endpoint' | 'credentials'>> &
  Pick<S3StoreOptions, 'endpoint' | 'credentials'>;

function isLoopbackHost(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '');
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

function positiveInt(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value <= 0) throw new TypeError(`S3StoreOptions.${name} must be a positive integer, got ${value}`);
  return value;
}

/**
 * Fills every default of `S3StoreOptions` in one place and rejects bad values before any request
 * is made.
 */
export function addS3Defaults(options: S3StoreOptions = {}, env: NodeJS.ProcessEnv = process.env): ResolvedS3StoreOptions {
  const endpoint = options.endpoint ?? (env.AWS_ENDPOINT_URL_S3 || env.AWS_ENDPOINT_URL || undefined);
  let loopback = false;
  if (endpoint !== undefined) {
    let url: URL;
    try {
      url = new URL(endpoint);
    } catch {
      throw new TypeError(`S3 endpoint "${endpoint}" is not a URL (expected e.g. http://127.0.0.1:7070)`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TypeError(`S3 endpoint "${endpoint}" must be http:// or https://`);
    loopback = isLoopbackHost(url.hostname);
  }
  const partSizeBytes = positiveInt('partSizeBytes', options.partSizeBytes ?? 8 * MiB);
  if (partSizeBytes < MIN_PART_SIZE) throw new TypeError(`S3StoreOptions.partSizeBytes must be at least 5 MiB (S3's minimum part size), got ${partSizeBytes}`);
  return {
    endpoint,
    region: options.region ?? (env.AWS_REGION || env.AWS_DEFAULT_REGION || 'us-east-1'),
    credentials: options.credentials,
    forcePathStyle: options.forcePathStyle ?? loopback,
    multipartThresholdBytes: positiveInt('multipartThresholdBytes', options.multipartThresholdBytes ?? 16 * MiB),
    partSizeBytes,
    queueSize: positiveInt('queueSize', options.queueSize ?? 4),
    maxAttempts: positiveInt('maxAttempts', options.maxAttempts ?? 3),
  };
}

/**
 * The SDK warns on every process start under Node < 22 that future releases will drop it; the
 * project supports Node 20 on purpose, so the warning is noise. An explicit setting wins.
 */
export function silenceNodeVersionWarning(): void {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
}

function toBuffer(body: Uint8Array | string): Buffer {
  return typeof body === 'string' ? Buffer.from(body, 'utf8') : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
}

function errorName(err: unknown): string {
  if (err instanceof Error) return err.name;
  return 'Error';
}

function httpStatus(err: unknown): number | undefined {
  if (err instanceof S3ServiceException) return err.$metadata.httpStatusCode;
  if (typeof err === 'object' && err !== null && '$metadata' in err) {
    const meta = (err as { $metadata?: { httpStatusCode?: number } }).$metadata;
    return meta?.httpStatusCode;
  }
  return undefined;
}

function errnoCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string' ? err.code : undefined;
}

/** XAdminUserNotFound: versitygw's answer (404) to an unknown access key id. */
const ACCESS_DENIED_NAMES = new Set(['XAdminUserNotFound', 'AccessDenied', 'Forbidden', 'InvalidAccessKeyId', 'SignatureDoesNotMatch', 'ExpiredToken', 'InvalidToken', 'TokenRefreshRequired', 'AllAccessDisabled']);
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNABORTED', 'UND_ERR_SOCKET']);

function isPreconditionFailure(err: unknown): boolean {
  const name = errorName(err);
  return name === 'PreconditionFailed' || name === 'ConditionalRequestConflict' || httpStatus(err) === 412;
}

/** `ObjectStore` on S3 or any S3-compatible server, through @aws-sdk/client-s3. */
export class S3Store implements ObjectStore {
  readonly options: ResolvedS3StoreOptions;
  readonly client: S3Client;
  /** Names the endpoint in errors, so a researcher knows which server and which variables to check. */
  private readonly endpointLabel: string;

  constructor(options: S3StoreOptions = {}) {
    this.options = addS3Defaults(options);
    silenceNodeVersionWarning();
    const { endpoint, region, credentials, forcePathStyle, maxAttempts } = this.options;
    this.client = new S3Client({
      region,
      forcePathStyle,
      maxAttempts,
      ...(endpoint !== undefined && { endpoint }),
      ...(credentials !== undefined && { credentials }),
    });
    this.endpointLabel = endpoint ?? `AWS S3 (${region})`;
  }

  /** Closes the HTTP agent's idle sockets so a short-lived process can exit promptly. */
  destroy(): void {
    this.client.destroy();
  }

  private location(uri: string): { Bucket: string; Key: string } {
    const parsed = parseObjectUri(uri);
    if (parsed.scheme !== 's3') throw new StoreError(StoreErrorCode.Other, uri, 'S3Store only handles s3:// URIs');
    return { Bucket: parsed.bucket, Key: parsed.key };
  }

  private objectLocation(uri: string): { Bucket: string; Key: string } {
    const loc = this.location(uri);
    if (loc.Key === '') throw new StoreError(StoreErrorCode.Other, uri, 'an object URI needs a key after the bucket (s3://bucket/key)');
    return loc;
  }

  /** Maps SDK and network failures onto the store's error codes (docs/design.md, "Classify every failure"). */
  toStoreError(uri: string, err: unknown): StoreError {
    if (err instanceof StoreError) return err;
    const name = errorName(err);
    const status = httpStatus(err);
    const code = errnoCode(err);
    const where = `endpoint ${this.endpointLabel}`;
    if (name === 'NoSuchBucket') {
      const bucket = parseObjectUri(uri).scheme === 's3' ? this.location(uri).Bucket : '?';
      return new StoreError(StoreErrorCode.NoSuchBucket, uri, `bucket "${bucket}" does not exist at ${where}; create it or fix the URI`, { cause: err });
    }
    if (ACCESS_DENIED_NAMES.has(name) || status === 403) {
      return new StoreError(
        StoreErrorCode.AccessDenied,
        uri,
        `access denied (${name}) by ${where}; check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or the credentials given to the store) and the bucket's permissions`,
        { cause: err },
      );
    }
    // Only these two mean "no such object": other 404 codes name something else that is missing.
    if (name === 'NoSuchKey' || name === 'NotFound') return new ObjectNotFoundError(uri, { cause: err });
    if (name === 'CredentialsProviderError') {
      return new StoreError(StoreErrorCode.AccessDenied, uri, `no S3 credentials found for ${where}; set AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or an AWS profile`, { cause: err });
    }
    if (
      (status !== undefined && (status >= 500 || status === 429)) ||
      name === 'SlowDown' ||
      name === 'TimeoutError' ||
      name === 'RequestTimeout' ||
      (code !== undefined && NETWORK_CODES.has(code))
    ) {
      const detail = code ?? (status !== undefined ? `HTTP ${status}` : name);
      return new StoreError(StoreErrorCode.Unavailable, uri, `${where} unavailable (${detail}); retrying later may help`, { cause: err });
    }
    const message = err instanceof Error ? err.message : String(err);
    return new StoreError(StoreErrorCode.Other, uri, `${name}${status !== undefined ? ` (HTTP ${status})` : ''} from ${where}: ${message}`, { cause: err });
  }

  async put(uri: string, body: Uint8Array | string, options?: PutOptions): Promise<ObjectInfo> {
    const bytes = toBuffer(body);
    const { etag } = await this.upload(uri, bytes, options, false);
    return { uri, bytes: bytes.length, ...(etag !== undefined && { etag }) };
  }

  async putIfAbsent(uri: string, body: Uint8Array | string, options?: PutOptions): Promise<PutResult> {
    const bytes = toBuffer(body);
    // Uploading a large body only to have it refused wastes minutes; a HEAD first is cheap.
    // The conditional write below stays the arbiter when writers race.
    if (bytes.length > this.options.multipartThresholdBytes) {
      const existing = await this.head(uri);
      if (existing) return { created: false, info: existing };
    }
    return this.createExclusive(uri, async () => {
      const { etag } = await this.upload(uri, bytes, options, true);
      return { uri, bytes: bytes.length, ...(etag !== undefined && { etag }) };
    });
  }

  async putStream(uri: string, body: Readable, options?: PutOptions & { ifAbsent?: boolean }): Promise<PutResult> {
    const ifAbsent = options?.ifAbsent ?? false;
    if (ifAbsent) {
      const existing = await this.head(uri);
      if (existing) {
        body.destroy();
        return { created: false, info: existing };
      }
    }
    const watched = watchBody(body);
    let counted = 0;
    const counter = new Transform({
      transform(chunk: Buffer, _enc, done) {
        counted += chunk.length;
        done(null, chunk);
      },
    });
    // pipeline() destroys the caller's stream when the upload gives up on `counter`, and carries
    // a failure of the caller's stream into the upload; its own callback has nothing to add.
    pipeline(body, counter, () => {});
    const write = async (): Promise<ObjectInfo> => {
      try {
        const { etag } = await this.upload(uri, counter, options, ifAbsent);
        options?.onProgress?.({ loadedBytes: counted, totalBytes: counted });
        return { uri, bytes: counted, ...(etag !== undefined && { etag }) };
      } catch (err) {
        // Marked before counter.destroy() below makes the pipeline destroy the caller's stream too.
        watched.storeFailed();
        throw err;
      } finally {
        counter.destroy();
      }
    };
    try {
      if (ifAbsent) return await this.createExclusive(uri, write);
      return { created: true, info: await write() };
    } catch (err) {
      // The caller's stream failing is the caller's error (e.g. bad input), not the store's.
      throw watched.bodyFailure()?.err ?? err;
    }
  }

  async get(uri: string): Promise<Buffer> {
    const loc = this.objectLocation(uri);
    try {
      const out = await this.client.send(new GetObjectCommand(loc));
      if (!out.Body) throw new StoreError(StoreErrorCode.Other, uri, 'GetObject returned no body');
      const bytes = await out.Body.transformToByteArray();
      return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    } catch (err) {
      throw this.toStoreError(uri, err);
    }
  }

  async getStream(uri: string): Promise<Readable> {
    const loc = this.objectLocation(uri);
    try {
      const out = await this.client.send(new GetObjectCommand(loc));
      // In Node the SDK hands back the HTTP response itself, an IncomingMessage.
      if (!(out.Body instanceof Readable)) throw new StoreError(StoreErrorCode.Other, uri, 'GetObject returned no Node stream body');
      return out.Body;
    } catch (err) {
      throw this.toStoreError(uri, err);
    }
  }

  async getRange(uri: string, start: number, end: number): Promise<Buffer> {
    const loc = this.objectLocation(uri);
    // An empty range has no Range header to say it; the object must still exist.
    if (end <= start) {
      if (!(await this.head(uri))) throw new ObjectNotFoundError(uri);
      return Buffer.alloc(0);
    }
    try {
      const out = await this.client.send(new GetObjectCommand({ ...loc, Range: `bytes=${start}-${end - 1}` }));
      if (!out.Body) throw new StoreError(StoreErrorCode.Other, uri, 'GetObject returned no body');
      const bytes = await out.Body.transformToByteArray();
      return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    } catch (err) {
      // A range that starts at or past the end (416) is nothing, as it is for a file.
      if (err instanceof Error && '$metadata' in err && (err.$metadata as { httpStatusCode?: number }).httpStatusCode === 416) return Buffer.alloc(0);
      throw this.toStoreError(uri, err);
    }
  }

  async head(uri: string): Promise<ObjectInfo | undefined> {
    const loc = this.objectLocation(uri);
    try {
      const out = await this.client.send(new HeadObjectCommand(loc));
      return {
        uri,
        bytes: out.ContentLength ?? 0,
        ...(out.ETag !== undefined && { etag: out.ETag }),
        ...(out.LastModified !== undefined && { lastModified: out.LastModified }),
      };
    } catch (err) {
      const mapped = this.toStoreError(uri, err);
      // HEAD responses carry no error body, so a missing bucket also reads as 404: undefined too.
      if (mapped instanceof ObjectNotFoundError) return undefined;
      throw mapped;
    }
  }

  async *list(prefixUri: string): AsyncIterable<ObjectInfo> {
    const { Bucket, Key: Prefix } = this.location(prefixUri);
    let ContinuationToken: string | undefined;
    do {
      let page;
      try {
        page = await this.client.send(new ListObjectsV2Command({ Bucket, Prefix, ContinuationToken }));
      } catch (err) {
        throw this.toStoreError(prefixUri, err);
      }
      for (const obj of page.Contents ?? []) {
        if (obj.Key === undefined) continue;
        yield {
          uri: `s3://${Bucket}/${obj.Key}`,
          bytes: obj.Size ?? 0,
          ...(obj.ETag !== undefined && { etag: obj.ETag }),
          ...(obj.LastModified !== undefined && { lastModified: obj.LastModified }),
        };
      }
      ContinuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (ContinuationToken);
  }

  async delete(uri: string): Promise<void> {
    const loc = this.objectLocation(uri);
    try {
      await this.client.send(new DeleteObjectCommand(loc));
    } catch (err) {
      const mapped = this.toStoreError(uri, err);
      if (mapped instanceof ObjectNotFoundError) return;
      throw mapped;
    }
  }

  /**
   * Runs a conditional create; a refusal (412 PreconditionFailed, or 409 while a competing
   * conditional write is still in flight) turns into `created: false` with the winner's info.
   */
  private async createExclusive(uri: string, write: () => Promise<ObjectInfo>): Promise<PutResult> {
    try {
      return { created: true, info: await write() };
    } catch (err) {
      if (!isPreconditionFailure(err)) throw this.toStoreError(uri, err);
      // A 409 can arrive before the winner has finished; give it a moment to become visible.
      for (let attempt = 0; attempt < 20; attempt++) {
        const info = await this.head(uri);
        if (info) return { created: false, info };
        await new Promise((resolve) => setTimeout(resolve, 50 * (attempt + 1)));
      }
      throw new StoreError(StoreErrorCode.Unavailable, uri, `a concurrent conditional write neither finished nor let this one through; retry`, { cause: err });
    }
  }

  /**
   * Single PutObject up to the multipart threshold, multipart above it and for streams. With
   * `ifAbsent`, `If-None-Match: *` goes on PutObject or, for multipart, on CompleteMultipartUpload
   * (lib-storage spreads the params into it); the latter aborts the upload when refused.
   */
  private async upload(uri: string, body: Buffer | Readable, options: PutOptions | undefined, ifAbsent: boolean): Promise<{ etag?: string }> {
    const loc = this.objectLocation(uri);
    const params: PutObjectCommandInput = {
      ...loc,
      Body: body,
      ...(options?.contentType !== undefined && { ContentType: options.contentType }),
      ...(ifAbsent && { IfNoneMatch: '*' }),
    };
    const onProgress = options?.onProgress;
    try {
      if (Buffer.isBuffer(body) && body.length <= this.options.multipartThresholdBytes) {
        onProgress?.({ loadedBytes: 0, totalBytes: body.length });
        const out = await this.client.send(new PutObjectCommand(params));
        onProgress?.({ loadedBytes: body.length, totalBytes: body.length });
        return out.ETag !== undefined ? { etag: out.ETag } : {};
      }
      const partSize = Buffer.isBuffer(body) ? Math.max(this.options.partSizeBytes, Math.ceil(body.length / MAX_PARTS)) : this.options.partSizeBytes;
      const upload = new Upload({ client: this.client, params, partSize, queueSize: this.options.queueSize });
      if (onProgress) {
        upload.on('httpUploadProgress', (p) => {
          const progress: TransferProgress = { loadedBytes: p.loaded ?? 0 };
          if (p.total !== undefined) progress.totalBytes = p.total;
          onProgress(progress);
        });
      }
      const out = await upload.done();
      return out.ETag !== undefined ? { etag: out.ETag } : {};
    } catch (err) {
      if (ifAbsent && isPreconditionFailure(err)) throw err;
      throw this.toStoreError(uri, err);
    }
  }
}
