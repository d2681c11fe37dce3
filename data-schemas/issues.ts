import type { z } from 'zod';

/** `steps[3].action`: fields joined by dots, array indexes in brackets; '' for the whole value. */
export function formatIssuePath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const key of path) out += typeof key === 'number' ? `[${key}]` : `${out === '' ? '' : '.'}${String(key)}`;
  return out;
}

/** One line per zod issue: `field.path: message` (`root`, `(root)` by default, when the whole value is wrong). */
export function formatZodIssues(error: z.ZodError, root = '(root)'): string[] {
  return error.issues.map((issue) => `${formatIssuePath(issue.path) || root}: ${issue.message}`);
}

/**
 * Every bad field of `error` on one line, `; `-separated, so one message names them all. Past
 * `max` issues (answers quoted back to a model, error messages) the rest are counted, not listed.
 */
export function describeZodIssues(error: z.ZodError, options: { root?: string; max?: number } = {}): string {
  const lines = formatZodIssues(error, options.root);
  const max = options.max ?? lines.length;
  const more = lines.length > max ? ` (and ${lines.length - max} more)` : '';
  return `${lines.slice(0, max).join('; ')}${more}`;
}
