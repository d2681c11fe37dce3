import protobuf from 'protobufjs';
import { TfExampleError } from './errors';

export { TfExampleError } from './errors';

/**
 * tf.train.Example, as in tensorflow/core/example/{example,feature}.proto. Numeric lists are
 * declared packed (TensorFlow writes them packed); protobufjs reads both packed and unpacked.
 */
export const TF_EXAMPLE_PROTO = `
syntax = "proto3";
package tensorflow;
message BytesList { repeated bytes value = 1; }
message FloatList { repeated float value = 1 [packed = true]; }
message Int64List { repeated int64 value = 1 [packed = true]; }
message Feature {
  oneof kind {
    BytesList bytes_list = 1;
    FloatList float_list = 2;
    Int64List int64_list = 3;
  }
}
message Features { map<string, Feature> feature = 1; }
message Example { Features features = 1; }
`;

/** The protobufjs type of tf.train.Example, e.g. to encode test records. */
export const ExampleType = protobuf.parse(TF_EXAMPLE_PROTO, { keepCase: true }).root.lookupType('tensorflow.Example');

export type FeatureKind = 'bytes_list' | 'float_list' | 'int64_list';

/** One decoded feature. `none` is a Feature with no list set, which TensorFlow reads as empty. */
export type Feature =
  | { kind: 'bytes_list'; values: Uint8Array[] }
  | { kind: 'float_list'; values: number[] }
  | { kind: 'int64_list'; values: bigint[] }
  | { kind: 'none' };

interface ListValues {
  bytes_list: Uint8Array[];
  float_list: number[];
  int64_list: bigint[];
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function listValues(v: unknown): unknown[] {
  if (!isRecord(v)) return [];
  return Array.isArray(v.value) ? (v.value as unknown[]) : [];
}

function toFeature(raw: unknown): Feature {
  if (!isRecord(raw)) return { kind: 'none' };
  switch (raw.kind) {
    case 'bytes_list':
      return { kind: 'bytes_list', values: listValues(raw.bytes_list).filter((b): b is Uint8Array => b instanceof Uint8Array) };
    case 'float_list':
      return { kind: 'float_list', values: listValues(raw.float_list).map(Number) };
    case 'int64_list':
      // Converted through strings: protobufjs hands out Long objects, and int64 may exceed 2^53.
      return { kind: 'int64_list', values: listValues(raw.int64_list).map((s) => BigInt(String(s))) };
    default:
      return { kind: 'none' };
  }
}

/** A decoded tf.train.Example with typed accessors whose errors name the example and the feature. */
export class TfExample {
  constructor(
    readonly features: ReadonlyMap<string, Feature>,
    /** Where the example came from (e.g. `file.tfrecord: record 3`); prefixes every error. */
    readonly where: string,
  ) {}

  /** @throws TfExampleError when the bytes are not a tf.train.Example. */
  static decode(bytes: Uint8Array, where = '<example>'): TfExample {
    let obj: Record<string, unknown>;
    try {
      obj = ExampleType.toObject(ExampleType.decode(bytes), { longs: String, oneofs: true });
    } catch (err) {
      throw new TfExampleError(where, undefined, `not a tf.train.Example: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    const map = new Map<string, Feature>();
    const featureMap = isRecord(obj.features) && isRecord(obj.features.feature) ? obj.features.feature : {};
    for (const [name, raw] of Object.entries(featureMap)) map.set(name, toFeature(raw));
    return new TfExample(map, where);
  }

  names(): string[] {
    return [...this.features.keys()].sort();
  }

  has(name: string): boolean {
    return this.features.has(name);
  }

  /** @throws TfExampleError when the feature is missing. */
  get(name: string): Feature {
    const f = this.features.get(name);
    if (!f) throw new TfExampleError(this.where, name, 'missing');
    return f;
  }

  private list<K extends FeatureKind>(name: string, kind: K): ListValues[K] {
    const f = this.get(name);
    if (f.kind === 'none') return [] as ListValues[K];
    if (f.kind !== kind) throw new TfExampleError(this.where, name, `expected ${kind}, got ${f.kind}`);
    return f.values as ListValues[K];
  }

  bytes(name: string): Uint8Array[] {
    return this.list(name, 'bytes_list');
  }

  floats(name: string): number[] {
    return this.list(name, 'float_list');
  }

  bigints(name: string): bigint[] {
    return this.list(name, 'int64_list');
  }

  /** int64 values as numbers. @throws TfExampleError when one is outside the safe-integer range. */
  ints(name: string): number[] {
    return this.bigints(name).map((v, i) => {
      if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) {
        throw new TfExampleError(this.where, name, `value ${i} (${v}) does not fit a JavaScript number`);
      }
      return Number(v);
    });
  }

  /** TFDS stores booleans as int64 0/1. @throws TfExampleError on any other value. */
  bools(name: string): boolean[] {
    return this.bigints(name).map((v, i) => {
      if (v !== 0n && v !== 1n) throw new TfExampleError(this.where, name, `value ${i} is ${v}, expected 0 or 1`);
      return v === 1n;
    });
  }

  /** bytes_list values as UTF-8 text. @throws TfExampleError on invalid UTF-8. */
  strings(name: string): string[] {
    return this.bytes(name).map((b, i) => {
      try {
        return utf8.decode(b);
      } catch {
        throw new TfExampleError(this.where, name, `value ${i} is not valid UTF-8`);
      }
    });
  }
}

/** Decodes a serialized tf.train.Example. @throws TfExampleError */
export function decodeExample(bytes: Uint8Array, where?: string): TfExample {
  return TfExample.decode(bytes, where);
}

/** Serializes features as a tf.train.Example (tests, fixtures, and any future exporter). */
export function encodeExample(features: Iterable<[string, Feature]>): Uint8Array {
  const feature: Record<string, unknown> = {};
  for (const [name, f] of features) {
    if (f.kind === 'none') feature[name] = {};
    else if (f.kind === 'int64_list') feature[name] = { int64_list: { value: f.values.map(String) } };
    else feature[name] = { [f.kind]: { value: f.values } };
  }
  return ExampleType.encode(ExampleType.fromObject({ features: { feature } })).finish();
}
