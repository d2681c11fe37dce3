import { randomUUID } from 'node:crypto';
import { ApplicationFailure } from '@temporalio/common';
import sharp from 'sharp';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { CleanedTrajectory, LabelOutcome } from '../../data-schemas/relabel';
import { LabelOutcome as LabelOutcomeSchema, SegmentLabel } from '../../data-schemas/relabel';
import { classifyGeminiError, GeminiFailure, isFatalGeminiFailure, parseRetryDelayMs, scrubSecrets } from '../../activities/gemini/errors';
import { createGeminiLabeler, type GeminiLabelerOptions, type LabelInput } from '../../activities/relabel/gemini/labeler';
import { priceFor } from '../../activities/gemini/pricing';
import { keyFrameSteps, PROMPT_MARKERS } from '../../activities/relabel/gemini/prompt';
import { GEMINI_ANSWER_JSON_SCHEMA, parseGeminiAnswer } from '../../activities/relabel/gemini/response';
import { createGeminiServer, defaultAnswer, type GeminiServer } from '../fixtures/gemini-server';

const API_KEY = `AIzaTest-${randomUUID()}`;
const THOUGHTS = 40;

/** 20 steps: approach forward, descend, close, lift, carry left, open. */
function trajectory(): CleanedTrajectory {
  const translation: [number, number, number][] = [];
  const gripper: (0 | 1)[] = [];
  const push = (n: number, d: [number, number, number], g: 0 | 1): void => {
    for (let i = 0; i < n; i++) {
      translation.push(d);
      gripper.push(g);
    }
  };
  push(5, [0.012, 0.002, 0], 1);
  push(3, [0, 0, -0.015], 1);
  push(2, [0, 0, 0], 0);
  push(4, [0, 0, 0.012], 0);
  push(4, [0, 0.013, 0], 0);
  push(2, [0, 0, 0], 1);
  return { steps: translation.length, translation, gripper };
}

/** Bridge-sized (256x256) main-camera JPEGs, distinct per step. */
async function frames(steps: number): Promise<{ step: number; jpeg: Uint8Array }[]> {
  return Promise.all(
    keyFrameSteps(steps).map(async (step) => ({
      step,
      jpeg: await sharp({ create: { width: 256, height: 256, channels: 3, background: { r: 20 * step, g: 120, b: 255 - 10 * step } } })
        .jpeg({ quality: 95 })
        .toBuffer(),
    })),
  );
}

async function rejection(promise: Promise<unknown>): Promise<ApplicationFailure> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ApplicationFailure);
  return err as ApplicationFailure;
}

function expectNoKey(failure: ApplicationFailure): void {
  expect(failure.message).not.toContain(API_KEY);
  expect(JSON.stringify({ message: failure.message, details: failure.details })).not.toContain(API_KEY);
}

function expectProblem(outcome: LabelOutcome, kind: string): string {
  expect(LabelOutcomeSchema.safeParse(outcome).success).toBe(true);
  if (outcome.ok) throw new Error(`expected a ${kind} outcome, got segments`);
  expect(outcome.kind).toBe(kind);
  return outcome.problem;
}

describe('Gemini labeler against a local Gemini-wire server (real @google/genai client)', () => {
  let server: GeminiServer;
  let input: LabelInput;
  const labeler = (overrides: Partial<GeminiLabelerOptions> = {}) =>
    createGeminiLabeler({ apiKey: API_KEY, model: 'gemini-2.5-flash', baseUrl: server.baseUrl, timeoutMs: 10_000, ...overrides });

  beforeAll(async () => {
    server = await createGeminiServer({ apiKey: API_KEY, thoughtsTokens: THOUGHTS });
    const cleaned = trajectory();
    input = { instruction: 'put the carrot on the plate', cleaned, keyFrames: await frames(cleaned.steps), feedback: [] };
  });
  afterAll(async () => {
    await server.close();
  });
  beforeEach(() => {
    server.reset();
  });

  it('labels a trajectory: segments cover [0, T), usage and cost are counted, frames are inlined small', async () => {
    const outcome = await labeler().label(input);
    if (!outcome.ok) throw new Error(`expected segments, got ${outcome.kind}: ${outcome.problem}`);
    expect(LabelOutcomeSchema.safeParse(outcome).success).toBe(true);
    outcome.segments.forEach((s) => expect(SegmentLabel.safeParse(s).success).toBe(true));
    expect(outcome.segments[0]!.start).toBe(0);
    expect(outcome.segments.at(-1)!.end).toBe(input.cleaned.steps);
    outcome.segments.slice(1).forEach((s, i) => expect(s.start).toBe(outcome.segments[i]!.end));
    expect(outcome.segments[0]!.subtask).toBe('Move to carrot');

    expect(server.requests).toHaveLength(1);
    const req = server.requests[0]!;
    expect(req.path).toBe('/v1beta/models/gemini-2.5-flash:generateContent');
    expect(req.apiKeyHeader).toBe(true);
    expect(req.apiKeyQuery).toBe(false);
    expect(req.serverTimeout).toBe('10');
    expect(req.steps).toBe(input.cleaned.steps);
    expect(req.instruction).toBe(input.instruction);

    // Usage: prompt tokens as reported, output = candidates + thoughts, priced as gemini-2.5-flash.
    const reported = req.usage!;
    expect(outcome.usage.inputTokens).toBe(reported.promptTokenCount);
    expect(outcome.usage.inputTokens).toBeGreaterThan(8 * 258);
    expect(outcome.usage.outputTokens).toBe(reported.candidatesTokenCount! + THOUGHTS);
    expect(outcome.usage.costUsd).toBeCloseTo((outcome.usage.inputTokens * 0.3 + outcome.usage.outputTokens * 2.5) / 1e6, 8);

    // Structured output: JSON mode with the JSON Schema generated from the zod answer schema.
    const config = req.body!.generationConfig!;
    expect(config.responseMimeType).toBe('application/json');
    expect(config.responseJsonSchema).toEqual(GEMINI_ANSWER_JSON_SCHEMA);
    expect(config.responseSchema).toBeUndefined();
    expect(config.temperature).toBe(0.2);
    expect(req.body!.systemInstruction?.parts[0]?.text).toContain('+x is forward');

    // Key frames: every one inlined as image/jpeg, downsampled to at most 224 px, labelled by step.
    expect(req.images).toHaveLength(input.keyFrames.length);
    for (const image of req.images) {
      expect(image.mimeType).toBe('image/jpeg');
      const meta = await sharp(image.bytes).metadata();
      expect(meta.format).toBe('jpeg');
      expect(Math.max(meta.width, meta.height)).toBeLessThanOrEqual(224);
    }
    for (const { step } of input.keyFrames) expect(req.promptText).toContain(`Key frame at step ${step}:`);
    expect(req.promptText).toMatch(PROMPT_MARKERS.steps);
    expect(req.promptText).not.toContain('rejected');
  });

  it('sends earlier problems back in the next prompt', async () => {
    const first = await labeler().label({ ...input, feedback: [] });
    expect(first.ok).toBe(true);
    server.script('malformed_json');
    const bad = await labeler().label(input);
    const problem = expectProblem(bad, 'invalid_output');
    const retried = await labeler().label({ ...input, feedback: [problem, 'the last segment ends at step 19 but must end at 20'] });
    expect(retried.ok).toBe(true);
    const prompt = server.requests.at(-1)!.promptText;
    expect(prompt).toContain(`Your previous answer was rejected: ${problem}`);
    expect(prompt).toContain('Your previous answer was rejected: the last segment ends at step 19 but must end at 20');
  });

  describe('HTTP failures are thrown as classified ApplicationFailures; the SDK does not retry', () => {
    it('429 with RetryInfo: retryable, nextRetryDelay from the body', async () => {
      server.script('429');
      const failure = await rejection(labeler().label(input));
      expect(failure.type).toBe(GeminiFailure.RateLimited);
      expect(failure.nonRetryable).toBe(false);
      expect(failure.nextRetryDelay).toBe(2000);
      expect(failure.message).toContain('RESOURCE_EXHAUSTED');
      expect(server.requests).toHaveLength(1);
      expectNoKey(failure);
    });

    it('429 without RetryInfo: retryable, no nextRetryDelay, so the retry policy\'s own backoff applies', async () => {
      server.script('429_no_retry_info');
      const failure = await rejection(labeler().label(input));
      expect(failure.type).toBe(GeminiFailure.RateLimited);
      expect(failure.nonRetryable).toBe(false);
      expect(failure.nextRetryDelay).toBeUndefined();
      expect(isFatalGeminiFailure(failure.type)).toBe(false);
    });

    it('429 naming a per-day quota: non-retryable GeminiQuotaExhausted that stops the run, despite its short RetryInfo', async () => {
      server.script('429_per_day');
      const failure = await rejection(labeler().label(input));
      expect(failure.type).toBe(GeminiFailure.QuotaExhausted);
      expect(failure.nonRetryable).toBe(true);
      expect(failure.nextRetryDelay).toBeUndefined();
      expect(failure.message).toContain('GenerateRequestsPerDayPerProjectPerModel-FreeTier');
      expect(failure.message).toContain('until its daily reset');
      expect(isFatalGeminiFailure(failure.type)).toBe(true);
      expect(server.requests).toHaveLength(1);
      expectNoKey(failure);
    });

    it('503 and 500: retryable', async () => {
      server.script('503', '500');
      for (const status of ['503 UNAVAILABLE', '500 INTERNAL']) {
        const failure = await rejection(labeler().label(input));
        expect(failure.type).toBe(GeminiFailure.Unavailable);
        expect(failure.nonRetryable).toBe(false);
        expect(failure.message).toContain(status);
      }
      expect(server.requests).toHaveLength(2);
    });

    it('401 and a wrong key (Google: 400 API_KEY_INVALID): non-retryable GeminiAuth without the key', async () => {
      server.script('401');
      const scripted = await rejection(labeler().label(input));
      const wrongKey = await rejection(createGeminiLabeler({ apiKey: `${API_KEY}-wrong`, model: 'gemini-2.5-flash', baseUrl: server.baseUrl }).label(input));
      expect(server.requests.map((r) => r.reply)).toEqual(['401', 'api_key_invalid']);
      for (const failure of [scripted, wrongKey]) {
        expect(failure.type).toBe(GeminiFailure.Auth);
        expect(failure.nonRetryable).toBe(true);
        expect(failure.message).toContain("check GEMINI_API_KEY in the worker's environment");
        expect(isFatalGeminiFailure(failure.type)).toBe(true);
        expectNoKey(failure);
      }
      expect(wrongKey.message).not.toContain(`${API_KEY}-wrong`);
    });

    it('400 "API Key not found" without details: non-retryable GeminiAuth with the advice, not a malformed request', async () => {
      server.script('api_key_not_found');
      const failure = await rejection(labeler().label(input));
      expect(failure.type).toBe(GeminiFailure.Auth);
      expect(failure.nonRetryable).toBe(true);
      expect(failure.message).toContain('API Key not found');
      expect(failure.message).toContain("check GEMINI_API_KEY in the worker's environment");
      expectNoKey(failure);
    });

    it('unknown model: non-retryable GeminiUnknownModel naming the model', async () => {
      const failure = await rejection(labeler({ model: 'gemini-9.9-ultra' }).label(input));
      expect(server.requests[0]!.path).toBe('/v1beta/models/gemini-9.9-ultra:generateContent');
      expect(failure.type).toBe(GeminiFailure.UnknownModel);
      expect(failure.nonRetryable).toBe(true);
      expect(failure.message).toContain('"gemini-9.9-ultra"');
      expect(isFatalGeminiFailure(failure.type)).toBe(true);
    });

    it('400 INVALID_ARGUMENT: non-retryable GeminiBadRequest with Google\'s message', async () => {
      server.script('400');
      const failure = await rejection(labeler().label(input));
      expect(failure.type).toBe(GeminiFailure.BadRequest);
      expect(failure.nonRetryable).toBe(true);
      expect(failure.message).toContain('Invalid JSON payload received');
      expect(isFatalGeminiFailure(failure.type)).toBe(true);
    });

    it('a dropped connection and a timeout: retryable GeminiNetwork', async () => {
      server.script('drop_connection', 'hang');
      const dropped = await rejection(labeler().label(input));
      expect(dropped.type).toBe(GeminiFailure.Network);
      expect(dropped.nonRetryable).toBe(false);
      const timedOut = await rejection(labeler({ timeoutMs: 300 }).label(input));
      expect(timedOut.type).toBe(GeminiFailure.Network);
      expect(timedOut.nonRetryable).toBe(false);
      expect(timedOut.message).toContain('timed out');
      expect(isFatalGeminiFailure(timedOut.type)).toBe(false);
    });
  });

  describe('unusable answers are outcomes for a re-prompt, with usage', () => {
    it('malformed JSON: invalid_output', async () => {
      server.script('malformed_json');
      const problem = expectProblem(await labeler().label(input), 'invalid_output');
      expect(problem).toMatch(/^not valid JSON: /);
    });

    it('schema violation: invalid_output naming the field', async () => {
      server.script('schema_violation');
      const problem = expectProblem(await labeler().label(input), 'invalid_output');
      expect(problem).toContain('segments[0].motion_plan');
    });

    it('segments that leave a gap: invalid_output from the coverage check', async () => {
      server.script('bad_coverage');
      const problem = expectProblem(await labeler().label(input), 'invalid_output');
      expect(problem).toContain('is not covered');
    });

    it('an empty answer: invalid_output', async () => {
      server.script('empty');
      expectProblem(await labeler().label(input), 'invalid_output');
    });

    it('thought summaries (thought: true, with signatures) are not part of the answer; usage counts the thoughts', async () => {
      const expected = defaultAnswer({ steps: input.cleaned.steps, instruction: input.instruction, promptText: '' });
      server.script({ text: JSON.stringify(expected), thoughts: ['**Segmenting the motion**\nThe gripper closes at step 8, so a grasp segment ends there.', '{"segments": ['] });
      const outcome = await labeler().label(input);
      if (!outcome.ok) throw new Error(`expected segments, got ${outcome.kind}: ${outcome.problem}`);
      expect(outcome.segments.map((s) => s.subtask)).toEqual(expected.segments.map((s) => s.subtask));
      expect(outcome.usage.outputTokens).toBe(server.requests[0]!.usage!.candidatesTokenCount! + THOUGHTS);
    });

    it('safety finish and a blocked prompt: safety_block', async () => {
      server.script('safety', 'prompt_blocked');
      const answer = await labeler().label(input);
      expect(expectProblem(answer, 'safety_block')).toContain('HARM_CATEGORY_DANGEROUS_CONTENT');
      expect(answer.usage.inputTokens).toBeGreaterThan(0);
      expect(expectProblem(await labeler().label(input), 'safety_block')).toContain('PROHIBITED_CONTENT');
    });

    it('every blocking finish and prompt block (RECITATION, SPII, BLOCKLIST, ...) is a safety_block naming its reason', async () => {
      server.script('recitation', { text: '', finishReason: 'SPII' }, { text: '', finishReason: 'IMAGE_RECITATION' }, { blockReason: 'BLOCKLIST' }, { blockReason: 'OTHER' });
      for (const reason of ['finishReason RECITATION', 'finishReason SPII', 'finishReason IMAGE_RECITATION', 'blockReason BLOCKLIST', 'blockReason OTHER']) {
        expect(expectProblem(await labeler().label(input), 'safety_block')).toContain(reason);
      }
    });

    it('MAX_TOKENS of a thinking model (content without parts, no candidatesTokenCount): truncated, the thoughts counted and named', async () => {
      server.script('max_tokens_thinking');
      const outcome = await labeler({ maxOutputTokens: 600 }).label(input);
      const problem = expectProblem(outcome, 'truncated');
      expect(problem).toContain('after 600 output tokens, 600 of them thinking');
      expect(server.requests[0]!.usage).not.toHaveProperty('candidatesTokenCount');
      expect(outcome.usage.outputTokens).toBe(600);
      expect(outcome.usage.inputTokens).toBe(server.requests[0]!.usage!.promptTokenCount);
    });

    it('MAX_TOKENS: truncated, output tokens counted', async () => {
      server.script('max_tokens');
      const outcome = await labeler({ maxOutputTokens: 500 }).label(input);
      expect(expectProblem(outcome, 'truncated')).toContain('MAX_TOKENS');
      expect(outcome.usage.outputTokens).toBe(500);
      expect(server.requests[0]!.body!.generationConfig!.maxOutputTokens).toBe(500);
    });

    it('a fault scripted for one instruction hits that trajectory every time, and only it', async () => {
      server.scriptFor('"put the spoon on the towel"', 'safety');
      const spoon = { ...input, instruction: 'put the spoon on the towel' };
      for (let i = 0; i < 3; i++) expectProblem(await labeler().label(spoon), 'safety_block');
      expect((await labeler().label(input)).ok).toBe(true);
      expect(server.requests.map((r) => r.reply)).toEqual(['safety', 'safety', 'safety', 'default']);
    });

    it('a fault scripted for the n-th request', async () => {
      server.scriptNth(2, '503');
      expect((await labeler().label(input)).ok).toBe(true);
      expect((await rejection(labeler().label(input))).type).toBe(GeminiFailure.Unavailable);
      expect((await labeler().label(input)).ok).toBe(true);
    });
  });

  it('serves many concurrent requests with a fixed latency and counts them', async () => {
    server.setLatency(50);
    try {
      const outcomes = await Promise.all(Array.from({ length: 20 }, () => labeler().label(input)));
      expect(outcomes.every((o) => o.ok)).toBe(true);
      const stats = server.stats();
      expect(stats.total).toBe(20);
      expect(stats.maxInFlight).toBeGreaterThan(1);
      expect(stats.perSecond.reduce((a, b) => a + b, 0)).toBe(20);
    } finally {
      server.setLatency(0);
    }
  });
});

describe('Gemini labeler pure parts', () => {
  it('parseGeminiAnswer maps snake_case segments and checks coverage', () => {
    const ok = parseGeminiAnswer(
      JSON.stringify({ segments: [{ start_step: 0, end_step: 3, subtask: 'Move to lid handle', motion_plan: 'Move forward.' }, { start_step: 3, end_step: 5, subtask: 'Grasp lid handle', motion_plan: 'Close the gripper.' }] }),
      5,
    );
    expect(ok).toEqual({
      ok: true,
      segments: [
        { start: 0, end: 3, subtask: 'Move to lid handle', motionPlan: 'Move forward.' },
        { start: 3, end: 5, subtask: 'Grasp lid handle', motionPlan: 'Close the gripper.' },
      ],
    });
    const overlap = parseGeminiAnswer(JSON.stringify({ segments: [{ start_step: 0, end_step: 3, subtask: 'a', motion_plan: 'b' }, { start_step: 2, end_step: 5, subtask: 'c', motion_plan: 'd' }] }), 5);
    expect(overlap.ok === false && overlap.problem).toContain('overlaps');
    const short = parseGeminiAnswer(JSON.stringify({ segments: [{ start_step: 0, end_step: 4, subtask: 'a', motion_plan: 'b' }] }), 5);
    expect(short.ok === false && short.problem).toContain('must end at 5');
    const fenced = parseGeminiAnswer('```json\n{"segments":[{"start_step":0,"end_step":5,"subtask":"a","motion_plan":"b"}]}\n```', 5);
    expect(fenced.ok).toBe(true);
  });

  it('the JSON Schema has no $schema and forbids extra fields', () => {
    expect(GEMINI_ANSWER_JSON_SCHEMA.$schema).toBeUndefined();
    expect(GEMINI_ANSWER_JSON_SCHEMA.additionalProperties).toBe(false);
    expect(GEMINI_ANSWER_JSON_SCHEMA.required).toEqual(['segments']);
  });

  it('scrubs keys, parses RetryInfo delays, prices models', () => {
    expect(scrubSecrets(`GET https://x/v1beta/models/m?key=${API_KEY}&alt=sse`)).not.toContain(API_KEY);
    expect(scrubSecrets(`bad ${API_KEY}`, [API_KEY])).toBe('bad [redacted]');
    expect(parseRetryDelayMs('17s')).toBe(17_000);
    expect(parseRetryDelayMs('0.250s')).toBe(250);
    expect(parseRetryDelayMs(undefined)).toBeUndefined();
    expect(priceFor('gemini-2.5-flash-lite-preview-06-17')).toEqual({ price: { inputUsdPerMTok: 0.1, outputUsdPerMTok: 0.4 }, known: true });
    expect(priceFor('gemini-2.5-pro')).toEqual({ price: { inputUsdPerMTok: 1.25, outputUsdPerMTok: 10 }, known: true });
    expect(priceFor('gemini-3-flash').known).toBe(false);
    const network = classifyGeminiError(new TypeError('fetch failed', { cause: Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }) }));
    expect([network.type, network.nonRetryable, network.message]).toEqual([GeminiFailure.Network, false, 'Gemini API unreachable: fetch failed (ECONNREFUSED)']);
  });

  it('keyFrameSteps spreads at most 8 frames over the trajectory, first and last included', () => {
    expect(keyFrameSteps(5)).toEqual([0, 1, 2, 3, 4]);
    const picked = keyFrameSteps(38);
    expect(picked).toHaveLength(8);
    expect(picked[0]).toBe(0);
    expect(picked.at(-1)).toBe(37);
  });
});
