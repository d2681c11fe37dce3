import { GoogleGenAI } from '@google/genai';

/** What every Gemini caller (relabel labeler, VQA backend, verifier) configures on its client. */
export interface GeminiClientOptions {
  /** Gemini API key, from the worker's environment only (docs/design.md, "Secrets stay out of histories"). */
  apiKey: string;
  /** Endpoint root without the API version. @default the SDK's (generativelanguage.googleapis.com) */
  baseUrl?: string;
  /** Per request; a request that takes longer fails, classified as retryable `GeminiNetwork`. */
  timeoutMs: number;
}

/** The one way a Gemini client is built. */
export function createGeminiClient(options: GeminiClientOptions): GoogleGenAI {
  return new GoogleGenAI({
    apiKey: options.apiKey,
    // Explicit, so GOOGLE_GENAI_USE_VERTEXAI in a worker's environment cannot switch backends.
    vertexai: false,
    httpOptions: {
      ...(options.baseUrl !== undefined && { baseUrl: options.baseUrl }),
      timeout: options.timeoutMs,
      // No `retryOptions`: @google/genai 2.x retries only when they are set, and Temporal's retry
      // policy must own retries (backoff, RetryInfo delays, the task queue's rate limit).
    },
  });
}
