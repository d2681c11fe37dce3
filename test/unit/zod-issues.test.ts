import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { describeZodIssues, formatIssuePath, formatZodIssues } from '../../data-schemas/issues';
import { REPO_ROOT } from '../../infra/config';

const Record = z.strictObject({ id: z.string().min(1), steps: z.array(z.strictObject({ action: z.array(z.number()).length(2), done: z.boolean() })) });
const bad = Record.safeParse({ id: '', steps: [{ action: [1, 2], done: true }, { action: [1], done: 'no' }], extra: 1 });

describe('one zod issue formatter (data-schemas/issues.ts)', () => {
  it('writes paths as code would: dots between fields, array indexes in brackets', () => {
    expect(formatIssuePath(['steps', 3, 'action', 0])).toBe('steps[3].action[0]');
    expect(formatIssuePath([2, 'x'])).toBe('[2].x');
    expect(formatIssuePath([])).toBe('');
  });

  it('names every bad field, not only the first', () => {
    expect(bad.success).toBe(false);
    const lines = formatZodIssues(bad.error!);
    expect(lines).toHaveLength(4);
    expect(lines.join('\n')).toMatch(/^id: .*\nsteps\[1\]\.action: .*\nsteps\[1\]\.done: .*\n\(root\): .*"extra"/);
    expect(describeZodIssues(bad.error!)).toBe(lines.join('; '));
  });

  it('names the whole value as the caller calls it, and counts what it does not list', () => {
    const whole = z.strictObject({ a: z.string() }).safeParse(3);
    expect(describeZodIssues(whole.error!, { root: '(answer)' })).toMatch(/^\(answer\): /);
    expect(describeZodIssues(bad.error!, { max: 2 })).toBe(`${formatZodIssues(bad.error!).slice(0, 2).join('; ')} (and 2 more)`);
  });

  it('is the only place zod issues are joined into a message', () => {
    // Sites that keep their own wording: one-value parses quote the message alone, the policy's
    // repair prompt quotes the offending value, and dataset validation and store reads keep issues as data.
    const ownWording = new Set([
      'data-schemas/issues.ts',
      'activities/robot/policy/parse.ts',
      'activities/data/issues.ts',
      'activities/data/dataset-writer.ts',
      'activities/store/index.ts',
      'cli/commands/relabel-show.ts',
    ]);
    const sources = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard', '--', '*.ts'], { cwd: REPO_ROOT, encoding: 'utf8' })
      .split('\0')
      .filter((p) => p !== '' && !p.startsWith('test/') && !ownWording.has(p));
    const handFormatted = sources.filter((p) => /\b(error|err)\.issues(\.(map|slice)\(|\[0\])/.test(readFileSync(join(REPO_ROOT, p), 'utf8')));
    expect(handFormatted).toEqual([]);
  });
});
