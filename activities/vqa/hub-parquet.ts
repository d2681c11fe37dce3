/**
 * Benchmarks as Hugging Face hub snapshots (what `huggingface-cli download --repo-type dataset`
 * writes): finding a split's parquet shards under a root, and reading their rows one row group at
 * a time through the object store with hyparquet, so a 1 GB shard is never held whole. Knows
 * nothing of any benchmark: loaders.ts maps the rows (docs/vqa.md, "Laying out a benchmark's data").
 */
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { parquetMetadataAsync, parquetReadObjects, parquetSchema, type AsyncBuffer, type Compressors, type FileMetaData, type ParquetRow } from 'hyparquet';
import { joinUri } from '../../data-schemas/uri';
import { StoreError } from '../store/errors';
import type { ObjectInfo, ObjectStore } from '../store/types';
import { BenchmarkLayoutError } from './layout-error';

/**
 * Where a split lives in its repository, as the dataset card's `data_files` says: a single file
 * (`mmstar.parquet`) or the shards `<dir>/<split>-NNNNN-of-NNNNN[-<hash>].parquet`.
 */
export type HubFiles = { file: string } | { dir: string; split: string };

/** The paths a split may be at, for error messages (`data/validation-*.parquet`). */
export function hubFilesPattern(files: HubFiles): string {
  return 'file' in files ? files.file : `${files.dir}/${files.split}-*.parquet`;
}

const SHARD_NAME = /^(.+)-(\d{5})-of-(\d{5})(?:-[0-9a-f]+)?\.parquet$/;

/**
 * The parquet files of one split under `root`, in shard order; undefined when there are none. A
 * split with shards missing (`-00001-of-00003` alone) is refused, naming them: reading part of a
 * split would score part of a benchmark as if it were all of it.
 */
export async function findHubFiles(store: ObjectStore, root: string, files: HubFiles): Promise<ObjectInfo[] | undefined> {
  if ('file' in files) {
    const info = await store.head(joinUri(root, files.file));
    return info ? [info] : undefined;
  }
  const prefix = `${joinUri(root, files.dir)}/`;
  const shards: { info: ObjectInfo; index: number; count: number }[] = [];
  for await (const info of store.list(prefix)) {
    const name = decodeURIComponent(info.uri.slice(prefix.length));
    const m = SHARD_NAME.exec(name);
    if (m && m[1] === files.split) shards.push({ info, index: Number(m[2]), count: Number(m[3]) });
  }
  if (shards.length === 0) return undefined;
  shards.sort((a, b) => a.index - b.index);
  const counts = new Set(shards.map((s) => s.count));
  const count = Math.max(...counts);
  const have = new Set(shards.map((s) => s.index));
  const missing = Array.from({ length: count }, (_, i) => i).filter((i) => !have.has(i));
  if (counts.size > 1 || missing.length > 0 || shards.length !== count) {
    const names = missing.map((i) => `${files.split}-${String(i).padStart(5, '0')}-of-${String(count).padStart(5, '0')}.parquet`);
    throw new BenchmarkLayoutError(
      `${prefix}: the ${files.split} split is incomplete: ${names.length ? `missing ${names.join(', ')}` : `shards of different counts (${[...counts].join(', ')}) or duplicates`}; download the whole split again`,
    );
  }
  return shards.map((s) => s.info);
}

/** hyparquet decodes snappy itself; gzip and brotli come from Node's zlib. */
const COMPRESSORS: Compressors = {
  GZIP: (input) => new Uint8Array(gunzipSync(input)),
  BROTLI: (input) => new Uint8Array(brotliDecompressSync(input)),
};
const READABLE_CODECS = new Set(['UNCOMPRESSED', 'SNAPPY', ...Object.keys(COMPRESSORS)]);

/** The object as hyparquet reads files: byte ranges, each one ranged GET (or positional read). */
function storeBuffer(store: ObjectStore, info: ObjectInfo): AsyncBuffer {
  return {
    byteLength: info.bytes,
    async slice(start, end) {
      const bytes = await store.getRange(info.uri, start, end ?? info.bytes);
      return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
    },
  };
}

const messageOf = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/** An open parquet file: its top-level column names and its row groups, read on demand. */
export interface ParquetTable {
  uri: string;
  columns: string[];
  rows: number;
  /** Each row group's rows (the requested columns only), in order; binary columns as bytes. */
  rowGroups(columns: readonly string[]): AsyncGenerator<ParquetRow[]>;
}

/**
 * Opens a parquet object: reads its footer only. A file that is not parquet, or whose columns use a
 * compression this reader does not decode (zstd, lz4), is refused naming the file and the codec.
 */
export async function openParquet(store: ObjectStore, info: ObjectInfo): Promise<ParquetTable> {
  const file = storeBuffer(store, info);
  let metadata: FileMetaData;
  try {
    metadata = await parquetMetadataAsync(file);
  } catch (err) {
    // The store's own failures (a lost connection, a 503) keep their class and retry policy.
    if (err instanceof StoreError) throw err;
    throw new BenchmarkLayoutError(`${info.uri}: not a readable parquet file (${messageOf(err)})`, { cause: err });
  }
  for (const group of metadata.row_groups) {
    for (const chunk of group.columns) {
      const codec = chunk.meta_data?.codec;
      if (codec !== undefined && !READABLE_CODECS.has(codec)) {
        throw new BenchmarkLayoutError(
          `${info.uri}: column ${chunk.meta_data?.path_in_schema.join('.')} is compressed with ${codec}, which this reader does not decode (${[...READABLE_CODECS].join(', ')}); re-save the split with pyarrow's default (snappy)`,
        );
      }
    }
  }
  const columns = parquetSchema(metadata).children.map((c) => c.element.name);
  return {
    uri: info.uri,
    columns,
    rows: Number(metadata.num_rows),
    async *rowGroups(wanted) {
      let rowStart = 0;
      for (const [k, group] of metadata.row_groups.entries()) {
        const rowEnd = rowStart + Number(group.num_rows);
        let rows: ParquetRow[];
        try {
          // utf8: false keeps binary columns (image bytes) as bytes; string columns stay strings.
          rows = await parquetReadObjects({ file, metadata, columns: [...wanted], rowStart, rowEnd, utf8: false, compressors: COMPRESSORS });
        } catch (err) {
          if (err instanceof StoreError) throw err;
          throw new BenchmarkLayoutError(`${info.uri} row group ${k + 1}: not readable (${messageOf(err)})`, { cause: err });
        }
        yield rows;
        rowStart = rowEnd;
      }
    },
  };
}
