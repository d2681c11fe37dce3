import { ApplicationFailure } from '@temporalio/activity';
import { fileURLToPath } from 'node:url';
import { implement } from '../../../data-schemas/activity-contract';
import { RobotFailure, RobotPolicyActivities, policyAdapterUri, type PolicySpec } from '../../../data-schemas/robot';
import type { ActionTokenMapping } from '../../../data-schemas/training';
import { classified } from '../../failures';
import type { ObjectStore } from '../../store/types';
import type { BackendEnv } from '../../vqa/backends/types';
import { ACTION_TOKENS_FAILURE, checkMappingAgainstTokenizer, loadActionTokenMapping, textAmbiguity } from '../policy/action-tokens';
import { createPolicyModel, type PolicyModel } from '../policy/model';
import { runStage, type PolicyStageInput, type PolicyStageResult } from './policy';

/** Secrets and machinery of the worker that calls the model (never part of the episode input). */
export type PolicyModelEnv = BackendEnv;

/**
 * Models stay open between stages and episodes (a local backend is a child process holding the
 * weights), one per spec.
 */
const models = new Map<string, PolicyModel>();

/** A stage answered by a real model (OpenAI-compatible server, Gemini, local transformers). */
export async function runModelStage(store: ObjectStore, input: PolicyStageInput, env: PolicyModelEnv, signal?: AbortSignal): Promise<PolicyStageResult> {
  if (input.policy.kind !== 'model') throw ApplicationFailure.nonRetryable(`policy ${input.policy.kind} is not a model`, RobotFailure.PolicyUnavailable);
  const policy = input.policy;
  const key = JSON.stringify([policy.model, policy.structuredDecoding, policy.actionRepresentation, policy.adapterUri]);
  let model = models.get(key);
  if (!model) {
    // Checked on the episode's first model call (the subtask list), before any chunk reaches the arm.
    const actionTokens = policy.actionRepresentation === 'action-tokens' ? await actionTokenMappingOf(store, policy) : undefined;
    model = createPolicyModel({ model: policy.model, structuredDecoding: policy.structuredDecoding }, env, actionTokens ? { actionTokens } : {});
    models.set(key, model);
  }
  const image = await store.get(input.frameUri);
  return runStage(model, input, { mimeType: 'image/jpeg', data: new Uint8Array(image.buffer, image.byteOffset, image.byteLength) }, signal);
}

/** The action-tokens mapping of the policy's adapter, checked against the local base model's tokenizer where there is one. */
async function actionTokenMappingOf(store: ObjectStore, policy: Extract<PolicySpec, { kind: 'model' }>): Promise<ActionTokenMapping> {
  const adapterUri = policyAdapterUri(policy);
  if (adapterUri === undefined) throw ApplicationFailure.nonRetryable('an action-tokens policy names no adapter folder (adapterUri) to read action_tokens.json from', ACTION_TOKENS_FAILURE);
  const mapping = await loadActionTokenMapping(store, adapterUri);
  if (policy.model.backend === 'local') {
    const base = policy.model.baseModel;
    const baseDir = base.startsWith('file://') ? fileURLToPath(base) : base.startsWith('/') ? base : undefined;
    if (baseDir !== undefined) await checkMappingAgainstTokenizer(mapping, baseDir, adapterUri);
  } else {
    // This backend returns text, mapped back by text: refused where that could misread a digit.
    const ambiguity = textAmbiguity(mapping);
    if (ambiguity !== undefined) {
      throw ApplicationFailure.nonRetryable(
        `action-tokens adapter ${adapterUri}: its action_tokens.json cannot be read back from text (${ambiguity}), and a ${policy.model.backend} server returns text; run it with the local backend, which decodes token ids`,
        ACTION_TOKENS_FAILURE,
      );
    }
  }
  return mapping;
}

/** Closes the models a worker opened (at shutdown). */
export async function closePolicyModels(): Promise<void> {
  const open = [...models.values()];
  models.clear();
  await Promise.allSettled(open.map((m) => m.close()));
}

/** The policy stage on a worker that calls models only (Gemini, GPU): scripted policies live on stations. */
export function createModelPolicyActivities(deps: { store: ObjectStore; env: PolicyModelEnv }, role: 'gemini' | 'gpu') {
  return implement(RobotPolicyActivities, role, {
    // Classified like every store-reading activity: a frame URI outside the store roots is not retried.
    policyStage: classified((input): Promise<PolicyStageResult> => runModelStage(deps.store, input, deps.env)),
  });
}
