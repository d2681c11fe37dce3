import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createGeminiBackend, DEFAULT_THINKING_BUDGET, isThinkingModel } from '../../activities/vqa/backends/gemini';
import { createLocalBackend, type LocalBackend } from '../../activities/vqa/backends/local';
import { createOpenAIBackend } from '../../activities/vqa/backends/openai';
import { BackendError, createBackend, FATAL_BACKEND_ERRORS, type BackendErrorCode, type InferenceBackend } from '../../activities/vqa/backends/types';
import type { VqaRequest } from '../../data-schemas/vqa';
import { buildTinyModel } from '../../cli/commands/train';
import { loadConfig } from '../../infra/config';
import { isAlive } from '../../activities/runtime/processes';
import { ensurePythonEnv } from '../../infra/python';
import type { PythonEnv } from '../../activities/runtime/python-env';
import { createGeminiServer, type GeminiServer } from '../fixtures/gemini-server';
import { createOpenAIServer, type OpenAIServer } from '../fixtures/openai-server';
import { closedPort } from '../helpers/net';

const exec = promisify(execFile);

async function png(r: number, g: number, b: number, width = 48, height = 40): Promise<Uint8Array> {
  return new Uint8Array(await sharp({ create: { width, height, channels: 3, background: { r, g, b } } }).png().toBuffer());
}

async function request(prompt = 'What is in the image? Answer with one word.', colors: [number, number, number][] = [[200, 20, 20]], maxNewTokens = 8): Promise<VqaRequest> {
  return {
    prompt,
    images: await Promise.all(colors.map(async ([r, g, b]) => ({ mimeType: 'image/png', data: await png(r, g, b) }))),
    generation: { maxNewTokens, temperature: 0 },
  };
}

async function failure(promise: Promise<unknown>, code: BackendErrorCode): Promise<BackendError> {
  const err = await promise.then(
    (value) => new Error(`expected a ${code} failure, got ${JSON.stringify(value)}`),
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(BackendError);
  const e = err as BackendError;
  expect(e.code, e.message).toBe(code);
  expect(e.nonRetryable).toBe(!['unreachable', 'rate_limited', 'server', 'malformed'].includes(code));
  return e;
}

describe('openai backend against a local OpenAI-wire server (real openai client)', () => {
  const KEY = `sk-test-${randomUUID()}`;
  let server: OpenAIServer;
  const backend = (model = 'base-model', apiKey = KEY): InferenceBackend => createOpenAIBackend({ baseUrl: server.url, model, apiKey, timeoutMs: 5_000 });

  beforeAll(async () => {
    server = await createOpenAIServer({ apiKey: KEY, models: ['base-model', 'lora-subtasks'] });
  });
  afterAll(async () => {
    await server.close();
  });
  beforeEach(() => {
    server.reset();
  });

  it('answers; images arrive as base64 data URLs with the generation settings', async () => {
    const req = await request('How many objects are there?', [
      [200, 20, 20],
      [20, 200, 20],
    ]);
    req.generation = { maxNewTokens: 16, temperature: 0.3, topP: 0.9 };
    const answer = await backend('lora-subtasks').generate(req);
    expect(answer.text).toBe('answer(2 images): How many objects are there?');
    expect(server.requests).toHaveLength(1);
    const rec = server.requests[0]!;
    expect(rec.model).toBe('lora-subtasks');
    expect(rec.authorized).toBe(true);
    expect(rec.maxTokens).toBe(16);
    expect(rec.body?.max_tokens).toBe(16);
    expect(rec.temperature).toBe(0.3);
    expect(rec.topP).toBe(0.9);
    expect(rec.imageUrls.every((u) => u.startsWith('data:image/png;base64,'))).toBe(true);
    expect(rec.images.map((i) => Buffer.compare(i.bytes, Buffer.from(req.images[rec.images.indexOf(i)]!.data)))).toEqual([0, 0]);
    // Images first, then the question, in one user turn.
    const content = rec.body!.messages[0]!.content as { type: string }[];
    expect(content.map((p) => p.type)).toEqual(['image_url', 'image_url', 'text']);
    expect(answer.usage).toEqual({ inputTokens: 7 + 2 * 256, outputTokens: Math.ceil(answer.text.length / 4) });
    expect(answer.truncated).toBeUndefined();
  });

  it('an answer the server stops at max_tokens (finish_reason "length") is marked truncated', async () => {
    server.setAnswer(() => 'a long answer that goes on and on '.repeat(20));
    const req = await request('Describe everything.');
    req.generation = { maxNewTokens: 8, temperature: 0 };
    const answer = await backend().generate(req);
    expect(answer.text).toHaveLength(8 * 4);
    expect(answer.truncated).toBe(true);
    server.setAnswer(() => 'short');
    expect((await backend().generate(req)).truncated).toBeUndefined();
  });

  it('a scripted answer function; top_p left out when unset; createBackend builds it from a ModelSpec', async () => {
    server.setAnswer((r) => (r.promptText.includes('colour') ? 'red' : 'no'));
    const b = createBackend({ name: 'vllm-base', backend: 'openai', baseUrl: `${server.url}/v1`, model: 'base-model' }, { openaiApiKey: KEY });
    await b.check();
    expect((await b.generate(await request('What colour is it?'))).text).toBe('red');
    expect(server.requests[0]!.body).not.toHaveProperty('top_p');
    await b.close();
  });

  it('check(): an unknown model fails as not_found, naming the model, the URL and what is served', async () => {
    await backend().check();
    const e = await failure(backend('lora-actions').check(), 'not_found');
    expect(e.message).toBe(`model "lora-actions" is not served at ${server.baseUrl} (served: base-model, lora-subtasks)`);
    // ... and at generate(), the server's 404 model_not_found.
    const g = await failure(backend('lora-actions').generate(await request()), 'not_found');
    expect(g.message).toContain('does not exist');
  });

  it('401: auth, non-retryable, the key never in the message', async () => {
    const wrong = `${KEY}-wrong`;
    const e = await failure(backend('base-model', wrong).generate(await request()), 'auth');
    expect(e.message).toContain('401');
    expect(e.message).toContain('OPENAI_API_KEY');
    expect(e.message).not.toContain(wrong);
    expect(server.requests[0]!.reply).toBe('unauthorized');
    await failure(backend('base-model', wrong).check(), 'auth');
  });

  it('429 with retry-after: rate_limited carrying the delay; the SDK does not retry', async () => {
    server.script('429');
    const e = await failure(backend().generate(await request()), 'rate_limited');
    expect(e.retryAfterMs).toBe(2000);
    expect(e.nextRetryDelay).toBe(2000);
    expect(e.type).toBe('VqaBackendRateLimited');
    expect(server.requests).toHaveLength(1);
  });

  it('503 and 500: server (retryable); 400: bad_request; an answer without choices: malformed', async () => {
    server.script('503', '500', '400', 'no_choices', 'not_json');
    expect((await failure(backend().generate(await request()), 'server')).message).toContain('503');
    expect((await failure(backend().generate(await request()), 'server')).message).toContain('500');
    expect((await failure(backend().generate(await request()), 'bad_request')).message).toContain('max_tokens');
    expect((await failure(backend().generate(await request()), 'malformed')).message).toContain('no choices');
    await failure(backend().generate(await request()), 'malformed');
    expect(server.requests).toHaveLength(5);
  });

  it('connection refused: unreachable (retryable), naming the URL; a dropped connection too', async () => {
    const port = await closedPort();
    const b = createOpenAIBackend({ baseUrl: `http://127.0.0.1:${port}`, model: 'base-model' });
    const e = await failure(b.generate(await request()), 'unreachable');
    expect(e.message).toContain(`http://127.0.0.1:${port}/v1`);
    await failure(b.check(), 'unreachable');
    server.script('drop_connection');
    await failure(backend().generate(await request()), 'unreachable');
  });

  it('an aborted request rejects with the abort reason, not a backend error', async () => {
    server.script('hang');
    const controller = new AbortController();
    const pending = backend().generate(await request(), controller.signal);
    setTimeout(() => controller.abort(new Error('activity cancelled')), 50);
    await expect(pending).rejects.toThrow('activity cancelled');
  });
});

describe('gemini backend against the local Gemini-wire server (real @google/genai client)', () => {
  const KEY = `AIzaTest-${randomUUID()}`;
  let server: GeminiServer;
  const backend = (model = 'gemini-2.5-flash', apiKey = KEY): InferenceBackend => createGeminiBackend({ apiKey, model, baseUrl: server.baseUrl, timeoutMs: 5_000 });

  beforeAll(async () => {
    server = await createGeminiServer({ apiKey: KEY });
  });
  afterAll(async () => {
    await server.close();
  });
  beforeEach(() => {
    server.reset();
  });

  it('answers with the images inline and the generation config', async () => {
    server.script({ text: 'B' });
    const req = await request('Which option is right? A. red B. blue', [
      [20, 20, 200],
      [200, 200, 200],
    ]);
    req.generation = { maxNewTokens: 12, temperature: 0, topP: 0.5 };
    const answer = await backend().generate(req);
    expect(answer.text).toBe('B');
    const rec = server.requests[0]!;
    expect(rec.path).toBe('/v1beta/models/gemini-2.5-flash:generateContent');
    expect(rec.images.map((i) => i.mimeType)).toEqual(['image/png', 'image/png']);
    expect(Buffer.compare(rec.images[1]!.bytes, Buffer.from(req.images[1]!.data))).toBe(0);
    expect(rec.promptText).toBe(req.prompt);
    // A thinking model: its thoughts get their own budget on top of the answer's 12 tokens.
    expect(rec.body?.generationConfig).toMatchObject({ maxOutputTokens: 12 + DEFAULT_THINKING_BUDGET, thinkingConfig: { thinkingBudget: DEFAULT_THINKING_BUDGET }, temperature: 0, topP: 0.5 });
    expect(isThinkingModel('gemini-2.0-flash')).toBe(false);
    expect(isThinkingModel('gemini-2.5-pro')).toBe(true);
    expect(answer.usage).toEqual({ inputTokens: rec.usage!.promptTokenCount, outputTokens: rec.usage!.candidatesTokenCount });
    // createBackend with the worker's key and endpoint
    server.script({ text: 'A' });
    const b = createBackend({ name: 'gemini', backend: 'gemini', model: 'gemini-2.5-pro' }, { geminiApiKey: KEY, geminiBaseUrl: server.baseUrl });
    await b.check();
    expect((await b.generate(await request())).text).toBe('A');
  });

  it('check(): an unknown model is not_found naming it; no key fails at creation', async () => {
    await backend().check();
    const e = await failure(backend('gemini-9.9-ultra').check(), 'not_found');
    expect(e.message).toContain('"gemini-9.9-ultra"');
    expect(e.message).toContain(server.baseUrl);
    await failure(backend('gemini-9.9-ultra').generate(await request()), 'not_found');
    expect(() => createBackend({ name: 'g', backend: 'gemini', model: 'gemini-2.5-flash' }, {})).toThrow(/GEMINI_API_KEY/);
  });

  it('HTTP failures map onto the backend codes (the relabel classification, reused)', async () => {
    server.script('429', '503', '401', '400');
    const limited = await failure(backend().generate(await request()), 'rate_limited');
    expect(limited.retryAfterMs).toBe(2000);
    expect(limited.nextRetryDelay).toBe(2000);
    await failure(backend().generate(await request()), 'server');
    const auth = await failure(backend().generate(await request()), 'auth');
    expect(auth.message).not.toContain(KEY);
    await failure(backend().generate(await request()), 'bad_request');
    await failure(backend('gemini-2.5-flash', `${KEY}-wrong`).check(), 'auth');
    const port = await closedPort();
    await failure(createGeminiBackend({ apiKey: KEY, model: 'gemini-2.5-flash', baseUrl: `http://127.0.0.1:${port}` }).generate(await request()), 'unreachable');
  });

  it('the other real 429 and 400 bodies: no RetryInfo (normal backoff), a per-day quota (fatal), "API Key not found" (auth)', async () => {
    server.script('429_no_retry_info', '429_per_day', 'api_key_not_found');
    const limited = await failure(backend().generate(await request()), 'rate_limited');
    expect(limited.retryAfterMs).toBeUndefined();
    const daily = await failure(backend().generate(await request()), 'quota_exhausted');
    expect(daily.message).toContain('GenerateRequestsPerDayPerProjectPerModel-FreeTier');
    expect(daily.retryAfterMs).toBeUndefined();
    expect(FATAL_BACKEND_ERRORS.has('quota_exhausted')).toBe(true);
    const auth = await failure(backend().generate(await request()), 'auth');
    expect(auth.message).toContain("check GEMINI_API_KEY in the worker's environment");
    expect(auth.message).not.toContain(KEY);
  });

  it('thought summaries are not part of the answer; usage counts the thoughts', async () => {
    server.script({ text: 'B', thoughts: ['**Comparing colours**\nThe first image is blue, so A is wrong.'] });
    const answer = await backend().generate(await request());
    expect(answer.text).toBe('B');
    expect(answer.truncated).toBeUndefined();
    const usage = server.requests[0]!.usage!;
    expect(usage.thoughtsTokenCount).toBeGreaterThan(0);
    expect(answer.usage).toEqual({ inputTokens: usage.promptTokenCount, outputTokens: usage.candidatesTokenCount! + usage.thoughtsTokenCount! });
  });

  it('MAX_TOKENS: the text so far with truncated: true, also when a thinking model sent no parts at all', async () => {
    server.script({ text: 'The answer is', finishReason: 'MAX_TOKENS' }, 'max_tokens_thinking');
    expect(await backend().generate(await request())).toMatchObject({ text: 'The answer is', truncated: true });
    const thoughtOut = await backend().generate(await request());
    expect(thoughtOut).toMatchObject({ text: '', truncated: true });
    expect(thoughtOut.usage).toEqual({ inputTokens: server.requests[1]!.usage!.promptTokenCount, outputTokens: 8 + DEFAULT_THINKING_BUDGET });
  });

  it('an empty answer (no parts) is an empty text; a withheld answer or blocked prompt comes back as withheld, naming the reason', async () => {
    server.script('empty', 'safety', 'recitation', { text: '', finishReason: 'SPII' }, 'prompt_blocked', { blockReason: 'BLOCKLIST' }, { text: '', finishReason: 'OTHER' });
    expect(await backend().generate(await request())).toMatchObject({ text: '' });
    for (const reason of ['finishReason SAFETY; blocked categories: HARM_CATEGORY_DANGEROUS_CONTENT', 'finishReason RECITATION', 'finishReason SPII', 'blockReason PROHIBITED_CONTENT', 'blockReason BLOCKLIST']) {
      const blocked = await backend().generate(await request());
      expect(blocked.text).toBe('');
      expect(blocked.withheld).toContain(reason);
      expect(blocked.withheld).toContain('"gemini-2.5-flash"');
    }
    const other = await failure(backend().generate(await request()), 'malformed');
    expect(other.message).toContain('finishReason OTHER');
  });
});

/** Adapters made with peft: one for the tiny model (random non-zero LoRA weights), one for a tiny model with another hidden size. */
const MAKE_ADAPTERS = `
import shutil, sys, torch
from pathlib import Path
from peft import LoraConfig, get_peft_model
from transformers import AutoConfig, AutoModelForImageTextToText
base, good, other, foreign = map(Path, sys.argv[1:5])
lora = LoraConfig(r=4, lora_alpha=16, target_modules=r".*language_model.*\\.(q_proj|v_proj|o_proj)", init_lora_weights=False)
torch.manual_seed(1)
get_peft_model(AutoModelForImageTextToText.from_pretrained(base), lora).save_pretrained(good)
cfg = AutoConfig.from_pretrained(base)
cfg.text_config.hidden_size = 96
cfg.text_config.intermediate_size = 192
AutoModelForImageTextToText.from_config(cfg).save_pretrained(other)
for f in base.iterdir():
    if f.name not in ("config.json", "model.safetensors", "generation_config.json"):
        shutil.copy(f, other / f.name)
get_peft_model(AutoModelForImageTextToText.from_pretrained(other), lora).save_pretrained(foreign)
`;

// Each test starts a Python inference process on the tiny model (5-13 s on an idle 2-core
// machine); 120 s per test leaves ~10x for a loaded one.
describe('local backend: python -m vla_py.infer on a tiny VLM (real transformers + peft)', { timeout: 120_000 }, () => {
  let dir: string;
  let python: PythonEnv;
  let baseModel: string;
  const paths = { good: '', other: '', foreign: '' };
  const opened: InferenceBackend[] = [];
  const local = (options: { adapter?: string; baseModel?: string; batchWindowMs?: number } = {}): LocalBackend => {
    const b = createLocalBackend({ baseModel: options.baseModel ?? baseModel, python: () => Promise.resolve(python), device: 'cpu', batchWindowMs: options.batchWindowMs ?? 50, ...(options.adapter && { adapter: options.adapter }) });
    opened.push(b);
    return b;
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'vla-vqa-backends-'));
    python = await ensurePythonEnv(loadConfig().cacheDir);
    baseModel = await buildTinyModel(join(dir, 'tiny-vlm'), loadConfig().cacheDir);
    paths.good = join(dir, 'adapter-good');
    paths.other = join(dir, 'tiny-vlm-96');
    paths.foreign = join(dir, 'adapter-foreign');
    await exec(python.python, ['-c', MAKE_ADAPTERS, baseModel, paths.good, paths.other, paths.foreign], { env: python.env });
  }, 180_000);
  afterAll(async () => {
    await Promise.all(opened.map((b) => b.close()));
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('answers a burst of concurrent requests, which the Python side batches', async () => {
    // No check() first: the concurrent first requests share one spawn.
    const b = local();
    const reqs = await Promise.all(Array.from({ length: 6 }, (_, i) => request(`Question ${i}: what is in the image?`, [[40 * i, 100, 200 - 20 * i]], 3 + (i % 3))));
    const answers = await Promise.all(reqs.map((r) => b.generateRaw(r)));
    answers.forEach((a, i) => {
      expect(typeof a.text).toBe('string');
      expect(a.inputTokens).toBeGreaterThan(4);
      expect(a.outputTokens).toBeGreaterThan(0);
      expect(a.outputTokens).toBeLessThanOrEqual(reqs[i]!.generation.maxNewTokens);
      // An answer that ended before its limit was not cut.
      if (a.outputTokens < reqs[i]!.generation.maxNewTokens) expect(a.truncated).toBe(false);
    });
    // 3 to 5 new tokens are too few for the tiny model's random weights to finish an answer.
    expect(answers.some((a) => a.truncated)).toBe(true);
    expect(Math.max(...answers.map((a) => a.batchSize))).toBeGreaterThan(1);
    expect(b.info).toMatchObject({ ready: true, model: baseModel, adapter: null, device: 'cpu' });
    // The interface's generate() gives text and usage; a lone request is a batch of one.
    const one = await b.generate(reqs[0]!);
    expect(one).toEqual({
      text: answers[0]!.text,
      usage: { inputTokens: answers[0]!.inputTokens, outputTokens: answers[0]!.outputTokens },
      ...(answers[0]!.truncated && { truncated: true }),
    });
  });

  it('an adapter changes the logits of the answer', async () => {
    const req = await request();
    const base = await local().generateRaw(req, { logprobs: true });
    const adapted = local({ adapter: paths.good });
    const withAdapter = await adapted.generateRaw(req, { logprobs: true });
    expect(adapted.info).toMatchObject({ adapter: paths.good, adapterBase: baseModel });
    expect(base.logprobs).toHaveLength(base.outputTokens);
    expect(withAdapter.logprobs).toHaveLength(withAdapter.outputTokens);
    const diff = Math.max(...base.logprobs!.map((lp, i) => Math.abs(lp - (withAdapter.logprobs![i] ?? 0))));
    expect(diff).toBeGreaterThan(1e-3);
  });

  it('an adapter made for another base model: adapter_mismatch naming both', async () => {
    const b = local({ adapter: paths.foreign });
    const e = await failure(b.check(), 'adapter_mismatch');
    expect(e.message).toContain(paths.foreign);
    expect(e.message).toContain(paths.other);
    expect(e.message).toContain(baseModel);
    await failure(b.generate(await request()), 'adapter_mismatch');
  });

  it('a missing base model: not_found naming the directory; createBackend needs a Python environment', async () => {
    const missing = join(dir, 'no-such-model');
    const e = await failure(local({ baseModel: missing }).check(), 'not_found');
    expect(e.message).toContain(`base model directory ${missing} does not exist`);
    expect(() => createBackend({ name: 'local', backend: 'local', baseModel: missing }, {})).toThrow(BackendError);
    expect(() => createBackend({ name: 'local', backend: 'local', baseModel: 's3://bucket/model' }, { python: () => Promise.resolve(python) })).toThrow(/object URI/);
  });

  it('a crashed child rejects the pending requests with its last stderr lines; the next request starts a new one; close() stops it', async () => {
    const b = local({ batchWindowMs: 300 });
    await b.check();
    const pid = b.pid!;
    const pending = b.generate(await request());
    await new Promise((resolve) => setTimeout(resolve, 50));
    process.kill(-pid, 'SIGKILL');
    const e = await failure(pending, 'server');
    expect(e.message).toContain('killed by SIGKILL');
    expect(e.message).toContain('[vla_py.infer] loaded');
    const again = await b.generate(await request());
    expect(typeof again.text).toBe('string');
    const second = b.pid!;
    expect(second).not.toBe(pid);
    await b.close();
    expect(isAlive(second)).toBe(false);
    await failure(b.generate(await request()), 'server');
  });
});
