import { FinishReason, type GenerateContentConfig, type GenerateContentResponse } from '@google/genai';
import { ApplicationFailure } from '@temporalio/common';
import sharp from 'sharp';
import type { CleanedTrajectory, LabelOutcome, TokenUsage } from '../../../data-schemas/relabel';
import { createGeminiClient } from '../../gemini/client';
import { classifyGeminiError, contentBlock, GeminiFailure } from '../../gemini/errors';
import { priceFor, usageCost, type GeminiPrice } from '../../gemini/pricing';
import { billedTokens, candidateText } from '../../gemini/response';
import { buildGeminiPrompt, keyFrameSteps, MAX_KEY_FRAMES } from './prompt';
import { GEMINI_ANSWER_JSON_SCHEMA, parseGeminiAnswer } from './response';

export interface GeminiLabelerOptions {
  /** Gemini API key, from the worker's environment only (docs/design.md, "Secrets stay out of histories"). */
  apiKey: string;
  /** Gemini model name, e.g. `gemini-2.5-flash`. */
  model: string;
  /**
   * Endpoint root without the API version; the SDK appends `/v1beta/models/{model}:generateContent`.
   * @default 'https://generativelanguage.googleapis.com/'
   */
  baseUrl?: string;
  /** Per request; a request that takes longer fails as retryable `GeminiNetwork`. @default 90_000 */
  timeoutMs?: number;
  /** Low, because labels should be reproducible rather than creative. @default 0.2 */
  temperature?: number;
  /** Answer budget; on 2.5 models it includes thinking tokens. @default 8192 */
  maxOutputTokens?: number;
  /** Thinking budget of 2.5 models (0 turns thinking off except on Pro). @default the model's own */
  thinkingBudget?: number;
  /** Prices for cost accounting. @default GEMINI_PRICES of the model (flash prices when unknown) */
  pricing?: GeminiPrice;
  /** Longest side, in pixels, of the key frames sent to the model. @default 224 */
  keyFrameSize?: number;
  /** JPEG quality of the sent key frames. @default 80 */
  keyFrameQuality?: number;
}

export interface LabelInput {
  instruction: string;
  cleaned: CleanedTrajectory;
  /** Main-camera frames at a few steps; more than MAX_KEY_FRAMES are thinned evenly. */
  keyFrames: { step: number; jpeg: Uint8Array }[];
  /** Problems of earlier answers for this trajectory, sent back to the model. */
  feedback: string[];
}

export interface GeminiLabeler {
  readonly model: string;
  /**
   * One generateContent call. Answers that cannot be used (safety block, truncation, invalid JSON
   * or segmentation) come back as `ok: false` outcomes, which are data for a re-prompt; HTTP and
   * network errors are thrown as ApplicationFailures typed by `GeminiFailure`.
   */
  label(input: LabelInput, options?: { abortSignal?: AbortSignal }): Promise<LabelOutcome>;
}

/** Thrown (non-retryable) when a key frame is not a decodable image: retrying reads the same bytes. */
export const INVALID_KEY_FRAME = 'InvalidKeyFrame';

type ResolvedOptions = Required<Omit<GeminiLabelerOptions, 'baseUrl' | 'thinkingBudget'>> & Pick<GeminiLabelerOptions, 'baseUrl' | 'thinkingBudget'>;

function badOption(message: string): ApplicationFailure {
  return ApplicationFailure.create({ message: `Gemini labeler: ${message}`, type: GeminiFailure.BadRequest, nonRetryable: true });
}

/** Fills defaults and rejects values the API would refuse, before any request is made. */
export function addGeminiLabelerDefaults(options: GeminiLabelerOptions): ResolvedOptions {
  if (!options.apiKey) {
    throw ApplicationFailure.create({ message: "Gemini labeler: no API key; check GEMINI_API_KEY in the worker's environment", type: GeminiFailure.Auth, nonRetryable: true });
  }
  if (!options.model) throw badOption('model must be a Gemini model name such as gemini-2.5-flash');
  const resolved: ResolvedOptions = {
    apiKey: options.apiKey,
    model: options.model,
    baseUrl: options.baseUrl,
    timeoutMs: options.timeoutMs ?? 90_000,
    temperature: options.temperature ?? 0.2,
    maxOutputTokens: options.maxOutputTokens ?? 8192,
    thinkingBudget: options.thinkingBudget,
    pricing: options.pricing ?? priceFor(options.model).price,
    keyFrameSize: options.keyFrameSize ?? 224,
    keyFrameQuality: options.keyFrameQuality ?? 80,
  };
  if (!(resolved.timeoutMs > 0)) throw badOption(`timeoutMs must be positive, got ${resolved.timeoutMs}`);
  if (!(resolved.temperature >= 0 && resolved.temperature <= 2)) throw badOption(`temperature must be in [0, 2], got ${resolved.temperature}`);
  if (!Number.isInteger(resolved.maxOutputTokens) || resolved.maxOutputTokens < 1) throw badOption(`maxOutputTokens must be a positive integer, got ${resolved.maxOutputTokens}`);
  if (!Number.isInteger(resolved.keyFrameSize) || resolved.keyFrameSize < 16) throw badOption(`keyFrameSize must be an integer >= 16, got ${resolved.keyFrameSize}`);
  if (!(resolved.keyFrameQuality >= 1 && resolved.keyFrameQuality <= 100)) throw badOption(`keyFrameQuality must be in [1, 100], got ${resolved.keyFrameQuality}`);
  return resolved;
}


export function createGeminiLabeler(options: GeminiLabelerOptions): GeminiLabeler {
  const o = addGeminiLabelerDefaults(options);
  const ai = createGeminiClient({ apiKey: o.apiKey, baseUrl: o.baseUrl, timeoutMs: o.timeoutMs });

  async function downsample(frame: { step: number; jpeg: Uint8Array }): Promise<{ step: number; jpegBase64: string }> {
    try {
      const jpeg = await sharp(frame.jpeg)
        .resize({ width: o.keyFrameSize, height: o.keyFrameSize, fit: 'inside', withoutEnlargement: true })
        .jpeg({ quality: o.keyFrameQuality })
        .toBuffer();
      return { step: frame.step, jpegBase64: jpeg.toString('base64') };
    } catch (err) {
      throw ApplicationFailure.create({ message: `key frame of step ${frame.step} is not a readable image: ${(err as Error).message}`, type: INVALID_KEY_FRAME, nonRetryable: true });
    }
  }

  function usageOf(response: GenerateContentResponse): TokenUsage {
    const tokens = billedTokens(response) ?? { inputTokens: 0, outputTokens: 0 };
    return usageCost(tokens.inputTokens, tokens.outputTokens, o.pricing);
  }

  return {
    model: o.model,
    async label(input, callOptions = {}) {
      const sorted = [...input.keyFrames].sort((a, b) => a.step - b.step);
      const frames = sorted.length > MAX_KEY_FRAMES ? keyFrameSteps(sorted.length, MAX_KEY_FRAMES).map((i) => sorted[i]!) : sorted;
      const prompt = buildGeminiPrompt({
        instruction: input.instruction,
        cleaned: input.cleaned,
        keyFrames: await Promise.all(frames.map(downsample)),
        feedback: input.feedback,
      });
      const config: GenerateContentConfig = {
        systemInstruction: prompt.systemInstruction,
        responseMimeType: 'application/json',
        responseJsonSchema: GEMINI_ANSWER_JSON_SCHEMA,
        temperature: o.temperature,
        maxOutputTokens: o.maxOutputTokens,
        // One activity attempt = one HTTP request; a truncated answer comes back to the workflow.
        automaticContinuation: false,
        ...(o.thinkingBudget !== undefined && { thinkingConfig: { thinkingBudget: o.thinkingBudget } }),
        ...(callOptions.abortSignal !== undefined && { abortSignal: callOptions.abortSignal }),
      };

      let response: GenerateContentResponse;
      try {
        response = await ai.models.generateContent({ model: o.model, contents: [{ role: 'user', parts: prompt.parts }], config });
      } catch (err) {
        // A cancelled activity rethrows its own cancellation, not a Gemini failure.
        if (callOptions.abortSignal?.aborted) throw callOptions.abortSignal.reason ?? err;
        throw classifyGeminiError(err, { model: o.model, secrets: [o.apiKey] });
      }

      const usage = usageOf(response);
      const block = contentBlock(response);
      if (block) return { ok: false, kind: 'safety_block', problem: block.description, usage };
      const candidate = response.candidates?.[0];
      if (!candidate) return { ok: false, kind: 'invalid_output', problem: 'the model returned no answer candidate', usage };
      const finish = candidate.finishReason;
      if (finish === FinishReason.MAX_TOKENS) {
        // A thinking model can spend the whole limit thinking: the answer then has no parts at all.
        const thoughts = response.usageMetadata?.thoughtsTokenCount ?? 0;
        const spentThinking = thoughts > 0 ? `, ${thoughts} of them thinking` : '';
        return {
          ok: false,
          kind: 'truncated',
          problem: `the answer was cut off at the output limit (finishReason MAX_TOKENS after ${usage.outputTokens} output tokens${spentThinking}, limit ${o.maxOutputTokens}); answer with fewer segments and shorter subtasks and motion plans`,
          usage,
        };
      }
      const text = candidateText(candidate);
      if (finish && finish !== FinishReason.STOP) {
        return { ok: false, kind: 'invalid_output', problem: `the model stopped early (finishReason ${finish}) without a usable answer`, usage };
      }
      if (text.trim() === '') return { ok: false, kind: 'invalid_output', problem: 'the answer was empty; answer with the JSON object', usage };
      const parsed = parseGeminiAnswer(text, input.cleaned.steps);
      return parsed.ok ? { ok: true, segments: parsed.segments, usage } : { ok: false, kind: 'invalid_output', problem: parsed.problem, usage };
    },
  };
}
