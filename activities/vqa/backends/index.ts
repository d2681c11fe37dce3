export * from './types';
export { createGeminiBackend, toBackendError, type GeminiBackendOptions } from './gemini';
export { createLocalBackend, type LocalAnswer, type LocalBackend, type LocalBackendOptions } from './local';
export { DEFAULT_GPU_MAX_RESIDENT, DEFAULT_INFERENCE_IDLE_MS, InferencePool, type InferencePoolOptions, type ResidentModel } from './pool';
export { classifyOpenAIError, createOpenAIBackend, retryAfterMs, toDataUrl, type OpenAIBackendOptions } from './openai';
