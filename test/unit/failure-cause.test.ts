import { WorkflowFailedError } from '@temporalio/client';
import { ActivityFailure, ApplicationFailure, ChildWorkflowFailure, RetryState, TimeoutFailure, TimeoutType } from '@temporalio/common';
import { describe, expect, it } from 'vitest';
import { causeChain, rootCause, rootCauseType, rootFailure } from '../../workflows/failure-cause';

const app = ApplicationFailure.nonRetryable('cannot simulate "fly to the moon"', 'Station:bad_request');
const activity = (cause: Error) => new ActivityFailure('Activity task failed', 'stationReset', '1', RetryState.NON_RETRYABLE_FAILURE, 'worker', cause);
const child = (cause: Error) => new ChildWorkflowFailure('default', { workflowId: 'c', runId: 'r' }, 'robotEpisode', RetryState.NON_RETRYABLE_FAILURE, cause);

/** The one way workflows (evalCampaign, robotEpisode, relabelDataset) and the CLI name what went wrong. */
describe('rootCause', () => {
  it('names the innermost ApplicationFailure however deep the wrappers go', () => {
    // A campaign's child episode failing in an activity: what evalCampaign records.
    expect(rootCause(child(activity(app)))).toBe('Station:bad_request: cannot simulate "fly to the moon"');
    // The same seen by the CLI, one wrapper more: the old two-level unwrap said "Activity task failed" here.
    expect(rootCause(new WorkflowFailedError('Workflow execution failed', child(activity(app)), RetryState.NON_RETRYABLE_FAILURE))).toBe(
      'Station:bad_request: cannot simulate "fly to the moon"',
    );
    expect(rootFailure(activity(app))?.type).toBe('Station:bad_request');
    expect(rootCause(ApplicationFailure.create({ message: 'no type' }))).toBe('no type');
  });

  it('falls back to the innermost message when no ApplicationFailure is in the chain', () => {
    const timeout = new TimeoutFailure('activity StartToClose timeout', undefined, TimeoutType.START_TO_CLOSE);
    expect(rootFailure(activity(timeout))).toBeUndefined();
    expect(rootCause(activity(timeout))).toBe('activity StartToClose timeout');
    expect(rootCause('not an error')).toBe('not an error');
  });

  it('stops at a cause cycle', () => {
    const a = new Error('a');
    const b = new Error('b', { cause: a });
    a.cause = b;
    expect(causeChain(a)).toEqual([a, b]);
  });
});

describe('rootCauseType', () => {
  it('is the innermost failure type, else the innermost error class: the key for "the same cause again"', () => {
    expect(rootCauseType(child(activity(app)))).toBe('Station:bad_request');
    const timeout = new TimeoutFailure('activity StartToClose timeout', undefined, TimeoutType.START_TO_CLOSE);
    expect(rootCauseType(child(activity(timeout)))).toBe('TimeoutFailure');
    expect(rootCauseType('not an error')).toBe('unknown');
  });
});
