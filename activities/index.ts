import { createRelabelActivities } from './relabel/activities';
import { createSmokeActivities } from './smoke';
import { createShardActivities } from './shard/activities';
import type { ObjectStore } from './store/types';
import { createTrainingActivities, type TrainingDeps } from './training/train';
import { createVqaRuntime } from './vqa/activities';
import { createNightlyActivities } from './vqa/nightly';
import type { PythonEnv } from './runtime/python-env';
import { DEFAULT_GPU_MAX_RESIDENT, DEFAULT_INFERENCE_IDLE_MS, InferencePool } from './vqa/backends/pool';
import { createCampaignActivities } from './robot/campaign/activities';
import { createEpisodeActivities } from './robot/episode/episode-activities';
import { createModelPolicyActivities } from './robot/episode/policy-model';
import { createGeminiVerifyActivities } from './robot/episode/verify';
import { createExperimentActivities } from './experiment';

/** Everything activities need from the outside, injected once per worker. */
export interface ActivityDeps {
  store: ObjectStore;
  /** Only the Gemini worker gets these, from its own environment. */
  gemini?: { apiKey?: string; baseUrl?: string };
  /** For OpenAI-compatible servers that want a key (vLLM's --api-key), from the CPU worker's environment. */
  openaiApiKey?: string;
  /** The code revision lineage records name (the CPU worker's checkout). @default 'unknown' */
  gitRevision?: string;
}

/** All activities of the CPU worker (VQA: everything but Gemini and local inference, which have their own queues). */
export function createCpuActivities(deps: ActivityDeps) {
  const vqa = createVqaRuntime({ store: deps.store, ...(deps.openaiApiKey !== undefined && { openaiApiKey: deps.openaiApiKey }) });
  return {
    ...createSmokeActivities(deps),
    ...createRelabelActivities({ store: deps.store }).cpu,
    ...createShardActivities({ store: deps.store }),
    ...vqa.store,
    ...vqa.inference('cpu'),
    ...createNightlyActivities({ store: deps.store }),
    ...createEpisodeActivities({ store: deps.store }, 'cpu'),
    ...createCampaignActivities({ store: deps.store }),
    ...createExperimentActivities({ store: deps.store, ...(deps.gitRevision !== undefined && { gitRevision: deps.gitRevision }) }),
  };
}

/** The activities of the Gemini worker: model calls only, under the queue's rate limit. */
export function createGeminiActivities(deps: ActivityDeps) {
  const { labelGemini } = createRelabelActivities(deps).gemini;
  const vqa = createVqaRuntime({
    store: deps.store,
    ...(deps.gemini?.apiKey !== undefined && { geminiApiKey: deps.gemini.apiKey }),
    ...(deps.gemini?.baseUrl !== undefined && { geminiBaseUrl: deps.gemini.baseUrl }),
  });
  const verifier = createGeminiVerifyActivities({ store: deps.store, ...(deps.gemini && { gemini: deps.gemini }) });
  const policy = createModelPolicyActivities(
    {
      store: deps.store,
      env: { ...(deps.gemini?.apiKey !== undefined && { geminiApiKey: deps.gemini.apiKey }), ...(deps.gemini?.baseUrl !== undefined && { geminiBaseUrl: deps.gemini.baseUrl }) },
    },
    'gemini',
  );
  return { labelGemini, ...vqa.inference('gemini'), ...verifier, ...policy };
}

export type CpuActivities = ReturnType<typeof createCpuActivities>;

/** What the GPU worker's activities need: the store, scratch space, the Python environment, the bound on loaded models. */
export type GpuActivityDeps = Omit<TrainingDeps, 'beforeTrainer'> & {
  /** Local inference processes of this worker (VQA and robot policies share it). @default one model, released after 2 idle minutes */
  inferencePool?: InferencePool;
};

/** The activities of a GPU worker: the trainer and local inference (transformers + peft), one at a time. */
export function createGpuActivities(deps: GpuActivityDeps) {
  const python: () => Promise<PythonEnv> = deps.pythonEnv;
  const inferencePool = deps.inferencePool ?? new InferencePool({ maxResident: DEFAULT_GPU_MAX_RESIDENT, idleMs: DEFAULT_INFERENCE_IDLE_MS });
  const vqa = createVqaRuntime({ store: deps.store, python, inferencePool, adapterCacheDir: `${deps.workDir}/adapters` });
  const policy = createModelPolicyActivities({ store: deps.store, env: { python, inferencePool } }, 'gpu');
  // The trainer gets the GPU to itself: no model stays loaded beside it.
  const training = createTrainingActivities({ ...deps, beforeTrainer: () => inferencePool.releaseAll('a trainer starts on this worker') });
  return { ...training, ...vqa.inference('gpu'), ...policy };
}
