/**
 * The Gemini verifier (docs/method.md, "The verifier": Gemini 2.5 Pro in the paper): one generateContent
 * call per executed chunk with the BEFORE and AFTER frames inline, temperature 0, the answer
 * constrained to `{decision, reason}` by `responseJsonSchema` and parsed with zod.
 *
 * The client is the one every Gemini caller builds (activities/gemini/client.ts: explicit Gemini API
 * backend, per-request timeout, no SDK retries: Temporal's retry policy owns retries), and HTTP errors
 * keep the shared classification (`classifyGeminiError`: GeminiRateLimited / GeminiUnavailable / GeminiNetwork
 * retryable; GeminiAuth / GeminiBadRequest / GeminiUnknownModel / GeminiQuotaExhausted not).
 * Unusable answers are VerifierErrors (./errors); withheld ones are recognised by the one
 * `contentBlock` (activities/gemini/errors.ts).
 */
import { FinishReason, type GenerateContentConfig, type GenerateContentResponse } from '@google/genai';
import { ApplicationFailure } from '@temporalio/common';
import { createGeminiClient } from '../../gemini/client';
import { AUTH_ADVICE, classifyGeminiError, contentBlock, GeminiFailure } from '../../gemini/errors';
import { billedTokens, candidateText, unfenceJson } from '../../gemini/response';
import { VerifierError } from './errors';
import { buildVerifierPrompt, VERIFIER_ANSWER_JSON_SCHEMA, VERIFIER_PROMPT_VERSION, VERIFIER_SYSTEM_INSTRUCTION } from './prompt';
import { currentAndNext, VerifierVerdict, type Verifier, type VerifierAnswer, type VerifierFrame, type VerifierRequest } from './types';
import { describeZodIssues } from '../../../data-schemas/issues';

export interface GeminiVerifierOptions {
  /** Gemini API key, from the worker's environment only (docs/design.md, "Secrets stay out of histories"). */
  apiKey: string;
  /** e.g. `gemini-2.5-pro` (the paper's verifier). */
  model: string;
  /** Endpoint root without the API version. @default the SDK's (generativelanguage.googleapis.com) */
  baseUrl?: string;
  /** Per request; a request that takes longer fails as retryable GeminiNetwork. @default 60_000 */
  timeoutMs?: number;
  /** Answer budget; on 2.5 models it includes thinking tokens. @default 8192 */
  maxOutputTokens?: number;
  /** Thinking budget of 2.5 models (Pro cannot turn thinking off). @default the model's own */
  thinkingBudget?: number;
}


const isJpeg = (b: Uint8Array): boolean => b.length > 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff;

function checkFrame(name: string, frame: VerifierFrame): void {
  if (frame.mimeType !== 'image/jpeg' || !isJpeg(frame.image)) throw new VerifierError('bad_request', `Gemini verifier: the ${name} frame is not a JPEG (${frame.image.length} bytes, ${frame.mimeType})`);
  if (frame.state.length !== 7 || !frame.state.every(Number.isFinite)) {
    throw new VerifierError('bad_request', `Gemini verifier: the ${name} state must be 7 finite numbers [x, y, z, roll, pitch, yaw, gripper], got ${JSON.stringify(frame.state)}`);
  }
}

/**
 * Parses the model's text into a verdict; throws a VerifierError (not JSON, schema violation) that
 * quotes the start of the text.
 */
export function parseVerifierAnswer(text: string): VerifierVerdict {
  let json: unknown;
  try {
    json = JSON.parse(unfenceJson(text));
  } catch (err) {
    throw new VerifierError('not_json', `Gemini verifier: the answer is not valid JSON (${(err as Error).message})`, { raw: text });
  }
  const parsed = VerifierVerdict.safeParse(json);
  if (!parsed.success) {
    const issues = describeZodIssues(parsed.error, { root: '(answer)', max: 4 });
    throw new VerifierError('schema_violation', `Gemini verifier: the answer does not match {decision: "proceed"|"retry", reason: string}: ${issues}`, { raw: text });
  }
  return parsed.data;
}

/** The answer text of a response, or a VerifierError saying why there is none. */
function answerText(response: GenerateContentResponse, maxOutputTokens: number): string {
  const block = contentBlock(response);
  if (block) throw new VerifierError(block.where === 'prompt' ? 'prompt_blocked' : 'safety_block', `Gemini verifier: ${block.description}`);
  const candidate = response.candidates?.[0];
  if (!candidate) throw new VerifierError('no_candidate', 'Gemini verifier: the model returned no answer candidate');
  const finish = candidate.finishReason;
  const text = candidateText(candidate);
  const raw = text === '' ? {} : { raw: text };
  if (finish === FinishReason.MAX_TOKENS) {
    const thoughts = response.usageMetadata?.thoughtsTokenCount;
    const spent = text === '' && thoughts !== undefined ? `; ${thoughts} tokens were spent thinking and no answer was written` : '';
    throw new VerifierError('max_tokens', `Gemini verifier: the answer was cut off at the output limit (finishReason MAX_TOKENS, maxOutputTokens ${maxOutputTokens}, thinking included${spent})`, raw);
  }
  if (finish && finish !== FinishReason.STOP) throw new VerifierError('stopped_early', `Gemini verifier: the model stopped early (finishReason ${finish})`, raw);
  if (text.trim() === '') throw new VerifierError('empty', 'Gemini verifier: the answer was empty');
  return text;
}

export function createGeminiVerifier(options: GeminiVerifierOptions): Verifier {
  if (!options.apiKey) throw ApplicationFailure.create({ message: `Gemini verifier: no API key; ${AUTH_ADVICE}`, type: GeminiFailure.Auth, nonRetryable: true });
  if (!options.model) throw new VerifierError('bad_request', 'Gemini verifier: model must be a Gemini model name such as gemini-2.5-pro');
  const timeoutMs = options.timeoutMs ?? 60_000;
  const maxOutputTokens = options.maxOutputTokens ?? 8192;
  if (!(timeoutMs > 0)) throw new VerifierError('bad_request', `Gemini verifier: timeoutMs must be positive, got ${timeoutMs}`);
  if (!Number.isInteger(maxOutputTokens) || maxOutputTokens < 1) throw new VerifierError('bad_request', `Gemini verifier: maxOutputTokens must be a positive integer, got ${maxOutputTokens}`);

  const ai = createGeminiClient({ apiKey: options.apiKey, baseUrl: options.baseUrl, timeoutMs });
  const verifier = `gemini:${options.model}`;

  return {
    async verify(req: VerifierRequest, signal?: AbortSignal): Promise<VerifierAnswer> {
      try {
        currentAndNext(req);
      } catch (err) {
        throw new VerifierError('bad_request', `Gemini verifier: ${(err as Error).message}`);
      }
      checkFrame('before', req.before);
      checkFrame('after', req.after);
      const config: GenerateContentConfig = {
        systemInstruction: VERIFIER_SYSTEM_INSTRUCTION,
        responseMimeType: 'application/json',
        responseJsonSchema: VERIFIER_ANSWER_JSON_SCHEMA,
        temperature: 0,
        maxOutputTokens,
        // One activity attempt = one HTTP request.
        automaticContinuation: false,
        ...(options.thinkingBudget !== undefined && { thinkingConfig: { thinkingBudget: options.thinkingBudget } }),
        ...(signal !== undefined && { abortSignal: signal }),
      };
      const started = performance.now();
      let response: GenerateContentResponse;
      try {
        response = await ai.models.generateContent({ model: options.model, contents: [{ role: 'user', parts: buildVerifierPrompt(req) }], config });
      } catch (err) {
        // A cancelled activity rethrows its own cancellation, not a Gemini failure.
        if (signal?.aborted) throw signal.reason ?? err;
        throw classifyGeminiError(err, { model: options.model, secrets: [options.apiKey] });
      }
      const latencyMs = performance.now() - started;
      const raw = answerText(response, maxOutputTokens);
      const usage = billedTokens(response);
      return { verdict: parseVerifierAnswer(raw), verifier, promptVersion: VERIFIER_PROMPT_VERSION, raw, latencyMs, ...(usage && { usage }) };
    },
    close: () => Promise.resolve(),
  };
}
