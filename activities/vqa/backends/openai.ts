import OpenAI, { APIConnectionError, APIError, APIUserAbortError } from 'openai';
import type { ChatCompletionContentPart } from 'openai/resources/chat/completions';
import type { VqaRequest } from '../../../data-schemas/vqa';
import { scrubSecrets } from '../../gemini/errors';
import { BackendError } from './errors';
import type { GenerateResult, InferenceBackend } from './types';

/**
 * An OpenAI-compatible chat completions server: the standard way vLLM serves a base model and its
 * LoRA adapters (an adapter is one more model name). The SDK's own retries are off: one generate()
 * is one HTTP request, and Temporal's retry policy owns retries.
 */
export interface OpenAIBackendOptions {
  /** Root of the server, with or without `/v1` (vLLM: `http://host:8000` or `http://host:8000/v1`). */
  baseUrl: string;
  /** The served model name; for a vLLM LoRA adapter, the adapter's name. */
  model: string;
  /** Bearer key; vLLM without `--api-key` accepts anything. */
  apiKey?: string;
  /** Per request. @default 120_000 */
  timeoutMs?: number;
}

/** `http://h:8000` and `http://h:8000/` become `http://h:8000/v1`; a URL already ending in /v1 is kept. */
export function openAIBaseUrl(url: string): string {
  const trimmed = url.replace(/\/+$/, '');
  return /\/v\d+$/.test(trimmed) ? trimmed : `${trimmed}/v1`;
}

/** `retry-after-ms`, else `retry-after` in seconds or as an HTTP date; undefined when absent or unreadable. */
export function retryAfterMs(headers: Headers | undefined, now = Date.now()): number | undefined {
  const ms = headers?.get('retry-after-ms');
  if (ms && Number.isFinite(Number(ms)) && Number(ms) >= 0) return Math.round(Number(ms));
  const after = headers?.get('retry-after');
  if (!after) return undefined;
  if (/^\d+(\.\d+)?$/.test(after.trim())) return Math.round(Number(after) * 1000);
  const date = Date.parse(after);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

export function toDataUrl(image: { mimeType: string; data: Uint8Array }): string {
  return `data:${image.mimeType};base64,${Buffer.from(image.data.buffer, image.data.byteOffset, image.data.byteLength).toString('base64')}`;
}

/** Turns an error of the openai client into a BackendError (messages scrubbed of the key). */
export function classifyOpenAIError(err: unknown, context: { model: string; url: string; secrets?: readonly string[] }): BackendError {
  if (err instanceof BackendError) return err;
  const scrub = (text: string): string => scrubSecrets(text, context.secrets).slice(0, 600);
  const where = `${context.url} (model ${JSON.stringify(context.model)})`;
  if (err instanceof APIConnectionError) {
    const cause = (err as { cause?: { code?: unknown; message?: unknown } }).cause;
    const detail = typeof cause?.code === 'string' ? cause.code : typeof cause?.message === 'string' ? cause.message : err.message;
    return new BackendError('unreachable', scrub(`OpenAI-compatible server ${where} unreachable: ${err.name === 'APIConnectionTimeoutError' ? 'the request timed out' : detail}`));
  }
  if (err instanceof APIError && typeof err.status === 'number') {
    const status = err.status;
    const what = scrub(`OpenAI-compatible server ${where} answered ${status}: ${err.message.replace(/^\d+\s*/, '')}`);
    if (status === 401 || status === 403) return new BackendError('auth', `${what}; check OPENAI_API_KEY in the worker's environment`);
    if (status === 404) return new BackendError('not_found', `${what}; the model is not served there (for a vLLM LoRA adapter, start vLLM with --enable-lora --lora-modules name=path)`);
    if (status === 429) {
      const delay = retryAfterMs(err.headers as Headers | undefined);
      return new BackendError('rate_limited', `${what}${delay !== undefined ? ` (retry after ${delay} ms)` : ''}`, delay !== undefined ? { retryAfterMs: delay } : {});
    }
    if (status >= 500 || status === 408 || status === 409) return new BackendError('server', what);
    return new BackendError('bad_request', `${what}; the request was rejected, which retrying cannot fix`);
  }
  const message = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  return new BackendError('malformed', scrub(`OpenAI-compatible server ${where}: unexpected failure: ${message}`));
}

export function createOpenAIBackend(options: OpenAIBackendOptions): InferenceBackend {
  const baseURL = openAIBaseUrl(options.baseUrl);
  const apiKey = options.apiKey ?? '';
  const client = new OpenAI({
    baseURL,
    // The SDK refuses an empty key; vLLM without --api-key ignores it.
    apiKey: apiKey || 'EMPTY',
    maxRetries: 0,
    timeout: options.timeoutMs ?? 120_000,
  });
  const context = { model: options.model, url: baseURL, secrets: apiKey ? [apiKey] : [] };

  return {
    structuredOutput: true,

    async generate(request: VqaRequest, signal?: AbortSignal): Promise<GenerateResult> {
      const content: ChatCompletionContentPart[] = [
        ...request.images.map((image): ChatCompletionContentPart => ({ type: 'image_url', image_url: { url: toDataUrl(image) } })),
        { type: 'text', text: request.prompt },
      ];
      const g = request.generation;
      let response: OpenAI.Chat.Completions.ChatCompletion;
      // A signal of its own per request: the client adds an abort listener to the signal it is given
      // and never removes it, so passing the activity's long-lived signal would pile them up.
      const own = new AbortController();
      const forward = (): void => own.abort(signal?.reason);
      if (signal?.aborted) forward();
      else signal?.addEventListener('abort', forward, { once: true });
      try {
        response = await client.chat.completions.create(
          {
            model: options.model,
            messages: [{ role: 'user', content }],
            max_tokens: g.maxNewTokens,
            temperature: g.temperature,
            ...(g.topP !== undefined && { top_p: g.topP }),
            // vLLM compiles the schema into a grammar for guided decoding, a top-level array included
            // (OpenAI's own API wants an object at the root).
            ...(request.jsonSchema !== undefined && {
              response_format: { type: 'json_schema' as const, json_schema: { name: request.jsonSchema.name, schema: request.jsonSchema.schema, strict: true } },
            }),
          },
          { signal: own.signal },
        );
      } catch (err) {
        if (signal?.aborted || err instanceof APIUserAbortError) throw signal?.reason ?? err;
        throw classifyOpenAIError(err, context);
      } finally {
        signal?.removeEventListener('abort', forward);
      }
      const choice = (response as Partial<typeof response>).choices?.[0];
      const usage = response.usage;
      const usageOf = usage && { usage: { inputTokens: usage.prompt_tokens, outputTokens: usage.completion_tokens } };
      // The server's content filter withheld the answer (its text, if any, is not the model's answer).
      if (choice?.finish_reason === 'content_filter') {
        return { text: '', withheld: `OpenAI-compatible server ${baseURL} (model ${JSON.stringify(options.model)}): finish_reason content_filter`, ...usageOf };
      }
      const text = choice?.message?.content;
      if (typeof text !== 'string') {
        throw new BackendError('malformed', `OpenAI-compatible server ${baseURL} (model ${JSON.stringify(options.model)}) returned no answer text (${choice ? `finish_reason ${choice.finish_reason}` : 'no choices'})`);
      }
      return {
        text,
        ...usageOf,
        // "length": the server stopped at max_tokens, so the answer is cut off.
        ...(choice?.finish_reason === 'length' && { truncated: true }),
      };
    },

    async check(): Promise<void> {
      let served: string[];
      try {
        served = [];
        for await (const model of client.models.list()) served.push(model.id);
      } catch (err) {
        throw classifyOpenAIError(err, context);
      }
      if (!served.includes(options.model)) {
        throw new BackendError('not_found', `model ${JSON.stringify(options.model)} is not served at ${baseURL} (served: ${served.length > 0 ? served.join(', ') : 'none'})`);
      }
    },

    close(): Promise<void> {
      return Promise.resolve();
    },
  };
}
