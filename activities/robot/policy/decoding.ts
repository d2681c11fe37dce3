/**
 * How each of the VLA's three stages is decoded (docs/method.md, "The three prompts and their decoding"): the paper's
 * sampling settings, a token budget per stage, and the JSON schema the action stage may be
 * constrained to. Pure: no clients, safe to import from workflow code.
 */
import { PolicyStage } from '../../../data-schemas/prompts';
import type { GenerationSettings, VqaRequest } from '../../../data-schemas/vqa';

/**
 * Token budgets. A truncated answer is a format failure (a repair call), while tokens never generated
 * cost nothing, so each budget is a few times what a well-formed answer needs:
 * - subtasks: 5-12 numbered imperative lines of ~8 tokens ("3. Move to plate") is ~100 tokens; 256
 *   leaves room for the long multi-step tasks and for non-Latin scripts when the model echoes object
 *   names from a Mandarin or Hindi instruction.
 * - motion plan: one sentence or two (~30-60 tokens, like the relabeler's plans); 128 keeps a
 *   runaway plan short, well under the parser's MAX_MOTION_PLAN_CHARS.
 * - action chunk: Gemma's tokenizer splits numbers into single digits, so one action
 *   "[0.012, -0.003, 0.000, 1], " is ~24 tokens; chunks aggregated to ~2.5 cm commands (docs/method.md)
 *   are a handful of actions, the scripted policy's at most 10, and 512 fits ~20.
 */
export const MAX_NEW_TOKENS: Readonly<Record<PolicyStage, number>> = {
  [PolicyStage.subtasks]: 256,
  [PolicyStage.motionPlan]: 128,
  [PolicyStage.action]: 512,
};

/** The paper's sampling: subtasks 0.5 in-distribution / 1.0 out-of-distribution with top-p 0.95; plans 0.1; actions 0.5. */
export function policyDecoding(stage: PolicyStage, opts: { inDistribution: boolean }): GenerationSettings {
  switch (stage) {
    case PolicyStage.subtasks:
      return { temperature: opts.inDistribution ? 0.5 : 1.0, topP: 0.95, maxNewTokens: MAX_NEW_TOKENS[stage] };
    case PolicyStage.motionPlan:
      return { temperature: 0.1, maxNewTokens: MAX_NEW_TOKENS[stage] };
    default:
      return { temperature: 0.5, maxNewTokens: MAX_NEW_TOKENS[stage] };
  }
}

/**
 * The action chunk's trained text `[[dx, dy, dz, gripper], ...]` is itself JSON, so a
 * grammar-constrained decoder can be held to it without changing what the model was trained on: a
 * top-level array of at least one array of exactly four numbers. Deliberately only the keywords every
 * structured-output engine we target enforces (vLLM's xgrammar and guidance, Gemini's
 * responseJsonSchema): no prefixItems, so the gripper's [0, 1] range and finiteness stay the parser's
 * job (parseActionChunk), and no maxItems, so the chunk length is the model's.
 */
export const ACTION_CHUNK_JSON_SCHEMA: Record<string, unknown> = {
  type: 'array',
  minItems: 1,
  items: {
    type: 'array',
    minItems: 4,
    maxItems: 4,
    items: { type: 'number' },
  },
};

/** The schema as a request carries it (the name is OpenAI's `json_schema.name`: [A-Za-z0-9_-]{1,64}). */
export const ACTION_CHUNK_RESPONSE_SCHEMA: NonNullable<VqaRequest['jsonSchema']> = { name: 'action_chunk', schema: ACTION_CHUNK_JSON_SCHEMA };

/** The schema a stage's answer is constrained to when structured decoding is on; subtasks and plans are free text. */
export function stageJsonSchema(stage: PolicyStage): VqaRequest['jsonSchema'] {
  return stage === PolicyStage.action ? ACTION_CHUNK_RESPONSE_SCHEMA : undefined;
}
