import type { Candidate, GenerateContentResponse } from '@google/genai';

/**
 * A JSON answer without the Markdown fence around it: JSON mode should never fence its answer, but
 * some model versions still do; unwrapping costs nothing and saves a re-prompt.
 */
export function unfenceJson(text: string): string {
  return text
    .trim()
    .replace(/^```(?:json)?\s*\n?/i, '')
    .replace(/\n?```$/, '');
}

/**
 * The answer text of a candidate, as every Gemini caller reads it: thought summaries (`thought: true`)
 * are not part of the answer, and a candidate without `parts` (an empty answer, or a thinking model
 * cut off while thinking) has the empty text.
 */
export function candidateText(candidate: Candidate | undefined): string {
  return (candidate?.content?.parts ?? [])
    .filter((p) => !p.thought && typeof p.text === 'string')
    .map((p) => p.text)
    .join('');
}

/** The tokens a call is billed for; thinking tokens are billed as output. */
export interface BilledTokens {
  inputTokens: number;
  outputTokens: number;
}

/** The billed tokens of a response, or undefined when it carries no usage metadata. */
export function billedTokens(response: GenerateContentResponse): BilledTokens | undefined {
  const meta = response.usageMetadata;
  if (!meta) return undefined;
  return { inputTokens: meta.promptTokenCount ?? 0, outputTokens: (meta.candidatesTokenCount ?? 0) + (meta.thoughtsTokenCount ?? 0) };
}
