import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32c } from '@node-rs/crc32';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataErrorCode, TfRecordError } from '../../activities/data/errors';
import { maskedCrc32c, readTfRecords, type TfRecord } from '../../activities/data/tfrecord';
import { frameTfRecord, tfRecordFile } from '../fixtures/tfrecord-writer';
import { BRIDGE_SAMPLE } from '../../infra/config';

const BRIDGE = BRIDGE_SAMPLE;

async function collect(source: string | Uint8Array): Promise<TfRecord[]> {
  const out: TfRecord[] = [];
  for await (const r of readTfRecords(source)) out.push(r);
  return out;
}

/** Reads until the reader throws; returns what came before and the error. */
async function collectUntilError(source: string | Uint8Array): Promise<{ records: TfRecord[]; error: TfRecordError }> {
  const records: TfRecord[] = [];
  try {
    for await (const r of readTfRecords(source)) records.push(r);
  } catch (err) {
    if (err instanceof TfRecordError) return { records, error: err };
    throw err;
  }
  throw new Error('expected a TfRecordError');
}

const flip = (b: Buffer, at: number, mask: number): void => {
  b.writeUInt8(b.readUInt8(at) ^ mask, at);
};

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tfrecord-test-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('maskedCrc32c', () => {
  it('builds on standard CRC-32C (check value of "123456789")', () => {
    expect(crc32c('123456789')).toBe(0xe3069283);
  });

  it('rotates right by 15 and adds 0xa282ead8 modulo 2^32', () => {
    const bytes = new TextEncoder().encode('123456789');
    // 0xe3069283 rotated right by 15 is 0x2507c60d; plus the delta wraps past 2^32.
    expect(maskedCrc32c(bytes)).toBe((0x2507c60d + 0xa282ead8) % 2 ** 32);
  });
});

describe('readTfRecords on the real Bridge sample', () => {
  it('reads 25 records whose CRCs all check, ending exactly at the end of the file', async () => {
    const records = await collect(BRIDGE);
    expect(records).toHaveLength(25);
    expect(records.map((r) => r.index)).toEqual([...Array(25).keys()]);
    expect(records[0]).toMatchObject({ offset: 0 });
    expect(records[0]?.data.length).toBe(144644);
    expect(records[1]?.offset).toBe(144660);
    const last = records[24] as TfRecord;
    expect(last.offset + 12 + last.data.length + 4).toBe((await stat(BRIDGE)).size);
  });

  it('gives the same records from a buffer as from the file', async () => {
    const fromFile = await collect(BRIDGE);
    const fromBuffer = await collect(await readFile(BRIDGE));
    expect(fromBuffer.map((r) => [r.index, r.offset, r.data.length])).toEqual(fromFile.map((r) => [r.index, r.offset, r.data.length]));
    expect(Buffer.compare(fromBuffer[13]?.data ?? Buffer.alloc(0), fromFile[13]?.data ?? Buffer.alloc(1))).toBe(0);
  });
});

describe('readTfRecords framing', () => {
  it('reads an empty file as no records', async () => {
    const path = join(dir, 'empty.tfrecord');
    await writeFile(path, Buffer.alloc(0));
    expect(await collect(path)).toEqual([]);
  });

  it('reads records across the read-ahead window: empty, tiny, larger than the window, many small', async () => {
    const sizes = [0, 1, 3 * 1024 * 1024 + 7, 100, 1024 * 1024 - 5, ...Array.from({ length: 300 }, (_, i) => 1000 + i)];
    const payloads = sizes.map((n, k) => Buffer.alloc(n, k % 251));
    const path = join(dir, 'mixed.tfrecord');
    await writeFile(path, tfRecordFile(payloads));
    const records = await collect(path);
    expect(records).toHaveLength(payloads.length);
    records.forEach((r, i) => expect(Buffer.compare(r.data, payloads[i] as Buffer)).toBe(0));
    // Records are still intact after later refills: slices do not share a reused buffer.
    expect(records[3]?.data.equals(payloads[3] as Buffer)).toBe(true);
  });

  const good = [Buffer.from('first record'), Buffer.from('second record, a bit longer'), Buffer.from('third')];
  const file = tfRecordFile(good);
  const second = frameTfRecord(good[0] as Buffer).length;

  it('reports a bad data CRC with file, record index and byte offset', async () => {
    const bad = Buffer.from(file);
    flip(bad, second + 12 + 3, 0xff);
    const path = join(dir, 'bad-data-crc.tfrecord');
    await writeFile(path, bad);
    const { records, error } = await collectUntilError(path);
    expect(records).toHaveLength(1);
    expect(error.code).toBe(DataErrorCode.TfRecordBadDataCrc);
    expect(error).toMatchObject({ file: path, recordIndex: 1, offset: second });
    expect(error.message).toBe(`${path}: record 1 at byte ${second}: ${error.message.split(': ').slice(2).join(': ')}`);
    expect(error.message).toMatch(/data CRC mismatch \(stored 0x[0-9a-f]{8}, computed 0x[0-9a-f]{8}\)/);
  });

  it('reports a bad length CRC', async () => {
    const bad = Buffer.from(file);
    flip(bad, second, 0x01);
    const { error } = await collectUntilError(bad);
    expect(error.code).toBe(DataErrorCode.TfRecordBadLengthCrc);
    expect(error.message).toMatch(/^<buffer>: record 1 at byte \d+: length CRC mismatch/);
  });

  it('reports a corrupted length CRC field itself', async () => {
    const bad = Buffer.from(file);
    flip(bad, second + 9, 0x10);
    const { error } = await collectUntilError(bad);
    expect(error.code).toBe(DataErrorCode.TfRecordBadLengthCrc);
  });

  it('reports a header cut short', async () => {
    const { records, error } = await collectUntilError(file.subarray(0, second + 5));
    expect(records).toHaveLength(1);
    expect(error).toMatchObject({ code: DataErrorCode.TfRecordTruncatedHeader, recordIndex: 1, offset: second });
    expect(error.message).toContain('truncated header: 5 of 12 bytes');
  });

  it('reports data cut short, and a missing data CRC', async () => {
    const cutData = await collectUntilError(file.subarray(0, second + 12 + 4));
    expect(cutData.error).toMatchObject({ code: DataErrorCode.TfRecordTruncatedData, recordIndex: 1 });
    expect(cutData.error.message).toContain(`record declares ${good[1]?.length} data bytes + 4 CRC bytes but only 4 bytes remain`);
    const cutCrc = await collectUntilError(file.subarray(0, file.length - 2));
    expect(cutCrc.error).toMatchObject({ code: DataErrorCode.TfRecordTruncatedData, recordIndex: 2 });
  });

  it('names the file in errors when reading a path, and reports a missing file as such', async () => {
    const path = join(dir, 'cut.tfrecord');
    await writeFile(path, file.subarray(0, 7));
    const { error } = await collectUntilError(path);
    expect(error.message).toBe(`${path}: record 0 at byte 0: truncated header: 7 of 12 bytes before end of file`);
    await expect(collect(join(dir, 'nope.tfrecord'))).rejects.toThrow(/ENOENT/);
  });
});
