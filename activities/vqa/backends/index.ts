export * from './types';
export { createGeminiBackend, toBackendError, type GeminiBackendOptions } from './gemini';
export { createLocalBackend, type LocalAnswer, type LocalBackend, type LocalBackendOptions } from './local';
export { classifyOpenAIError, createOpenAIBackend, retryAfterMs, toDataUrl, type OpenAIBackendOptions } from './openai';
