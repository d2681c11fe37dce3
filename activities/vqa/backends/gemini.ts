import { FinishReason, type GenerateContentResponse, type Part } from '@google/genai';
import type { ApplicationFailure } from '@temporalio/common';
import type { VqaRequest } from '../../../data-schemas/vqa';
import { createGeminiClient } from '../../gemini/client';
import { AUTH_ADVICE, classifyGeminiError, contentBlock, GeminiFailure } from '../../gemini/errors';
import { billedTokens, candidateText } from '../../gemini/response';
import { BackendError, type BackendErrorCode } from './errors';
import type { GenerateResult, InferenceBackend } from './types';

export interface GeminiBackendOptions {
  apiKey: string;
  model: string;
  /** Endpoint root without the API version. @default the SDK's (generativelanguage.googleapis.com) */
  baseUrl?: string;
  /** Per request. @default 90_000 */
  timeoutMs?: number;
  /** Thinking tokens of thinking models, added to each request's answer budget. @default DEFAULT_THINKING_BUDGET */
  thinkingBudget?: number;
}

export const DEFAULT_THINKING_BUDGET = 1024;

/**
 * Thinking models (Gemini 2.5 and later) count thoughts in `maxOutputTokens`: a 128-token answer
 * budget could be spent thinking and come back empty. Their thinking gets its own budget, added to
 * the answer's; older models take neither.
 */
export const isThinkingModel = (model: string): boolean => /gemini-(2\.5|[3-9])/.test(model);

const CODE_OF_GEMINI_FAILURE: Readonly<Record<string, BackendErrorCode>> = {
  [GeminiFailure.Auth]: 'auth',
  [GeminiFailure.UnknownModel]: 'not_found',
  [GeminiFailure.BadRequest]: 'bad_request',
  [GeminiFailure.RateLimited]: 'rate_limited',
  [GeminiFailure.QuotaExhausted]: 'quota_exhausted',
  [GeminiFailure.Unavailable]: 'server',
  [GeminiFailure.Network]: 'unreachable',
};

/** The shared Gemini classification (activities/gemini/errors.ts), recast as a BackendError. */
export function toBackendError(failure: ApplicationFailure): BackendError {
  if (failure instanceof BackendError) return failure;
  const code = CODE_OF_GEMINI_FAILURE[failure.type ?? ''] ?? 'server';
  const delay: unknown = failure.nextRetryDelay;
  const retryAfterMs = typeof delay === 'number' ? delay : undefined;
  return new BackendError(code, failure.message, retryAfterMs !== undefined ? { retryAfterMs } : {});
}

/** Gemini's generateContent with the images inline; the SDK does not retry (no retryOptions). */
export function createGeminiBackend(options: GeminiBackendOptions): InferenceBackend {
  if (!options.apiKey) throw new BackendError('auth', `Gemini backend for model ${JSON.stringify(options.model)}: no API key; ${AUTH_ADVICE}`);
  const ai = createGeminiClient({ apiKey: options.apiKey, baseUrl: options.baseUrl, timeoutMs: options.timeoutMs ?? 90_000 });
  const context = { model: options.model, secrets: [options.apiKey] };
  const where = options.baseUrl ?? 'the Gemini API';
  const thinking = isThinkingModel(options.model) ? (options.thinkingBudget ?? DEFAULT_THINKING_BUDGET) : undefined;

  return {
    structuredOutput: true,

    async generate(request: VqaRequest, signal?: AbortSignal): Promise<GenerateResult> {
      const parts: Part[] = [
        ...request.images.map((image): Part => ({ inlineData: { mimeType: image.mimeType, data: Buffer.from(image.data.buffer, image.data.byteOffset, image.data.byteLength).toString('base64') } })),
        { text: request.prompt },
      ];
      const g = request.generation;
      let response: GenerateContentResponse;
      try {
        response = await ai.models.generateContent({
          model: options.model,
          contents: [{ role: 'user', parts }],
          config: {
            ...(thinking !== undefined ? { maxOutputTokens: g.maxNewTokens + thinking, thinkingConfig: { thinkingBudget: thinking } } : { maxOutputTokens: g.maxNewTokens }),
            temperature: g.temperature,
            ...(g.topP !== undefined && { topP: g.topP }),
            ...(request.jsonSchema !== undefined && { responseMimeType: 'application/json', responseJsonSchema: request.jsonSchema.schema }),
            automaticContinuation: false,
            ...(signal !== undefined && { abortSignal: signal }),
          },
        });
      } catch (err) {
        if (signal?.aborted) throw signal.reason ?? err;
        throw toBackendError(classifyGeminiError(err, context));
      }
      const what = `Gemini (${where}, model ${JSON.stringify(options.model)})`;
      // A withheld answer is withheld again on every retry: no error to retry, and no empty answer
      // to score as if the model had written it.
      const block = contentBlock(response);
      if (block) return { text: '', withheld: `${what}: ${block.description}`, ...usageOf(response) };
      const candidate = response.candidates?.[0];
      if (!candidate) throw new BackendError('malformed', `${what} returned no answer candidate`);
      const finish = candidate.finishReason;
      const text = candidateText(candidate);
      if (finish === FinishReason.MAX_TOKENS) return { text, truncated: true, ...usageOf(response) };
      if (finish && finish !== FinishReason.STOP) throw new BackendError('malformed', `${what} stopped early (finishReason ${finish}) without a usable answer`);
      return { text, ...usageOf(response) };
    },

    async check(): Promise<void> {
      try {
        await ai.models.get({ model: options.model });
      } catch (err) {
        const failure = toBackendError(classifyGeminiError(err, context));
        throw failure.code === 'not_found'
          ? new BackendError('not_found', `model ${JSON.stringify(options.model)} is not served at ${where}: ${failure.message}`)
          : failure;
      }
    },

    close(): Promise<void> {
      return Promise.resolve();
    },
  };
}

function usageOf(response: GenerateContentResponse): Pick<GenerateResult, 'usage'> {
  const usage = billedTokens(response);
  return usage ? { usage } : {};
}
