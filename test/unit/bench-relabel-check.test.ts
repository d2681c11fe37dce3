import { describe, expect, it } from 'vitest';
import { accountWork, workIsExact } from '../../bench/relabel-check';

describe('bench work accounting (bench/relabel-check.ts)', () => {
  it('accepts one record and one successful call per trajectory', () => {
    const account = accountWork(['a', 'b', 'c'], ['c', 'a', 'b'], 3);
    expect(account).toEqual({ lost: [], duplicateRecords: 0, unexpected: [], extraCalls: 0 });
    expect(workIsExact(account)).toBe(true);
  });

  it('names lost trajectories, duplicate and unexpected records, and extra or missing calls', () => {
    const account = accountWork(['a', 'b', 'c'], ['a', 'a', 'x'], 5);
    expect(account).toEqual({ lost: ['b', 'c'], duplicateRecords: 1, unexpected: ['x'], extraCalls: 2 });
    expect(workIsExact(account)).toBe(false);
    expect(workIsExact(accountWork(['a'], ['a'], 0))).toBe(false);
  });
});
