/**
 * A real model as the VLA policy (docs/robot-episodes.md): the three stage prompts asked through the
 * VQA inference backends (activities/vqa/backends: an OpenAI-compatible server such as vLLM serving
 * the LoRA adapter, Gemini zero-shot, local transformers + peft) with the paper's decoding settings,
 * and answers parsed and repaired by ./parse. The scripted policy (./scripted) is not wrapped here.
 */
import { PolicyStage } from '../../../data-schemas/prompts';
import type { ActionTokenMapping } from '../../../data-schemas/training';
import type { StationImageMime } from '../../../data-schemas/station';
import type { ModelSpec } from '../../../data-schemas/vqa';
import { BackendError, createBackend, type BackendEnv, type GenerateResult } from '../../vqa/backends/types';
import { actionTokensToDigits } from './action-tokens';
import { policyDecoding, stageJsonSchema } from './decoding';
import { decodeWithRepair, type DecodeAttempt, type StageValue } from './parse';

/**
 * The model and whether to constrain the action stage. The `model` variant of the episode input's
 * PolicySpec (data-schemas/robot.ts) has this shape, so it can be passed as it is.
 */
export interface PolicyModelSpec {
  model: ModelSpec;
  /** Constrain the action chunk to ACTION_CHUNK_JSON_SCHEMA where the backend offers it (vLLM, Gemini; not local). */
  structuredDecoding: boolean;
}

export interface PolicyQuestion {
  stage: PolicyStage;
  prompt: string;
  /** The current camera frame (o_0 for subtasks, o_i otherwise). */
  image: { mimeType: StationImageMime; data: Uint8Array };
  /** Out-of-distribution tasks decode the subtask list at temperature 1.0 instead of 0.5. */
  inDistribution: boolean;
}

export interface PolicyAnswer {
  /** The answer; for an action-tokens model's action stage, with the mapped tokens already turned into digits. */
  text: string;
  /** Whether this answer was constrained to a JSON schema (grammar-constrained decoding). */
  structured: boolean;
  usage?: GenerateResult['usage'];
}

export interface PolicyModel {
  /** One answer. Throws the backends' BackendError (an ApplicationFailure typed by its code). */
  ask(question: PolicyQuestion, signal?: AbortSignal): Promise<PolicyAnswer>;
  /** Whether action chunks are decoded under the schema: asked for in the spec and offered by the backend. */
  readonly structuredDecoding: boolean;
  /** Fails early, naming the model and URL, when the backend is unreachable or does not serve the model. */
  check(): Promise<void>;
  close(): Promise<void>;
}

export interface PolicyModelOptions {
  /**
   * A VLM2VLA-AT adapter's digit mapping: action-stage answers are mapped back to digits before
   * anything parses them (subtasks and plans are plain language and left as they are).
   */
  actionTokens?: ActionTokenMapping;
}

export function createPolicyModel(spec: PolicyModelSpec, env: BackendEnv, options: PolicyModelOptions = {}): PolicyModel {
  const backend = createBackend(spec.model, env);
  const { actionTokens } = options;
  const structuredDecoding = spec.structuredDecoding && backend.structuredOutput === true;
  return {
    structuredDecoding,
    async ask(q, signal) {
      const jsonSchema = structuredDecoding ? stageJsonSchema(q.stage) : undefined;
      // The one place an action-tokens answer becomes digits, whichever backend wrote it: by token
      // ids where the backend sees them (local), else by the tokens' text (vLLM's answer).
      const mapActionTokens = actionTokens !== undefined && q.stage === PolicyStage.action;
      const byIds = mapActionTokens && backend.decodesActionTokens === true;
      const answer = await backend.generate(
        {
          prompt: q.prompt,
          images: [q.image],
          generation: policyDecoding(q.stage, { inDistribution: q.inDistribution }),
          ...(jsonSchema !== undefined && { jsonSchema }),
          ...(byIds && { actionTokens: true }),
        },
        signal,
      );
      // A policy cannot act on an answer the provider withheld; retrying gets the same block.
      if (answer.withheld !== undefined) throw new BackendError('content_blocked', answer.withheld);
      const text = mapActionTokens && !byIds ? actionTokensToDigits(answer.text, actionTokens) : answer.text;
      return { text, structured: jsonSchema !== undefined, ...(answer.usage && { usage: answer.usage }) };
    },
    check: () => backend.check(),
    close: () => backend.close(),
  };
}

/** One call of a stage: the decode attempt plus its cost. */
export interface TimedDecodeAttempt extends DecodeAttempt {
  /** Wall time of the model call. */
  latencyMs: number;
  structured: boolean;
}

export type StageDecodeResult<T> = ({ ok: true; value: T } | { ok: false; error: string }) & {
  /** Every call, repairs included, in order; more than one means format failures. */
  attempts: TimedDecodeAttempt[];
  /** Wall time of the whole stage, repairs included. */
  latencyMs: number;
  /** Tokens summed over the attempts that reported them. */
  usage?: { inputTokens: number; outputTokens: number };
};

/**
 * Asks a stage and parses the answer, re-prompting a malformed one at most `maxRepairs` times
 * (decodeWithRepair), timing every call. A backend failure (BackendError) or an abort propagates:
 * only malformed answers are this function's to handle.
 */
export async function decodeStage<S extends PolicyStage>(
  model: PolicyModel,
  q: Omit<PolicyQuestion, 'stage'> & { stage: S; maxRepairs: number },
  signal?: AbortSignal,
): Promise<StageDecodeResult<StageValue[S]>> {
  const started = performance.now();
  const calls: { latencyMs: number; structured: boolean; usage: PolicyAnswer['usage'] }[] = [];
  const result = await decodeWithRepair({
    stage: q.stage,
    prompt: q.prompt,
    maxRepairs: q.maxRepairs,
    ask: async (prompt) => {
      const t0 = performance.now();
      const answer = await model.ask({ stage: q.stage, prompt, image: q.image, inDistribution: q.inDistribution }, signal);
      calls.push({ latencyMs: performance.now() - t0, structured: answer.structured, usage: answer.usage });
      return answer.text;
    },
  });
  const attempts = result.attempts.map((a, i): TimedDecodeAttempt => ({ ...a, latencyMs: calls[i]?.latencyMs ?? 0, structured: calls[i]?.structured ?? false }));
  const reported = calls.flatMap((c) => (c.usage ? [c.usage] : []));
  const usage = reported.length > 0 ? { inputTokens: reported.reduce((s, u) => s + u.inputTokens, 0), outputTokens: reported.reduce((s, u) => s + u.outputTokens, 0) } : undefined;
  const outcome = result.ok ? { ok: true as const, value: result.value } : { ok: false as const, error: result.error };
  return { ...outcome, attempts, latencyMs: performance.now() - started, ...(usage && { usage }) };
}
