import { randomUUID } from 'node:crypto';
import sharp from 'sharp';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ACTION_CHUNK_JSON_SCHEMA } from '../../activities/robot/policy/decoding';
import { digitsToActionTokens } from '../../activities/robot/policy/action-tokens';
import { createPolicyModel, decodeStage, type PolicyModel } from '../../activities/robot/policy/model';
import { repairPrompt } from '../../activities/robot/policy/parse';
import { BackendError, type BackendErrorCode } from '../../activities/vqa/backends/types';
import { measureFormatFailures } from '../../bench/episode-format';
import { ActionTokenMapping } from '../../data-schemas/training';
import { actionPrompt, motionPlanPrompt, PolicyStage, subtasksPrompt, type PolicyStage as Stage } from '../../data-schemas/prompts';
import { DEFAULT_THINKING_BUDGET } from '../../activities/vqa/backends/gemini';
import { createGeminiServer, type GeminiServer } from '../fixtures/gemini-server';
import { createOpenAIServer, type OpenAIServer } from '../fixtures/openai-server';

const INSTRUCTION = 'put the carrot on the plate';
const SUBTASK = 'Move to carrot';
const PLAN = 'Move forward about 4 cm and down about 6 cm, keeping the gripper open.';
const PROMPTS: Record<Stage, string> = {
  [PolicyStage.subtasks]: subtasksPrompt(INSTRUCTION),
  [PolicyStage.motionPlan]: motionPlanPrompt(SUBTASK),
  [PolicyStage.action]: actionPrompt(SUBTASK, PLAN),
};
const SUBTASKS_ANSWER = '1. Move to carrot\n2. Grasp carrot\n3. Move to plate\n4. Release carrot\n5. Move away from plate';
/** As the trained format writes it, and as a grammar-constrained decoder would (compact JSON). */
const CHUNK_TEXT = '[[0.012, -0.003, -0.020, 1], [0.012, -0.003, -0.020, 1]]';
const CHUNK = [
  [0.012, -0.003, -0.02, 1],
  [0.012, -0.003, -0.02, 1],
];

/** The fake VLA: a well-formed answer to whichever stage's prompt it is asked (repair prompts begin with the original prompt). */
function wellFormedAnswer(promptText: string): string {
  if (promptText.startsWith(PROMPTS.subtasks)) return SUBTASKS_ANSWER;
  if (promptText.startsWith(PROMPTS.motion_plan)) return PLAN;
  if (promptText.startsWith(PROMPTS.action)) return CHUNK_TEXT;
  return 'I do not understand the question.';
}

let frame: Uint8Array;
const image = (): { mimeType: 'image/jpeg'; data: Uint8Array } => ({ mimeType: 'image/jpeg', data: frame });

async function rejection(promise: Promise<unknown>, code: BackendErrorCode): Promise<BackendError> {
  const err = await promise.then(
    (value) => new Error(`expected a ${code} failure, got ${JSON.stringify(value)}`),
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(BackendError);
  expect((err as BackendError).code, (err as Error).message).toBe(code);
  return err as BackendError;
}

beforeAll(async () => {
  frame = new Uint8Array(await sharp({ create: { width: 64, height: 48, channels: 3, background: { r: 180, g: 120, b: 40 } } }).jpeg().toBuffer());
});

describe('policy model on an OpenAI-compatible server (real openai client, vLLM wire format)', () => {
  const KEY = `sk-test-${randomUUID()}`;
  let server: OpenAIServer;
  const spec = (model = 'vla-lora'): { name: string; backend: 'openai'; baseUrl: string; model: string } => ({ name: 'vla', backend: 'openai', baseUrl: server.url, model });
  const policy = (structuredDecoding: boolean, model?: string, apiKey = KEY): PolicyModel => createPolicyModel({ model: spec(model), structuredDecoding }, { openaiApiKey: apiKey });

  beforeAll(async () => {
    server = await createOpenAIServer({ apiKey: KEY, models: ['vla-lora'], answer: (req) => wellFormedAnswer(req.promptText) });
  });
  afterAll(async () => {
    await server.close();
  });
  beforeEach(() => {
    server.reset();
  });

  it("asks each stage with its prompt, the frame and the paper's decoding; free text without structured decoding", async () => {
    const model = policy(false);
    expect(model.structuredDecoding).toBe(false);
    await model.check();

    const inDist = await decodeStage(model, { stage: PolicyStage.subtasks, prompt: PROMPTS.subtasks, image: image(), inDistribution: true, maxRepairs: 2 });
    const outDist = await decodeStage(model, { stage: PolicyStage.subtasks, prompt: PROMPTS.subtasks, image: image(), inDistribution: false, maxRepairs: 2 });
    const plan = await decodeStage(model, { stage: PolicyStage.motionPlan, prompt: PROMPTS.motion_plan, image: image(), inDistribution: false, maxRepairs: 2 });
    const chunk = await decodeStage(model, { stage: PolicyStage.action, prompt: PROMPTS.action, image: image(), inDistribution: true, maxRepairs: 2 });

    expect(inDist).toMatchObject({ ok: true, value: ['Move to carrot', 'Grasp carrot', 'Move to plate', 'Release carrot', 'Move away from plate'] });
    expect(outDist.ok).toBe(true);
    expect(plan).toMatchObject({ ok: true, value: PLAN });
    expect(chunk).toMatchObject({ ok: true, value: CHUNK });

    expect(server.requests.map((r) => [r.temperature, r.topP, r.maxTokens])).toEqual([
      [0.5, 0.95, 256],
      [1.0, 0.95, 256],
      [0.1, undefined, 128],
      [0.5, undefined, 512],
    ]);
    const prompts = [PROMPTS.subtasks, PROMPTS.subtasks, PROMPTS.motion_plan, PROMPTS.action];
    for (const [i, rec] of server.requests.entries()) {
      expect(rec.model).toBe('vla-lora');
      expect(rec.authorized).toBe(true);
      expect(rec.promptText).toBe(prompts[i]);
      expect(rec.images.map((im) => im.mimeType)).toEqual(['image/jpeg']);
      expect(Buffer.compare(rec.images[0]!.bytes, Buffer.from(frame))).toBe(0);
      expect(rec.body).not.toHaveProperty('response_format');
    }
    for (const r of [inDist, outDist, plan, chunk]) {
      expect(r.attempts).toHaveLength(1);
      expect(r.attempts[0]).toMatchObject({ error: null, structured: false });
      expect(r.attempts[0]!.latencyMs).toBeGreaterThanOrEqual(0);
      expect(r.usage?.outputTokens).toBeGreaterThan(0);
    }
    await model.close();
  });

  it('with structured decoding only the action stage is sent response_format json_schema (strict), and compact JSON parses', async () => {
    const model = policy(true);
    expect(model.structuredDecoding).toBe(true);
    server.setAnswer((req) => (req.body?.response_format !== undefined ? '[[0.012,-0.003,-0.02,1],[0.012,-0.003,-0.02,1]]' : wellFormedAnswer(req.promptText)));
    try {
      const subtasks = await decodeStage(model, { stage: PolicyStage.subtasks, prompt: PROMPTS.subtasks, image: image(), inDistribution: true, maxRepairs: 0 });
      const plan = await decodeStage(model, { stage: PolicyStage.motionPlan, prompt: PROMPTS.motion_plan, image: image(), inDistribution: true, maxRepairs: 0 });
      const chunk = await decodeStage(model, { stage: PolicyStage.action, prompt: PROMPTS.action, image: image(), inDistribution: true, maxRepairs: 0 });
      expect([subtasks.ok, plan.ok]).toEqual([true, true]);
      expect(chunk).toMatchObject({ ok: true, value: CHUNK });
      expect([subtasks, plan, chunk].map((r) => r.attempts[0]!.structured)).toEqual([false, false, true]);
      const [s, p, a] = server.requests;
      expect(s!.body).not.toHaveProperty('response_format');
      expect(p!.body).not.toHaveProperty('response_format');
      expect(a!.body?.response_format).toEqual({ type: 'json_schema', json_schema: { name: 'action_chunk', schema: ACTION_CHUNK_JSON_SCHEMA, strict: true } });
      // The schema is the trained format's: a top-level array of [dx, dy, dz, gripper] arrays.
      expect(ACTION_CHUNK_JSON_SCHEMA).toEqual({ type: 'array', minItems: 1, items: { type: 'array', minItems: 4, maxItems: 4, items: { type: 'number' } } });
    } finally {
      server.setAnswer((req) => wellFormedAnswer(req.promptText));
    }
  });

  it('a malformed chunk is repaired by a second call that quotes it and says what was wrong', async () => {
    const truncated = '[[0.012, -0.003, -0.020, 1], [0.01';
    server.script({ text: truncated });
    const r = await decodeStage(policy(false), { stage: PolicyStage.action, prompt: PROMPTS.action, image: image(), inDistribution: true, maxRepairs: 2 });
    expect(r).toMatchObject({ ok: true, value: CHUNK });
    expect(r.attempts.map((a) => a.raw)).toEqual([truncated, CHUNK_TEXT]);
    expect(r.attempts[0]!.error).toMatch(/not closed with "\]\]"/);
    expect(r.attempts[1]!.error).toBeNull();
    expect(server.requests).toHaveLength(2);
    const repair = server.requests[1]!;
    expect(repair.promptText).toBe(repairPrompt(PolicyStage.action, PROMPTS.action, truncated, r.attempts[0]!.error!));
    expect(r.attempts[1]!.prompt).toBe(repair.promptText);
    // The repair is asked like the original: same frame, same decoding.
    expect(Buffer.compare(repair.images[0]!.bytes, Buffer.from(frame))).toBe(0);
    expect([repair.temperature, repair.maxTokens]).toEqual([0.5, 512]);
  });

  it('a chunk still malformed after maxRepairs is abandoned, every attempt reported', async () => {
    const bad = ['The gripper should move toward the carrot.', '[[0.012, -0.003, -0.020], [0, 0, 0, 1]]', '[[zero point zero one, zero, zero, one]]'];
    server.script(...bad.map((text) => ({ text })));
    const r = await decodeStage(policy(false), { stage: PolicyStage.action, prompt: PROMPTS.action, image: image(), inDistribution: true, maxRepairs: 2 });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.error).toMatch(/^action answer still malformed after 2 repair\(s\): action 1: dx "zero point zero one" is not a number/);
    expect(r.attempts.map((a) => a.raw)).toEqual(bad);
    expect(r.attempts.every((a) => a.error !== null && a.latencyMs >= 0)).toBe(true);
    expect(r.attempts[1]!.error).toBe('action 1 has 3 numbers, expected 4 [dx, dy, dz, gripper]');
    expect(server.requests).toHaveLength(3);

    // No repairs: one call, abandoned at once.
    server.reset();
    server.script({ text: bad[0]! });
    const once = await decodeStage(policy(false), { stage: PolicyStage.action, prompt: PROMPTS.action, image: image(), inDistribution: true, maxRepairs: 0 });
    expect(once.ok).toBe(false);
    expect(once.attempts).toHaveLength(1);
    expect(server.requests).toHaveLength(1);
  });

  it("backend failures propagate as the backends' BackendError, not as format failures", async () => {
    server.script('500');
    const e = await rejection(decodeStage(policy(false), { stage: PolicyStage.action, prompt: PROMPTS.action, image: image(), inDistribution: true, maxRepairs: 2 }), 'server');
    expect(e.nonRetryable).toBe(false);
    expect(server.requests).toHaveLength(1);
    // A failure on a repair call propagates too (the malformed first answer is not silently kept).
    server.script({ text: 'no list here' }, '503');
    await rejection(decodeStage(policy(false), { stage: PolicyStage.action, prompt: PROMPTS.action, image: image(), inDistribution: true, maxRepairs: 2 }), 'server');
    const auth = await rejection(decodeStage(policy(false, 'vla-lora', `${KEY}-wrong`), { stage: PolicyStage.subtasks, prompt: PROMPTS.subtasks, image: image(), inDistribution: true, maxRepairs: 2 }), 'auth');
    expect(auth.nonRetryable).toBe(true);
    await rejection(policy(false, 'vla-other').check(), 'not_found');
    await rejection(policy(false, 'vla-other').ask({ stage: PolicyStage.motionPlan, prompt: PROMPTS.motion_plan, image: image(), inDistribution: true }), 'not_found');
  });

  it('an action-tokens model: the chunk vLLM returns as token text is mapped back to digits before parsing; subtasks and plans are left as they are', async () => {
    // Every digit written as the rare token the adapter learned for it, as vLLM detokenizes them.
    const mapping = ActionTokenMapping.parse({
      method: 'least-likely-v1',
      digits: Object.fromEntries(['Ġcabinet', 'Ġpan', 'inet', 'Ġsponge', 'towel', 'Ġfork', 'knife', 'Ġcarefully', 'Ġtowards', 'Ġslightly'].map((t, d) => [String(d), { id: 50 + d, token: t, text: t.replace('Ġ', ' ') }])),
    });
    const atChunk = digitsToActionTokens(CHUNK_TEXT, mapping);
    // A plan that happens to contain a mapped token's text stays as written.
    const atPlan = 'Move towards the sponge carefully, keeping the gripper open.';
    server.setAnswer((req) => (req.promptText.startsWith(PROMPTS.action) ? atChunk : req.promptText.startsWith(PROMPTS.motion_plan) ? atPlan : wellFormedAnswer(req.promptText)));
    try {
      const model = createPolicyModel({ model: spec(), structuredDecoding: false }, { openaiApiKey: KEY }, { actionTokens: mapping });
      const chunk = await decodeStage(model, { stage: PolicyStage.action, prompt: PROMPTS.action, image: image(), inDistribution: true, maxRepairs: 0 });
      expect(chunk).toMatchObject({ ok: true, value: CHUNK });
      expect(chunk.attempts[0]!.raw).toBe(CHUNK_TEXT);
      const plan = await decodeStage(model, { stage: PolicyStage.motionPlan, prompt: PROMPTS.motion_plan, image: image(), inDistribution: true, maxRepairs: 0 });
      expect(plan).toMatchObject({ ok: true, value: atPlan });
      const subtasks = await decodeStage(model, { stage: PolicyStage.subtasks, prompt: PROMPTS.subtasks, image: image(), inDistribution: true, maxRepairs: 0 });
      expect(subtasks.ok).toBe(true);
      // Without the mapping the same answer is no chunk at all: what an AT adapter got before.
      const unmapped = await decodeStage(policy(false), { stage: PolicyStage.action, prompt: PROMPTS.action, image: image(), inDistribution: true, maxRepairs: 0 });
      expect(unmapped.ok).toBe(false);
    } finally {
      server.setAnswer((req) => wellFormedAnswer(req.promptText));
    }
  });

  it('the local backend has no structured decoding (and starts nothing until asked)', async () => {
    let started = false;
    const model = createPolicyModel(
      { model: { name: 'vla-local', backend: 'local', baseModel: '/nonexistent/model' }, structuredDecoding: true },
      {
        python: () => {
          started = true;
          return Promise.reject(new Error('no Python in this test'));
        },
      },
    );
    expect(model.structuredDecoding).toBe(false);
    await model.close();
    expect(started).toBe(false);
  });
});

describe('policy model on Gemini (real @google/genai client, Gemini wire format)', () => {
  const KEY = `AIzaTest-${randomUUID()}`;
  let server: GeminiServer;
  const policy = (structuredDecoding: boolean): PolicyModel =>
    createPolicyModel({ model: { name: 'gemini-zero-shot', backend: 'gemini', model: 'gemini-2.5-flash' }, structuredDecoding }, { geminiApiKey: KEY, geminiBaseUrl: server.baseUrl });

  beforeAll(async () => {
    server = await createGeminiServer({ apiKey: KEY, respond: (req) => ({ text: wellFormedAnswer(req.promptText) }) });
  });
  afterAll(async () => {
    await server.close();
  });
  beforeEach(() => {
    server.reset();
  });

  it("asks each stage with its prompt, the frame inline and the paper's decoding; JSON mode only for the action stage when asked", async () => {
    for (const structured of [false, true]) {
      server.reset();
      const model = policy(structured);
      expect(model.structuredDecoding).toBe(structured);
      const results = [
        await decodeStage(model, { stage: PolicyStage.subtasks, prompt: PROMPTS.subtasks, image: image(), inDistribution: false, maxRepairs: 1 }),
        await decodeStage(model, { stage: PolicyStage.motionPlan, prompt: PROMPTS.motion_plan, image: image(), inDistribution: true, maxRepairs: 1 }),
        await decodeStage(model, { stage: PolicyStage.action, prompt: PROMPTS.action, image: image(), inDistribution: true, maxRepairs: 1 }),
      ];
      expect(results.map((r) => r.ok)).toEqual([true, true, true]);
      expect(results[2]).toMatchObject({ value: CHUNK });
      expect(results.map((r) => r.attempts[0]!.structured)).toEqual([false, false, structured]);
      const [s, p, a] = server.requests;
      expect(s!.body?.generationConfig).toMatchObject({ temperature: 1.0, topP: 0.95, maxOutputTokens: 256 + DEFAULT_THINKING_BUDGET });
      expect(p!.body?.generationConfig).toMatchObject({ temperature: 0.1, maxOutputTokens: 128 + DEFAULT_THINKING_BUDGET });
      expect(p!.body?.generationConfig).not.toHaveProperty('topP');
      expect(a!.body?.generationConfig).toMatchObject({ temperature: 0.5, maxOutputTokens: 512 + DEFAULT_THINKING_BUDGET });
      for (const [i, rec] of server.requests.entries()) {
        expect(rec.promptText).toBe([PROMPTS.subtasks, PROMPTS.motion_plan, PROMPTS.action][i]);
        expect(rec.images.map((im) => im.mimeType)).toEqual(['image/jpeg']);
        expect(Buffer.compare(rec.images[0]!.bytes, Buffer.from(frame))).toBe(0);
      }
      for (const rec of [s!, p!]) expect(rec.body?.generationConfig).not.toHaveProperty('responseJsonSchema');
      if (structured) {
        expect(a!.body?.generationConfig).toMatchObject({ responseMimeType: 'application/json', responseJsonSchema: ACTION_CHUNK_JSON_SCHEMA });
      } else {
        expect(a!.body?.generationConfig).not.toHaveProperty('responseMimeType');
        expect(a!.body?.generationConfig).not.toHaveProperty('responseJsonSchema');
      }
    }
  });

  it('a malformed chunk is repaired; HTTP failures propagate as BackendError', async () => {
    server.script({ text: '```\nThe arm should move forward.\n```' });
    const r = await decodeStage(policy(true), { stage: PolicyStage.action, prompt: PROMPTS.action, image: image(), inDistribution: true, maxRepairs: 1 });
    expect(r).toMatchObject({ ok: true, value: CHUNK });
    expect(r.attempts.map((a) => a.error === null)).toEqual([false, true]);
    expect(server.requests).toHaveLength(2);

    server.script('429');
    const limited = await rejection(decodeStage(policy(false), { stage: PolicyStage.motionPlan, prompt: PROMPTS.motion_plan, image: image(), inDistribution: true, maxRepairs: 1 }), 'rate_limited');
    expect(limited.retryAfterMs).toBe(2000);
  });
});

describe('bench/episode-format: format failures with and without structured decoding (openai fixture, scripted fake model)', () => {
  it('free text fails at about the scripted rate and pays for it in repairs; structured decoding never fails', async () => {
    const { rows } = await measureFormatFailures({ chunks: 30, seed: 3, formatErrorRate: 0.3, latencyMs: 0, maxRepairs: 2 });
    const [free, structured] = rows;
    expect(free!.decoding).toBe('free text');
    expect(structured!.decoding).toBe('structured');
    for (const row of rows) {
      expect(row.chunks).toBe(30);
      expect(row.calls).toBe(row.chunks + row.repairCalls);
      // Every malformed answer is either repaired (one more call) or abandons its chunk.
      expect(row.formatFailures).toBe(row.repairCalls + row.abandoned);
      expect(row.per100.formatFailures).toBeCloseTo((100 * row.formatFailures) / row.chunks, 9);
    }
    // Seeded, so the same every run; at 30% about 30 * 0.3 * (1 + 0.3 + 0.09) = 12.5 malformed answers are expected.
    expect(free!.formatFailures).toBeGreaterThan(0);
    expect(free!.repairCalls).toBeGreaterThan(0);
    expect(structured).toMatchObject({ formatFailures: 0, repairCalls: 0, abandoned: 0, calls: 30, extraLatencyMs: 0 });
  });
});
