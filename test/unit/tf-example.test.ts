import protobuf from 'protobufjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { TfExampleError } from '../../activities/data/errors';
import { decodeExample, encodeExample, TfExample } from '../../activities/data/tf-example';
import { readTfRecords } from '../../activities/data/tfrecord';
import { BRIDGE_SAMPLE } from '../../infra/config';

const BRIDGE = BRIDGE_SAMPLE;

/** Field number and wire type as one protobuf key. */
const key = (field: number, wire: number): number => (field << 3) | wire;

/**
 * Example { features { feature { key: name, value: Feature } } } with the Feature body given as
 * raw bytes, to produce encodings protobufjs itself would not write (unpacked lists).
 */
function exampleWithRawFeature(name: string, featureBody: Uint8Array): Uint8Array {
  const entry = protobuf.Writer.create().uint32(key(1, 2)).string(name).uint32(key(2, 2)).bytes(featureBody).finish();
  const features = protobuf.Writer.create().uint32(key(1, 2)).bytes(entry).finish();
  return protobuf.Writer.create().uint32(key(1, 2)).bytes(features).finish();
}

describe('decodeExample on a real Bridge episode', () => {
  let ex: TfExample;
  beforeAll(async () => {
    for await (const r of readTfRecords(BRIDGE)) {
      ex = decodeExample(r.data, `${BRIDGE}: record ${r.index}`);
      break;
    }
  });

  it('lists the RLDS feature names', () => {
    expect(ex.names()).toEqual([
      'episode_metadata/episode_id',
      'episode_metadata/file_path',
      'episode_metadata/has_image_0',
      'episode_metadata/has_image_1',
      'episode_metadata/has_image_2',
      'episode_metadata/has_image_3',
      'episode_metadata/has_language',
      'steps/action',
      'steps/discount',
      'steps/is_first',
      'steps/is_last',
      'steps/is_terminal',
      'steps/language_embedding',
      'steps/language_instruction',
      'steps/observation/image_0',
      'steps/observation/image_1',
      'steps/observation/image_2',
      'steps/observation/image_3',
      'steps/observation/state',
      'steps/reward',
    ]);
  });

  it('decodes packed floats, int64 booleans, bytes and text with their real values', () => {
    expect(ex.floats('steps/action')).toHaveLength(70);
    expect(ex.floats('steps/observation/state').slice(0, 3)).toEqual([
      expect.closeTo(0.2338147908, 9),
      expect.closeTo(0.1124429554, 9),
      expect.closeTo(0.175048545, 9),
    ]);
    expect(ex.floats('steps/language_embedding')).toHaveLength(5120);
    expect(ex.bools('steps/is_first')).toEqual([true, ...Array<boolean>(9).fill(false)]);
    expect(ex.ints('episode_metadata/episode_id')).toEqual([5]);
    expect(ex.strings('steps/language_instruction')[0]).toBe('put cup from counter or drying rack into sink');
    expect(ex.strings('episode_metadata/file_path')[0]).toMatch(/put_cup_from_counter_or_drying_rack_into_sink\/val\/out\.npy$/);
    const frames = ex.bytes('steps/observation/image_0');
    expect(frames).toHaveLength(10);
    expect([...(frames[0] ?? new Uint8Array()).subarray(0, 3)]).toEqual([0xff, 0xd8, 0xff]);
  });

  it('names the example and the feature in errors', () => {
    expect(() => ex.floats('steps/observation/image_9')).toThrow(`${BRIDGE}: record 0: feature "steps/observation/image_9": missing`);
    expect(() => ex.floats('steps/is_first')).toThrow(`${BRIDGE}: record 0: feature "steps/is_first": expected float_list, got int64_list`);
    expect(() => ex.bytes('steps/action')).toThrow('feature "steps/action": expected bytes_list, got float_list');
    expect(() => ex.ints('steps/language_instruction')).toThrow(TfExampleError);
  });
});

describe('decodeExample edge cases', () => {
  it('round-trips every kind through encodeExample, int64 beyond 2^53 included', () => {
    const bytes = encodeExample([
      ['b', { kind: 'bytes_list', values: [new Uint8Array([1, 2]), new Uint8Array([])] }],
      ['f', { kind: 'float_list', values: [1.5, -2, 0] }],
      ['i', { kind: 'int64_list', values: [0n, -7n, 2n ** 62n] }],
      ['n', { kind: 'none' }],
    ]);
    const ex = decodeExample(bytes, 'rt');
    expect(ex.bytes('b').map((b) => [...b])).toEqual([[1, 2], []]);
    expect(ex.floats('f')).toEqual([1.5, -2, 0]);
    expect(ex.bigints('i')).toEqual([0n, -7n, 2n ** 62n]);
    expect(() => ex.ints('i')).toThrow('rt: feature "i": value 2 (4611686018427387904) does not fit a JavaScript number');
    // A Feature with no list set reads as empty, whatever kind is asked for.
    expect(ex.floats('n')).toEqual([]);
    expect(ex.bytes('n')).toEqual([]);
  });

  it('reads unpacked float and int64 lists too (older writers)', () => {
    // FloatList { value: 0.5 } { value: -1 }, each a separate fixed32 field.
    const floats = protobuf.Writer.create().uint32(key(1, 5)).float(0.5).uint32(key(1, 5)).float(-1).finish();
    const floatFeature = protobuf.Writer.create().uint32(key(2, 2)).bytes(floats).finish();
    expect(decodeExample(exampleWithRawFeature('f', floatFeature)).floats('f')).toEqual([0.5, -1]);
    // Int64List { value: 3 } { value: 1 }, each a separate varint.
    const ints = protobuf.Writer.create().uint32(key(1, 0)).int64(3).uint32(key(1, 0)).int64(1).finish();
    const intFeature = protobuf.Writer.create().uint32(key(3, 2)).bytes(ints).finish();
    expect(decodeExample(exampleWithRawFeature('i', intFeature)).ints('i')).toEqual([3, 1]);
    expect(() => decodeExample(exampleWithRawFeature('i', intFeature), 'x').bools('i')).toThrow('x: feature "i": value 0 is 3, expected 0 or 1');
  });

  it('rejects bytes that are not a tf.train.Example, and invalid UTF-8 text', () => {
    expect(() => decodeExample(new Uint8Array([0x0a, 0x05, 0x01]), 'junk.tfrecord: record 4')).toThrow(/^junk\.tfrecord: record 4: not a tf\.train\.Example: /);
    const ex = decodeExample(encodeExample([['s', { kind: 'bytes_list', values: [new Uint8Array([0xc3, 0x28])] }]]), 'w');
    expect(() => ex.strings('s')).toThrow('w: feature "s": value 0 is not valid UTF-8');
  });
});
