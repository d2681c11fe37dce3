import { ApplicationFailure } from '@temporalio/common';

import { VerifierFailure } from '../../../data-schemas/robot';

export { VerifierFailure };

/** What exactly was wrong; part of every message. */
export type VerifierErrorKind =
  | 'bad_request'
  | 'not_json'
  | 'schema_violation'
  | 'empty'
  | 'max_tokens'
  | 'no_candidate'
  | 'stopped_early'
  | 'safety_block'
  | 'prompt_blocked';

const FAILURE_OF_KIND: Readonly<Record<VerifierErrorKind, VerifierFailure>> = {
  bad_request: VerifierFailure.BadRequest,
  not_json: VerifierFailure.MalformedAnswer,
  schema_violation: VerifierFailure.MalformedAnswer,
  empty: VerifierFailure.MalformedAnswer,
  max_tokens: VerifierFailure.MalformedAnswer,
  no_candidate: VerifierFailure.MalformedAnswer,
  stopped_early: VerifierFailure.MalformedAnswer,
  safety_block: VerifierFailure.AnswerBlocked,
  prompt_blocked: VerifierFailure.AnswerBlocked,
};

export const RETRYABLE_VERIFIER_FAILURES: ReadonlySet<VerifierFailure> = new Set([VerifierFailure.MalformedAnswer]);

/** Longest excerpt of a model answer quoted in a message. */
const SNIPPET_CHARS = 200;

export function snippetOf(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > SNIPPET_CHARS ? `${flat.slice(0, SNIPPET_CHARS)}...` : flat;
}

/**
 * A verifier failure as an ApplicationFailure an activity can throw as is: `type` is a
 * VerifierFailure, `nonRetryable` follows RETRYABLE_VERIFIER_FAILURES, and the message says what
 * was wrong and quotes the start of the model's answer, if there was one.
 */
export class VerifierError extends ApplicationFailure {
  readonly kind: VerifierErrorKind;
  /** The start of the model's answer text; undefined when there was none. */
  readonly snippet: string | undefined;

  constructor(kind: VerifierErrorKind, message: string, options: { raw?: string } = {}) {
    const type = FAILURE_OF_KIND[kind];
    const snippet = options.raw === undefined ? undefined : snippetOf(options.raw);
    super(`${message}${snippet !== undefined ? `; the answer began with: ${JSON.stringify(snippet)}` : ''}`, type, !RETRYABLE_VERIFIER_FAILURES.has(type));
    this.kind = kind;
    this.snippet = snippet;
  }

  get retryable(): boolean {
    return !this.nonRetryable;
  }
}
