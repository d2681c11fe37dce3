import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { DatasetNotFoundError } from '../../activities/data/errors';
import { classifyActivityError, UnmappedFailure } from '../../activities/failures';
import { StoreError, StoreErrorCode } from '../../activities/store';

const dir = mkdtempSync(join(tmpdir(), 'vla-classify-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The error `fn` throws: real errors from Node, JSON.parse and zod, not hand-made look-alikes. */
function thrownBy(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected a throw');
}

function classifiedAs(err: unknown): ApplicationFailure {
  const out = classifyActivityError(err);
  expect(out).toBeInstanceOf(ApplicationFailure);
  return out as ApplicationFailure;
}

describe('classifyActivityError', () => {
  it('a bare SyntaxError from JSON.parse never reaches Temporal bare: non-retryable UNPARSEABLE', () => {
    const failure = classifiedAs(thrownBy(() => JSON.parse('root:x:0:0:root:/root:/bin/bash')));
    expect(failure.type).toBe(UnmappedFailure.Unparseable);
    expect(failure.nonRetryable).toBe(true);
    expect(failure.message).toMatch(/not valid JSON|Unexpected token/);
  });

  it('a ZodError is non-retryable INVALID_DATA naming the fields', () => {
    const failure = classifiedAs(thrownBy(() => z.object({ rank: z.int().positive() }).parse({ rank: 0 })));
    expect(failure.type).toBe(UnmappedFailure.InvalidData);
    expect(failure.nonRetryable).toBe(true);
    expect(failure.message).toContain('rank:');
  });

  it('filesystem errors that a retry cannot heal are non-retryable, naming the path', () => {
    const file = join(dir, 'a-file');
    writeFileSync(file, 'x');
    const isDir = classifiedAs(thrownBy(() => readFileSync(dir)));
    expect(isDir).toMatchObject({ type: UnmappedFailure.PathConflict, nonRetryable: true });
    const exists = classifiedAs(thrownBy(() => mkdirSync(file)));
    expect(exists).toMatchObject({ type: UnmappedFailure.PathConflict, nonRetryable: true });
    expect(exists.message).toContain(file);
    const notDir = classifiedAs(thrownBy(() => writeFileSync(join(file, 'below'), 'x')));
    expect(notDir.type).toBe(UnmappedFailure.PathConflict);
    const loop = join(dir, 'loop');
    symlinkSync(loop, loop);
    // ELOOP is not in the table: unknown errors stay retryable (rethrown as they are).
    const eloop = thrownBy(() => readFileSync(loop));
    expect(classifyActivityError(eloop)).toBe(eloop);
  });

  it('leaves alone what may heal and what is already classified', () => {
    const missing = thrownBy(() => readFileSync(join(dir, 'no-such-file')));
    expect(classifyActivityError(missing)).toBe(missing);
    const plain = new Error('socket hang up');
    expect(classifyActivityError(plain)).toBe(plain);
    const app = ApplicationFailure.retryable('try again', 'X');
    expect(classifyActivityError(app)).toBe(app);
    const cancelled = new CancelledFailure('cancelled');
    expect(classifyActivityError(cancelled)).toBe(cancelled);
  });

  it('store and data errors keep their code and retryability; the new store codes are non-retryable', () => {
    expect(classifiedAs(new StoreError(StoreErrorCode.Unavailable, 's3://b/k', 'down')).nonRetryable).toBe(false);
    expect(classifiedAs(new StoreError(StoreErrorCode.PathConflict, 'file:///d', 'dir')).nonRetryable).toBe(true);
    expect(classifiedAs(new StoreError(StoreErrorCode.Full, 'file:///d', 'full')).nonRetryable).toBe(true);
    expect(classifiedAs(new DatasetNotFoundError('file:///ds'))).toMatchObject({ type: 'DATASET_NOT_FOUND', nonRetryable: true });
  });
});
