import type { ModelSpec, VqaRequest } from '../../../data-schemas/vqa';
import type { PythonEnv } from '../../runtime/python-env';
import { BackendError } from './errors';
import { createGeminiBackend } from './gemini';
import { createLocalBackend } from './local';
import { createOpenAIBackend } from './openai';
import type { InferencePool } from './pool';

/**
 * VQA inference backends: one interface, implemented for OpenAI-compatible servers (vLLM), Gemini and
 * a local transformers + peft child process. Workflows import the failure types from ./errors (pure);
 * this file pulls in the clients.
 */

export * from './errors';

export interface GenerateResult {
  text: string;
  usage?: { inputTokens: number; outputTokens: number };
  /**
   * The answer stopped at the token limit (`generation.maxNewTokens`) instead of ending by itself:
   * OpenAI's finish_reason "length", Gemini's MAX_TOKENS, the local model's max_new_tokens without
   * EOS. The sweep scores such an answer as wrong and counts it (docs/vqa.md "Truncated answers").
   */
  truncated?: boolean;
  /**
   * The provider withheld the answer (Gemini's SAFETY, RECITATION, ... finishes or a blocked prompt),
   * with its reason. A VQA sweep stores it and scores it as wrong, like a truncated answer; a robot
   * policy fails the stage (VqaBackendContentBlocked).
   */
  withheld?: string;
}

export interface InferenceBackend {
  /** One answer. Throws BackendError (an ApplicationFailure typed by its code; see ./errors). */
  generate(request: VqaRequest, signal?: AbortSignal): Promise<GenerateResult>;
  /** Checks the backend is reachable and serves the model; fails early with a message naming the model and URL. */
  check(): Promise<void>;
  close(): Promise<void>;
  /**
   * Whether generate() honours `request.jsonSchema` by constraining decoding (vLLM's guided decoding,
   * Gemini's JSON mode). Absent means no: the schema is ignored and the answer is free text.
   */
  readonly structuredOutput?: boolean;
  /**
   * Whether generate() honours `request.actionTokens` by decoding the adapter's action-token ids to
   * digits (the local backend, which sees the ids). Absent means no: the answer is the tokens' text.
   */
  readonly decodesActionTokens?: boolean;
}

/** Secrets and machinery a worker supplies; never part of a ModelSpec. */
export interface BackendEnv {
  geminiApiKey?: string;
  geminiBaseUrl?: string;
  openaiApiKey?: string;
  python?: () => Promise<PythonEnv>;
  /** The worker's bound on loaded local models (GPU workers). */
  inferencePool?: InferencePool;
}

export function createBackend(spec: ModelSpec, env: BackendEnv): InferenceBackend {
  switch (spec.backend) {
    case 'openai':
      return createOpenAIBackend({ baseUrl: spec.baseUrl, model: spec.model, ...(env.openaiApiKey !== undefined && { apiKey: env.openaiApiKey }) });
    case 'gemini':
      return createGeminiBackend({
        apiKey: env.geminiApiKey ?? '',
        model: spec.model,
        ...(spec.thinkingBudget !== undefined && { thinkingBudget: spec.thinkingBudget }),
        ...(env.geminiBaseUrl !== undefined && { baseUrl: env.geminiBaseUrl }),
      });
    case 'local':
      if (!env.python) throw new BackendError('bad_request', `model ${spec.name}: the local backend needs the project's Python environment (a GPU worker's pythonEnv)`);
      return createLocalBackend({
        baseModel: spec.baseModel,
        ...(spec.adapter !== undefined && { adapter: spec.adapter }),
        python: env.python,
        ...(env.inferencePool !== undefined && { pool: env.inferencePool }),
      });
  }
}
