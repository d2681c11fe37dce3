import { ApplicationFailure } from '@temporalio/activity';
import type { ObjectStore } from '../../store/types';
import type { BackendEnv } from '../../vqa/backends/types';
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
  if (input.policy.kind !== 'model') throw ApplicationFailure.nonRetryable(`policy ${input.policy.kind} is not a model`, 'PolicyUnavailable');
  const key = JSON.stringify([input.policy.model, input.policy.structuredDecoding]);
  let model = models.get(key);
  if (!model) {
    model = createPolicyModel({ model: input.policy.model, structuredDecoding: input.policy.structuredDecoding }, env);
    models.set(key, model);
  }
  const image = await store.get(input.frameUri);
  return runStage(model, input, { mimeType: 'image/jpeg', data: new Uint8Array(image.buffer, image.byteOffset, image.byteLength) }, signal);
}

/** Closes the models a worker opened (at shutdown). */
export async function closePolicyModels(): Promise<void> {
  const open = [...models.values()];
  models.clear();
  await Promise.allSettled(open.map((m) => m.close()));
}

/** The policy stage on a worker that calls models only (Gemini, GPU): scripted policies live on stations. */
export function createModelPolicyActivities(deps: { store: ObjectStore; env: PolicyModelEnv }) {
  return {
    policyStage: (input: PolicyStageInput): Promise<PolicyStageResult> => runModelStage(deps.store, input, deps.env),
  };
}
