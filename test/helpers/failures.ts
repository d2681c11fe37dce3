import type { ApplicationFailure } from '@temporalio/common';
import { expect } from 'vitest';
import { rootFailure } from '../../workflows/failure-cause';

/**
 * The ApplicationFailure a call rejected with: the rejection itself, or the innermost one of its
 * cause chain (a workflow's failure through its activities and child workflows). Fails the test
 * when the call resolves or the chain holds no ApplicationFailure.
 */
export async function applicationFailureOf(call: Promise<unknown>): Promise<ApplicationFailure> {
  const err = await call.then(
    (value) => new Error(`expected a failure, got ${JSON.stringify(value)}`),
    (e: unknown) => e,
  );
  const failure = rootFailure(err);
  expect(failure, `no ApplicationFailure in: ${String(err)}`).toBeDefined();
  return failure!;
}

/** The error a call rejected with, checked to be a `type`. Fails the test when the call resolves. */
export async function rejectionOf<E extends Error>(call: Promise<unknown>, type: abstract new (...args: never[]) => E): Promise<E> {
  const err = await call.then(
    (value) => new Error(`expected a ${type.name}, got ${JSON.stringify(value)}`),
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(type);
  return err as E;
}
