import { ApplicationFailure } from '@temporalio/common';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ACTION_TOKENS_FAILURE, actionTokensToDigits, checkMappingAgainstTokenizer, digitsToActionTokens, loadActionTokenMapping, textAmbiguity } from '../../activities/robot/policy/action-tokens';
import { parseActionChunk } from '../../activities/robot/policy/parse';
import { FileStore } from '../../activities/store';
import { policyAdapterUri, PolicySpec } from '../../data-schemas/robot';
import { ActionTokenMapping } from '../../data-schemas/training';
import { fileUri } from '../../data-schemas/uri';

/** Shaped like the trainer's action_tokens.json: byte-level BPE tokens (Ġ is a leading space), texts as decoded. */
const TOKENS = ['Ġcabinet', 'Ġcab', 'inet', 'Ġsponge', 'towel', 'Ġfork', 'knife', 'Ġcarefully', 'Ġtowards', 'Ġslightly'];
const RAW_MAPPING = {
  method: 'least-likely-v1',
  description: 'test',
  calibrationSamples: 4,
  digits: Object.fromEntries(TOKENS.map((token, d) => [String(d), { id: 100 + d, token, text: token.replace('Ġ', ' '), meanLogProb: -20 + d }])),
};
const MAPPING = ActionTokenMapping.parse(RAW_MAPPING);
const withDigit = (d: string, patch: Record<string, unknown>) => ({ ...RAW_MAPPING, digits: { ...RAW_MAPPING.digits, [d]: { ...RAW_MAPPING.digits[d], ...patch } } });

describe('the action-tokens mapping file (action_tokens.json)', () => {
  it('accepts what the trainer writes and refuses what cannot be mapped back', () => {
    expect(Object.keys(MAPPING.digits)).toEqual(['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
    const issues = (raw: unknown): string[] => {
      const r = ActionTokenMapping.safeParse(raw);
      return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    };
    const { 7: _dropped, ...nine } = RAW_MAPPING.digits;
    expect(issues({ ...RAW_MAPPING, digits: nine }).join()).toMatch(/digits\.7/);
    expect(issues({ ...RAW_MAPPING, digits: { ...RAW_MAPPING.digits, 10: RAW_MAPPING.digits['0'] } }).join()).toMatch(/10/);
    expect(issues(withDigit('3', { id: 100 }))).toEqual(['digits: two digits share a token id']);
    expect(issues(withDigit('3', { text: ' cabinet', id: 999 }))).toEqual(['digits: two digits share a token text']);
    expect(issues(withDigit('4', { text: 'x1' })).join()).toMatch(/digits\.4\.text: a mapped token's text must contain no digit/);
    expect(issues(withDigit('4', { text: ' ], ' })).join()).toMatch(/only chunk punctuation/);
    expect(issues(withDigit('4', { id: -1 })).join()).toMatch(/digits\.4\.id/);
    expect(issues(withDigit('4', { token: undefined })).join()).toMatch(/digits\.4\.token/);
  });

  it('maps an action-tokens chunk back to digits exactly, longest token text first', () => {
    const chunk = '[[0.013, -0.003, 0.000, 1], [0.020, 0.000, -0.015, 0]]';
    const written = digitsToActionTokens(chunk, MAPPING);
    expect(written).not.toMatch(/\d/);
    // " cabinet" (0) begins with " cab" (1): longest match keeps it whole.
    expect(actionTokensToDigits(' cabinet cab', MAPPING)).toBe('01');
    expect(written.startsWith('[[ cabinet. cabinet cab sponge')).toBe(true);
    expect(actionTokensToDigits(written, MAPPING)).toBe(chunk);
    expect(parseActionChunk(actionTokensToDigits(written, MAPPING))).toEqual({ ok: true, value: [[0.013, -0.003, 0, 1], [0.02, 0, -0.015, 0]] });
    // Plain digits the model still writes, and other text, are left as they are.
    expect(actionTokensToDigits('[[0.01, inet, 0, 1]] done', MAPPING)).toBe('[[0.01, 2, 0, 1]] done');
  });

  it('text is not ids: a mapping whose texts are not prefix-free is named as ambiguous', () => {
    // "12" written as " cab" + "inet" reads back as digit 0 (" cabinet"): a wrong digit, not a parse error.
    expect(actionTokensToDigits(digitsToActionTokens('[[0.12, 0, 0, 1]]', MAPPING), MAPPING)).toBe('[[0.0, 0, 0, 1]]');
    expect(textAmbiguity(MAPPING)).toBe('digit 1\'s text " cab" begins digit 0\'s " cabinet"');
    const prefixFree = ActionTokenMapping.parse(withDigit('1', { token: 'Ġpan', text: ' pan' }));
    expect(textAmbiguity(prefixFree)).toBeUndefined();
    const chunk = '[[0.012, -0.003, 0.000, 1], [0.020, 0.000, -0.015, 0]]';
    expect(actionTokensToDigits(digitsToActionTokens(chunk, prefixFree), prefixFree)).toBe(chunk);
  });
});

describe('which adapter an action-tokens policy reads its mapping from', () => {
  const openai = { name: 'vla-at', backend: 'openai', baseUrl: 'http://127.0.0.1:8000', model: 'vla-at' } as const;
  const messages = (raw: unknown): string[] => {
    const r = PolicySpec.safeParse(raw);
    return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
  };

  it('the OpenAI backend names the adapter folder; the local backend reads it from model.adapter', () => {
    const spec = PolicySpec.parse({ kind: 'model', model: openai, actionRepresentation: 'action-tokens', adapterUri: 's3://runs/at/adapter' });
    expect(spec).toMatchObject({ actionRepresentation: 'action-tokens', structuredDecoding: false });
    if (spec.kind === 'model') expect(policyAdapterUri(spec)).toBe('s3://runs/at/adapter');
    const local = PolicySpec.parse({ kind: 'model', model: { name: 'l', backend: 'local', baseModel: '/m/tiny', adapter: '/runs/at adapter' }, actionRepresentation: 'action-tokens' });
    if (local.kind === 'model') expect(policyAdapterUri(local)).toBe(fileUri('/runs/at adapter'));
    // Language stays the default.
    expect(PolicySpec.parse({ kind: 'model', model: openai })).toMatchObject({ actionRepresentation: 'language' });
  });

  it('refuses an action-tokens policy with no adapter folder, on Gemini, or with structured decoding', () => {
    expect(messages({ kind: 'model', model: openai, actionRepresentation: 'action-tokens' })).toEqual([expect.stringMatching(/^adapterUri: action-tokens needs the adapter's folder/)]);
    expect(messages({ kind: 'model', model: { name: 'l', backend: 'local', baseModel: '/m' }, actionRepresentation: 'action-tokens' })).toHaveLength(1);
    expect(messages({ kind: 'model', model: { name: 'g', backend: 'gemini', model: 'gemini-2.5-pro' }, actionRepresentation: 'action-tokens', adapterUri: 's3://runs/a' })).toEqual([
      expect.stringMatching(/^actionRepresentation: .*not Gemini/),
    ]);
    expect(messages({ kind: 'model', model: openai, actionRepresentation: 'action-tokens', adapterUri: 's3://runs/a', structuredDecoding: true })).toEqual([expect.stringMatching(/^structuredDecoding: /)]);
  });
});

describe('loading and checking an adapter\'s mapping', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vla-at-unit-'));
  const store = new FileStore();
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const adapter = (name: string, files: Record<string, unknown>): string => {
    const path = join(dir, name);
    mkdirSync(path, { recursive: true });
    for (const [file, body] of Object.entries(files)) writeFileSync(join(path, file), typeof body === 'string' ? body : JSON.stringify(body));
    return fileUri(path);
  };
  async function failure(promise: Promise<unknown>): Promise<ApplicationFailure> {
    const err = await promise.then(
      () => new Error('expected a failure'),
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ApplicationFailure);
    const failure = err as ApplicationFailure;
    expect(failure.type).toBe(ACTION_TOKENS_FAILURE);
    expect(failure.nonRetryable).toBe(true);
    return failure;
  }
  const atConfig = { actionRepresentation: 'action-tokens', baseModel: '/m/tiny' };

  it('reads a mapping the trainer wrote beside an action-tokens adapter', async () => {
    const uri = adapter('good', { 'action_tokens.json': RAW_MAPPING, 'training_config.json': atConfig });
    expect(await loadActionTokenMapping(store, uri)).toEqual(MAPPING);
  });

  it('names the adapter when the mapping is missing, malformed, or belongs to no action-tokens adapter', async () => {
    const missing = adapter('missing', { 'training_config.json': atConfig });
    expect((await failure(loadActionTokenMapping(store, missing))).message).toMatch(new RegExp(`^action-tokens adapter ${missing}: no action_tokens.json in the adapter folder`));
    const broken = adapter('broken', { 'action_tokens.json': withDigit('5', { id: 100 }), 'training_config.json': atConfig });
    expect((await failure(loadActionTokenMapping(store, broken))).message).toContain(`${broken}: action_tokens.json does not match the expected schema: digits: two digits share a token id`);
    const notJson = adapter('not-json', { 'action_tokens.json': '{"digits": ', 'training_config.json': atConfig });
    expect((await failure(loadActionTokenMapping(store, notJson))).message).toContain('action_tokens.json not valid JSON');
    const language = adapter('language', { 'action_tokens.json': RAW_MAPPING, 'training_config.json': { actionRepresentation: 'language' } });
    expect((await failure(loadActionTokenMapping(store, language))).message).toContain(`${language}: the adapter was trained with actionRepresentation "language"`);
    const orphan = adapter('orphan', { 'action_tokens.json': RAW_MAPPING });
    expect((await failure(loadActionTokenMapping(store, orphan))).message).toContain('no training_config.json beside action_tokens.json');
  });

  it("checks the mapped ids against the local base model's tokenizer.json", async () => {
    const vocab = Object.fromEntries(TOKENS.map((t, d) => [t, 100 + d]));
    const base = join(dir, 'base');
    mkdirSync(base, { recursive: true });
    writeFileSync(join(base, 'tokenizer.json'), JSON.stringify({ model: { type: 'BPE', vocab }, added_tokens: [{ id: 0, content: '<pad>' }] }));
    await checkMappingAgainstTokenizer(MAPPING, base, 'file:///runs/at/adapter');
    // Another tokenizer: id 104 is some other token.
    writeFileSync(join(base, 'tokenizer.json'), JSON.stringify({ model: { type: 'BPE', vocab: { ...vocab, towel: 7, Ġplate: 104 } } }));
    const e = await failure(checkMappingAgainstTokenizer(MAPPING, base, 'file:///runs/at/adapter'));
    expect(e.message).toBe(`action-tokens adapter file:///runs/at/adapter: action_tokens.json does not fit the base model's tokenizer ${join(base, 'tokenizer.json')}: digit 4 is id 104 = "towel" in the mapping but "Ġplate" in the tokenizer`);
    // A SentencePiece-style vocabulary (pieces by id) is read too; a hub id (no directory) is not checked here.
    writeFileSync(join(base, 'tokenizer.json'), JSON.stringify({ model: { type: 'Unigram', vocab: Array.from({ length: 120 }, (_, id) => [TOKENS[id - 100] ?? `p${id}`, -1]) } }));
    await checkMappingAgainstTokenizer(MAPPING, base, 'file:///runs/at/adapter');
    await checkMappingAgainstTokenizer(MAPPING, 'google/gemma-3-12b-it', 's3://runs/at/adapter');
  });
});
