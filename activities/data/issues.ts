import { z } from 'zod';
import { formatIssuePath } from '../../data-schemas/issues';
import type { InvalidObjectError } from '../store';

/** One problem found in a dataset, located precisely enough to find it by hand. */
export interface ValidationIssue {
  /** Path of the file at fault, relative to the dataset root (e.g. `trajectories/x.json`). */
  file: string;
  /** The record inside the file: a trajectory id. */
  record?: string;
  /** Step index inside the trajectory, when the issue is about one step. */
  step?: number;
  /** Field path inside the record or step, e.g. `action` or `frames.image_0`. */
  field?: string;
  message: string;
}

/** One line: `trajectories/x.json: record x step 3 field action: expected 7 numbers, got 6`. */
export function formatIssue(issue: ValidationIssue): string {
  const where = [issue.file + ':'];
  if (issue.record !== undefined) where.push(`record ${issue.record}`);
  if (issue.step !== undefined) where.push(`step ${issue.step}`);
  if (issue.field !== undefined && issue.field !== '') where.push(`field ${issue.field}`);
  const head = where.join(' ');
  return where.length > 1 ? `${head}: ${issue.message}` : `${head} ${issue.message}`;
}

function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let v = input;
  for (const seg of path) {
    if (typeof v !== 'object' || v === null) return undefined;
    v = (v as Record<PropertyKey, unknown>)[seg];
  }
  return v;
}

/** State and action are fixed 7-tuples (data-schemas/d-rob.ts); their size errors read best as exact counts. */
const SEVEN_TUPLES = new Set(['state', 'action']);

/** zod's array-size messages do not say what was found; the record at hand does. */
function describe(issue: z.core.$ZodIssue, input: unknown): string {
  if ((issue.code === 'too_small' || issue.code === 'too_big') && issue.origin === 'array') {
    const value = valueAt(input, issue.path);
    if (Array.isArray(value)) {
      const noun = value.every((x) => typeof x === 'number') ? 'numbers' : 'items';
      const last = issue.path[issue.path.length - 1];
      if (typeof last === 'string' && SEVEN_TUPLES.has(last)) return `expected 7 ${noun}, got ${value.length}`;
      const bound = issue.code === 'too_small' ? `at least ${String(issue.minimum)}` : `at most ${String(issue.maximum)}`;
      return `expected ${bound} ${noun}, got ${value.length}`;
    }
  }
  return issue.message;
}

/**
 * Turns zod issues into located issues. For trajectory records a leading `steps[i]` becomes the
 * step, and the rest the field, so the message reads like the brief's one-line format.
 */
export function fromZodError(file: string, record: string | undefined, error: z.ZodError, input: unknown): ValidationIssue[] {
  return error.issues.map((issue) => {
    const path = issue.path;
    const out: ValidationIssue = { file, message: describe(issue, input) };
    if (record !== undefined) out.record = record;
    if (path[0] === 'steps' && typeof path[1] === 'number') {
      out.step = path[1];
      const rest = formatIssuePath(path.slice(2));
      if (rest) out.field = rest;
    } else if (path.length > 0) {
      out.field = formatIssuePath(path);
    }
    return out;
  });
}

/**
 * A stored file the store's JSON reader refused (`getJson` / `parseStoredJson`), as located issues:
 * each schema problem with its record, step and field; bytes that are not JSON as one issue.
 */
export function storedJsonIssues(err: InvalidObjectError, file: string, record?: string): ValidationIssue[] {
  if (err.cause instanceof z.ZodError) return fromZodError(file, record, err.cause, err.json);
  return [{ file, ...(record !== undefined && { record }), message: err.problem }];
}
