import { ApplicationFailure } from '@temporalio/activity';
import { actionPrompt, motionPlanPrompt, subtasksPrompt } from '../../../data-schemas/prompts';
import { RobotFailure, type PolicyStageInput, type PolicyStageResult, type PolicyStageValue, type StageRecord } from '../../../data-schemas/robot';
import { decodeStage, type PolicyModel, type PolicyQuestion } from '../policy/model';
import { createScriptedPolicy, type ScriptedPolicy, type ScriptedPolicyContext } from '../policy/scripted';
import { hash32 } from '../sim/rng';

export type { PolicyStageInput, PolicyStageResult, PolicyStageValue };

/** The stage's prompt, from the shared templates the model was trained on. */
export function stagePrompt(input: Pick<PolicyStageInput, 'stage' | 'instruction' | 'subtasks' | 'subtaskIndex' | 'motionPlan'>): string {
  const subtask = input.subtasks[input.subtaskIndex] ?? '';
  switch (input.stage) {
    case 'subtasks':
      return subtasksPrompt(input.instruction);
    case 'motion_plan':
      return motionPlanPrompt(subtask);
    case 'action':
      return actionPrompt(subtask, input.motionPlan ?? '');
  }
}

/**
 * One stage through a policy model: decode with bounded repairs (decodeStage), recorded with every
 * attempt's answer, error and latency.
 */
export async function runStage(model: PolicyModel, input: PolicyStageInput, image: PolicyQuestion['image'], signal?: AbortSignal): Promise<PolicyStageResult> {
  const r = await decodeStage(model, { stage: input.stage, prompt: stagePrompt(input), image, inDistribution: input.inDistribution, maxRepairs: input.maxRepairs }, signal);
  const record: StageRecord = {
    stage: input.stage,
    attempts: r.attempts.map((a) => ({ prompt: a.prompt, raw: clip(a.raw), error: a.error, latencyMs: a.latencyMs, structured: a.structured })),
    ok: r.ok,
    error: r.ok ? null : r.error,
    latencyMs: r.latencyMs,
  };
  return { record, value: r.ok ? r.value : null };
}

/** Recorded answers are capped: a model that rambles must not bloat the workflow's history. */
const MAX_RECORDED_ANSWER = 4000;
const clip = (s: string): string => (s.length > MAX_RECORDED_ANSWER ? `${s.slice(0, MAX_RECORDED_ANSWER)}... [${s.length - MAX_RECORDED_ANSWER} more characters]` : s);

/** The scripted policy behind the PolicyModel interface: it reads the scene, not the image. */
function scriptedModel(policy: ScriptedPolicy, context: ScriptedPolicyContext): PolicyModel {
  return {
    structuredDecoding: false,
    ask: (q) => Promise.resolve({ text: policy.answer(q.stage, context), structured: false }),
    check: () => Promise.resolve(),
    close: () => Promise.resolve(),
  };
}

/**
 * The scripted policy's answer to one stage, seeded by (policy seed, episode, cycle, stage) so a
 * retried activity answers exactly as the first try did.
 */
export function runScriptedStage(input: PolicyStageInput, context: () => ScriptedPolicyContext): Promise<PolicyStageResult> {
  if (input.policy.kind !== 'scripted') throw new Error('runScriptedStage needs a scripted policy');
  const { seed, actionStdMeters, formatErrorRate, wrongSubtaskRate } = input.policy;
  const policy = createScriptedPolicy({
    seed: hash32(`${seed}:${input.episodeId}:${input.cycle}:${input.stage}`),
    noise: { actionStdMeters, formatErrorRate, wrongSubtaskRate },
  });
  let ctx: ScriptedPolicyContext;
  try {
    ctx = context();
  } catch (err) {
    throw ApplicationFailure.nonRetryable(`the scripted policy answers from the simulator's ground truth: ${(err as Error).message}`, RobotFailure.PolicyUnavailable);
  }
  return runStage(scriptedModel(policy, ctx), input, { mimeType: 'image/jpeg', data: new Uint8Array() });
}
