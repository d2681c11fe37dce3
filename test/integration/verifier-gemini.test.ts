import { randomUUID } from 'node:crypto';
import { ApplicationFailure } from '@temporalio/common';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { GeminiFailure } from '../../activities/gemini/errors';
import { createWorld, renderFrame, state7, type World } from '../../activities/robot/sim';
import {
  createGeminiVerifier,
  VERIFIER_ANSWER_JSON_SCHEMA,
  VERIFIER_PROMPT_MARKERS,
  VERIFIER_PROMPT_VERSION,
  VerifierError,
  VerifierFailure,
  type GeminiVerifierOptions,
  type VerifierFrame,
  type VerifierRequest,
} from '../../activities/robot/verifier';
import { createGeminiServer, type GeminiServer, type RecordedRequest } from '../fixtures/gemini-server';

const API_KEY = `AIzaTest-${randomUUID()}`;
const MODEL = 'gemini-2.5-pro';
const SUBTASKS = ['Move to carrot', 'Grasp carrot', 'Move to plate', 'Release carrot', 'Move away from plate'];

/** A rendered simulator frame (a real JPEG) with the state of that world. */
async function frame(world: World): Promise<VerifierFrame> {
  const jpeg = await renderFrame(world, 'image_0');
  return { image: new Uint8Array(jpeg.buffer, jpeg.byteOffset, jpeg.byteLength), mimeType: 'image/jpeg', state: [...state7(world)] };
}

const marker = (req: RecordedRequest, re: RegExp): unknown => {
  const m = re.exec(req.promptText)?.[1];
  return m === undefined ? undefined : JSON.parse(m);
};

async function failure(promise: Promise<unknown>): Promise<ApplicationFailure> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ApplicationFailure);
  return err as ApplicationFailure;
}

describe('Gemini verifier against a local Gemini-wire server (real @google/genai client)', () => {
  let server: GeminiServer;
  let request: VerifierRequest;
  const verifier = (overrides: Partial<GeminiVerifierOptions> = {}) => createGeminiVerifier({ apiKey: API_KEY, model: MODEL, baseUrl: server.baseUrl, timeoutMs: 10_000, ...overrides });

  beforeAll(async () => {
    // Unscripted requests: a "model" that reads the current subtask off the prompt and accepts only grasps.
    server = await createGeminiServer({
      apiKey: API_KEY,
      respond: (req) => {
        const current = marker(req, VERIFIER_PROMPT_MARKERS.current);
        return typeof current === 'string' && current.startsWith('Grasp')
          ? { text: JSON.stringify({ decision: 'proceed', reason: 'the carrot is between the closed fingers' }) }
          : { text: JSON.stringify({ decision: 'retry', reason: 'the gripper is about 3 cm above the carrot, not around it' }) };
      },
    });
    const world = createWorld([
      { kind: 'carrot', x: 0.3, y: 0.08 },
      { kind: 'plate', x: 0.32, y: -0.1 },
    ]);
    const moved: World = { ...world, ee: { ...world.ee, pos: [0.3, 0.08, 0.05] } };
    request = { instruction: 'put the carrot on the plate', subtasks: SUBTASKS, subtaskIndex: 0, before: await frame(world), after: await frame(moved) };
  });
  afterAll(async () => {
    await server.close();
  });
  beforeEach(() => {
    server.reset();
  });

  it('sends both frames inline, the plan with current and next subtask, the JSON schema and temperature 0', async () => {
    const answer = await verifier().verify(request);
    expect(answer).toEqual({
      verdict: { decision: 'retry', reason: 'the gripper is about 3 cm above the carrot, not around it' },
      verifier: `gemini:${MODEL}`,
      promptVersion: VERIFIER_PROMPT_VERSION,
      raw: '{"decision":"retry","reason":"the gripper is about 3 cm above the carrot, not around it"}',
      latencyMs: expect.any(Number) as unknown,
      // The tokens the server billed, as it reported them: the worker counts them (vla_gemini_* metrics).
      usage: { inputTokens: server.requests[0]!.usage!.promptTokenCount, outputTokens: (server.requests[0]!.usage!.candidatesTokenCount ?? 0) + (server.requests[0]!.usage!.thoughtsTokenCount ?? 0) },
    });
    expect(server.requests).toHaveLength(1);
    const sent = server.requests[0]!;
    expect(sent).toMatchObject({ model: MODEL, apiKeyHeader: true, imageCount: 2 });
    // BEFORE first, then AFTER, byte for byte.
    expect(sent.images.map((i) => i.mimeType)).toEqual(['image/jpeg', 'image/jpeg']);
    expect(sent.images[0]!.bytes.equals(Buffer.from(request.before.image))).toBe(true);
    expect(sent.images[1]!.bytes.equals(Buffer.from(request.after.image))).toBe(true);
    expect(sent.images[0]!.bytes.equals(sent.images[1]!.bytes)).toBe(false);
    const parts = sent.body?.contents[0]?.parts ?? [];
    expect(parts.map((p) => (p.inlineData ? 'image' : p.text))).toEqual([expect.any(String), 'BEFORE the chunk:', 'image', 'AFTER the chunk:', 'image', expect.any(String)]);

    expect(marker(sent, VERIFIER_PROMPT_MARKERS.instruction)).toBe('put the carrot on the plate');
    expect(marker(sent, VERIFIER_PROMPT_MARKERS.current)).toBe('Move to carrot');
    expect(marker(sent, VERIFIER_PROMPT_MARKERS.next)).toBe('Grasp carrot');
    for (const [i, s] of SUBTASKS.entries()) expect(sent.promptText).toContain(`${i + 1}. ${s}`);
    expect(sent.promptText).toContain('Robot state AFTER: x 0.300, y 0.080, z 0.050 m; gripper 1.00 (open)');

    const config = sent.body?.generationConfig;
    expect(config).toMatchObject({ responseMimeType: 'application/json', temperature: 0 });
    expect(config?.responseJsonSchema).toEqual(VERIFIER_ANSWER_JSON_SCHEMA);
    expect(VERIFIER_ANSWER_JSON_SCHEMA).toMatchObject({ type: 'object', required: ['decision', 'reason'], properties: { decision: { enum: ['proceed', 'retry'] } } });
    const system = (sent.body?.systemInstruction?.parts ?? []).map((p) => p.text).join('\n');
    expect(system).toContain('"Move to X" followed by "Grasp X" is complete only if the open gripper is aligned for that grasp');
    expect(system).toContain('+x is forward');
  });

  it('parses proceed, and marks the last subtask as having no next one', async () => {
    const grasp = await verifier().verify({ ...request, subtaskIndex: 1 });
    expect(grasp.verdict).toEqual({ decision: 'proceed', reason: 'the carrot is between the closed fingers' });
    expect(marker(server.requests[0]!, VERIFIER_PROMPT_MARKERS.current)).toBe('Grasp carrot');

    await verifier().verify({ ...request, subtaskIndex: SUBTASKS.length - 1 });
    const last = server.requests[1]!;
    expect(VERIFIER_PROMPT_MARKERS.next.exec(last.promptText)?.[1]).toBe('null');
    expect(last.promptText).toContain('The current subtask is the last one.');
  });

  it('never takes thought summaries (thought: true, with signatures) for the answer', async () => {
    server.script({ text: JSON.stringify({ decision: 'proceed', reason: 'the carrot is on the plate' }), thoughts: ['**Checking the AFTER frame**\n{"decision": "retry"', 'The carrot rests on the plate.'] });
    const answer = await verifier().verify(request);
    expect(answer.verdict).toEqual({ decision: 'proceed', reason: 'the carrot is on the plate' });
    expect(answer.raw).toBe(JSON.stringify({ decision: 'proceed', reason: 'the carrot is on the plate' }));
  });

  it('accepts a fenced JSON answer', async () => {
    server.script({ text: '```json\n{"decision": "proceed", "reason": "the carrot rests on the plate"}\n```' });
    expect((await verifier().verify(request)).verdict).toEqual({ decision: 'proceed', reason: 'the carrot rests on the plate' });
  });

  it('turns unusable answers into VerifierErrors that say what was wrong and quote the answer', async () => {
    server.script(
      'malformed_json',
      { text: '{"decision": "maybe", "reason": "hard to tell"}' },
      { text: '{"decision": "proceed", "reason": ""}' },
      'empty',
      'max_tokens',
      'max_tokens_thinking',
      'safety',
      'recitation',
      { text: '', finishReason: 'PROHIBITED_CONTENT' },
      'prompt_blocked',
      { blockReason: 'BLOCKLIST' },
      { text: '', finishReason: 'LANGUAGE' },
    );
    const cases: [VerifierError['kind'], VerifierFailure, RegExp][] = [
      ['not_json', VerifierFailure.MalformedAnswer, /the answer is not valid JSON .*; the answer began with: "\{\\"segments\\"/],
      ['schema_violation', VerifierFailure.MalformedAnswer, /decision: Invalid option: expected one of "proceed"\|"retry".*the answer began with: "\{\\"decision\\": \\"maybe\\"/],
      ['schema_violation', VerifierFailure.MalformedAnswer, /reason: Too small/],
      ['empty', VerifierFailure.MalformedAnswer, /the answer was empty/],
      ['max_tokens', VerifierFailure.MalformedAnswer, /finishReason MAX_TOKENS, maxOutputTokens 8192.*the answer began with/],
      // A thinking model that spent the limit thinking sends no parts: still a typed truncation, not a crash.
      ['max_tokens', VerifierFailure.MalformedAnswer, /finishReason MAX_TOKENS, maxOutputTokens 8192, thinking included; 8192 tokens were spent thinking and no answer was written\)$/],
      ['safety_block', VerifierFailure.AnswerBlocked, /withheld by Gemini \(finishReason SAFETY; blocked categories: HARM_CATEGORY_DANGEROUS_CONTENT \(HIGH\)\)/],
      ['safety_block', VerifierFailure.AnswerBlocked, /withheld by Gemini \(finishReason RECITATION\)/],
      ['safety_block', VerifierFailure.AnswerBlocked, /withheld by Gemini \(finishReason PROHIBITED_CONTENT\)/],
      ['prompt_blocked', VerifierFailure.AnswerBlocked, /blockReason PROHIBITED_CONTENT/],
      ['prompt_blocked', VerifierFailure.AnswerBlocked, /blockReason BLOCKLIST/],
      ['stopped_early', VerifierFailure.MalformedAnswer, /stopped early \(finishReason LANGUAGE\)/],
    ];
    for (const [kind, type, message] of cases) {
      const err = await failure(verifier().verify(request));
      expect(err).toBeInstanceOf(VerifierError);
      expect(err).toMatchObject({ kind, type, nonRetryable: type !== VerifierFailure.MalformedAnswer });
      expect(err.message).toMatch(message);
    }
    expect(server.requests).toHaveLength(cases.length);
  });

  it('keeps the Gemini API error classes: a wrong key is not retryable, a rate limit is', async () => {
    const auth = await failure(createGeminiVerifier({ apiKey: 'AIza-wrong-key-0123456789abcdef', model: MODEL, baseUrl: server.baseUrl }).verify(request));
    expect(auth).toMatchObject({ type: GeminiFailure.Auth, nonRetryable: true });
    expect(auth.message).toContain('API key not valid');
    expect(auth.message).not.toContain('AIza-wrong-key');

    server.script('429', '503', '404');
    const limited = await failure(verifier().verify(request));
    expect(limited).toMatchObject({ type: GeminiFailure.RateLimited, nonRetryable: false, nextRetryDelay: 2000 });
    expect(await failure(verifier().verify(request))).toMatchObject({ type: GeminiFailure.Unavailable, nonRetryable: false });
    expect(await failure(verifier().verify(request))).toMatchObject({ type: GeminiFailure.UnknownModel, nonRetryable: true });
    expect(await failure(verifier({ model: 'gemini-0-none' }).verify(request))).toMatchObject({ type: GeminiFailure.UnknownModel, nonRetryable: true });
  });

  it('classifies the other real 429 and 400 bodies: no RetryInfo, a per-day quota, "API Key not found"', async () => {
    server.script('429_no_retry_info', '429_per_day', 'api_key_not_found');
    const noDelay = await failure(verifier().verify(request));
    expect(noDelay).toMatchObject({ type: GeminiFailure.RateLimited, nonRetryable: false });
    expect(noDelay.nextRetryDelay).toBeUndefined();
    const daily = await failure(verifier().verify(request));
    expect(daily).toMatchObject({ type: GeminiFailure.QuotaExhausted, nonRetryable: true });
    expect(daily.message).toContain('GenerateRequestsPerDayPerProjectPerModel-FreeTier');
    const notFound = await failure(verifier().verify(request));
    expect(notFound).toMatchObject({ type: GeminiFailure.Auth, nonRetryable: true });
    expect(notFound.message).toContain("check GEMINI_API_KEY in the worker's environment");
    expect(notFound.message).not.toContain(API_KEY);
  });

  it('refuses a bad request before calling the API', async () => {
    const notJpeg: VerifierFrame = { ...request.after, image: new Uint8Array([0x89, 0x50, 0x4e, 0x47, 1, 2, 3]) };
    expect(await failure(verifier().verify({ ...request, after: notJpeg }))).toMatchObject({ type: VerifierFailure.BadRequest, nonRetryable: true, message: expect.stringContaining('the after frame is not a JPEG') as unknown });
    expect(await failure(verifier().verify({ ...request, subtaskIndex: 5 }))).toMatchObject({ type: VerifierFailure.BadRequest, nonRetryable: true });
    expect(server.requests).toHaveLength(0);
    expect(() => createGeminiVerifier({ apiKey: '', model: MODEL })).toThrow(expect.objectContaining({ type: GeminiFailure.Auth, nonRetryable: true }) as Error);
  });

  it('gives up on a hanging request when its signal is aborted, with the abort reason', async () => {
    server.script('hang');
    const controller = new AbortController();
    const pending = verifier().verify(request, controller.signal);
    await expect.poll(() => server.requests.length).toBe(1);
    const reason = new Error('activity cancelled');
    controller.abort(reason);
    await expect(pending).rejects.toBe(reason);
  });
});
