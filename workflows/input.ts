import { ApplicationFailure } from '@temporalio/workflow';
import type { z } from 'zod';
import { INVALID_WORKFLOW_INPUT } from '../data-schemas/failures';
import { formatZodIssues } from '../data-schemas/issues';

export { INVALID_WORKFLOW_INPUT };

/**
 * Parses a workflow's raw input (the Web UI can send any JSON). Invalid input fails the workflow
 * at once, non-retryable, naming every bad field.
 */
export function parseWorkflowInput<S extends z.ZodType>(workflow: string, schema: S, raw: unknown): z.output<S> {
  const result = schema.safeParse(raw);
  if (result.success) return result.data;
  const fields = formatZodIssues(result.error);
  throw ApplicationFailure.create({
    type: INVALID_WORKFLOW_INPUT,
    nonRetryable: true,
    message: `${workflow}: invalid input: ${fields.join('; ')}`,
    details: [fields],
  });
}
