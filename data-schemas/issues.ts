import type { z } from 'zod';

/** One line per zod issue: `field.path: message` (`(root)` when the whole value is wrong). */
export function formatZodIssues(error: z.ZodError): string[] {
  return error.issues.map((issue) => `${issue.path.length > 0 ? issue.path.join('.') : '(root)'}: ${issue.message}`);
}
