import { open, type FileHandle } from 'node:fs/promises';
import { crc32c } from '@node-rs/crc32';
import { DataErrorCode, TfRecordError } from './errors';

export { TfRecordError } from './errors';

/**
 * TFRecord framing, as TensorFlow writes it (tensorflow/core/lib/io/record_writer.cc):
 *
 *   uint64 length (little-endian) | uint32 masked_crc32c(length bytes) | data | uint32 masked_crc32c(data)
 */
const HEADER_BYTES = 12;
const FOOTER_BYTES = 4;
const MASK_DELTA = 0xa282ead8;
/** Read-ahead window for files: one syscall covers many small records. */
const CHUNK_BYTES = 1 << 20;

/** One record: its position in the file and its payload (usually a serialized tf.train.Example). */
export interface TfRecord {
  /** Zero-based record index in the file. */
  index: number;
  /** Byte offset of the record's header. */
  offset: number;
  /** The payload. May share memory with neighbouring records: treat it as read-only. */
  data: Buffer;
}

export interface ReadTfRecordsOptions {
  /**
   * Name used in errors when the source is a buffer.
   * @default '<buffer>'
   */
  label?: string;
}

/**
 * TensorFlow masks its CRCs because a CRC computed over data that itself embeds CRCs is weak;
 * the rotation plus constant breaks that.
 */
export function maskedCrc32c(bytes: Uint8Array): number {
  const crc = crc32c(bytes);
  return ((((crc >>> 15) | (crc << 17)) >>> 0) + MASK_DELTA) >>> 0;
}

/** Random-access byte source: a file read positionally, or an in-memory buffer. */
interface ByteSource {
  readonly size: number;
  /** Up to `n` bytes from `offset`; fewer only at the end of the source. */
  read(offset: number, n: number): Promise<Buffer>;
  close(): Promise<void>;
}

function bufferSource(buf: Uint8Array): ByteSource {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  return {
    size: b.length,
    read: (offset, n) => Promise.resolve(b.subarray(offset, Math.min(offset + n, b.length))),
    close: () => Promise.resolve(),
  };
}

class FileSource implements ByteSource {
  private chunk = Buffer.alloc(0);
  private chunkStart = 0;

  constructor(
    private readonly fh: FileHandle,
    readonly size: number,
  ) {}

  async read(offset: number, n: number): Promise<Buffer> {
    const want = Math.min(n, this.size - offset);
    if (want <= 0) return Buffer.alloc(0);
    const rel = offset - this.chunkStart;
    if (rel >= 0 && rel + want <= this.chunk.length) return this.chunk.subarray(rel, rel + want);
    // A fresh buffer per refill, so slices handed out earlier stay valid.
    const len = Math.max(want, Math.min(CHUNK_BYTES, this.size - offset));
    const buf = Buffer.allocUnsafe(len);
    let filled = 0;
    while (filled < len) {
      const { bytesRead } = await this.fh.read(buf, filled, len - filled, offset + filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    this.chunk = buf.subarray(0, filled);
    this.chunkStart = offset;
    return this.chunk.subarray(0, Math.min(want, filled));
  }

  close(): Promise<void> {
    return this.fh.close();
  }
}

async function openSource(source: string | Uint8Array): Promise<ByteSource> {
  if (typeof source !== 'string') return bufferSource(source);
  const fh = await open(source, 'r');
  try {
    const { size } = await fh.stat();
    return new FileSource(fh, size);
  } catch (err) {
    await fh.close();
    throw err;
  }
}

const hex = (n: number): string => `0x${n.toString(16).padStart(8, '0')}`;

/**
 * Streams the records of a TFRecord file (a path) or buffer, checking both CRCs of every record.
 * Stops cleanly at the end of the source; a source that ends inside a record is an error, so a
 * truncated download never passes as a shorter dataset.
 *
 * @throws TfRecordError on a CRC mismatch or a truncated header or payload.
 */
export async function* readTfRecords(source: string | Uint8Array, options: ReadTfRecordsOptions = {}): AsyncGenerator<TfRecord> {
  const file = typeof source === 'string' ? source : (options.label ?? '<buffer>');
  const src = await openSource(source);
  try {
    let offset = 0;
    for (let index = 0; offset < src.size; index++) {
      const fail = (code: DataErrorCode, detail: string): TfRecordError => new TfRecordError(code, file, index, offset, detail);
      const header = await src.read(offset, HEADER_BYTES);
      if (header.length < HEADER_BYTES) {
        throw fail(DataErrorCode.TfRecordTruncatedHeader, `truncated header: ${header.length} of ${HEADER_BYTES} bytes before end of file`);
      }
      const lengthBytes = header.subarray(0, 8);
      const storedLengthCrc = header.readUInt32LE(8);
      const lengthCrc = maskedCrc32c(lengthBytes);
      if (lengthCrc !== storedLengthCrc) {
        throw fail(DataErrorCode.TfRecordBadLengthCrc, `length CRC mismatch (stored ${hex(storedLengthCrc)}, computed ${hex(lengthCrc)})`);
      }
      const length = lengthBytes.readBigUInt64LE(0);
      const remaining = src.size - offset - HEADER_BYTES;
      if (length + BigInt(FOOTER_BYTES) > BigInt(remaining)) {
        throw fail(DataErrorCode.TfRecordTruncatedData, `truncated data: record declares ${length} data bytes + ${FOOTER_BYTES} CRC bytes but only ${remaining} bytes remain`);
      }
      const n = Number(length);
      const body = await src.read(offset + HEADER_BYTES, n + FOOTER_BYTES);
      const data = body.subarray(0, n);
      const storedDataCrc = body.readUInt32LE(n);
      const dataCrc = maskedCrc32c(data);
      if (dataCrc !== storedDataCrc) {
        throw fail(DataErrorCode.TfRecordBadDataCrc, `data CRC mismatch (stored ${hex(storedDataCrc)}, computed ${hex(dataCrc)})`);
      }
      yield { index, offset, data };
      offset += HEADER_BYTES + n + FOOTER_BYTES;
    }
  } finally {
    await src.close();
  }
}
