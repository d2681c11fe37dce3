/**
 * The VLM2VLA-AT ablation at inference: an adapter trained with `actionRepresentation:
 * "action-tokens"` writes each digit of an action chunk as one of ten rare tokens of its base model
 * (python/vla_py/train/action_tokens.py). Its answers are mapped back to digits here, before the
 * chunk is parsed; subtasks and motion plans stay plain language.
 */
import { ApplicationFailure } from '@temporalio/common';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { ACTION_TOKENS_FILE, ActionRepresentation, ActionTokenMapping } from '../../../data-schemas/training';
import { joinUri } from '../../../data-schemas/uri';
import { getJsonIfExists, InvalidObjectError } from '../../store';
import type { ObjectStore } from '../../store/types';

/** The failure type of a mapping that is missing or does not fit its adapter: no retry can fix it. */
export const ACTION_TOKENS_FAILURE = 'PolicyActionTokens';

/** The part of the adapter's training_config.json (written by the trainer beside the mapping) that is checked. */
const AdapterTrainingConfig = z.looseObject({ actionRepresentation: ActionRepresentation.default('language') });

/**
 * The answer with every mapped token's text replaced by its digit, for backends that return text
 * only (vLLM detokenizes the rare tokens). Texts are matched longest first, so a token whose text
 * begins with another's is not cut short. Text is not ids: two mapped texts in a row can read as a
 * third (" cab" + "inet" = " cabinet"), which is why the local backend decodes by ids instead and
 * why a mapping whose texts are not prefix-free is refused for text backends (textAmbiguity).
 */
export function actionTokensToDigits(answer: string, mapping: ActionTokenMapping): string {
  const byText = Object.entries(mapping.digits)
    .map(([digit, entry]) => ({ digit, text: entry.text }))
    .sort((a, b) => b.text.length - a.text.length);
  let out = '';
  let i = 0;
  outer: while (i < answer.length) {
    for (const { digit, text } of byText) {
      if (answer.startsWith(text, i)) {
        out += digit;
        i += text.length;
        continue outer;
      }
    }
    out += answer[i];
    i++;
  }
  return out;
}

/**
 * Why mapping this adapter's answers back by text could give a wrong digit, or undefined when it
 * cannot: greedy matching of prefix-free texts reads any run of mapped tokens back exactly.
 */
export function textAmbiguity(mapping: ActionTokenMapping): string | undefined {
  const entries = Object.entries(mapping.digits);
  for (const [a, ea] of entries) {
    for (const [b, eb] of entries) {
      if (a !== b && eb.text.startsWith(ea.text)) return `digit ${a}'s text ${JSON.stringify(ea.text)} begins digit ${b}'s ${JSON.stringify(eb.text)}`;
    }
  }
  return undefined;
}

/** The inverse, as the trainer writes a chunk: each digit as its token's text (for tests and fakes of an AT model). */
export function digitsToActionTokens(text: string, mapping: ActionTokenMapping): string {
  const textOf = new Map(Object.entries(mapping.digits).map(([digit, entry]) => [digit, entry.text]));
  return text.replace(/\d/g, (d) => textOf.get(d) ?? d);
}

const fail = (adapterUri: string, problem: string): ApplicationFailure =>
  ApplicationFailure.nonRetryable(`action-tokens adapter ${adapterUri}: ${problem}`, ACTION_TOKENS_FAILURE);

/**
 * Reads and checks the adapter's action_tokens.json. It fits the adapter when it lies in the
 * adapter's own folder, passes the schema (ten distinct tokens for the digits 0-9, ids and texts
 * present) and the trainer's training_config.json beside it says the adapter was trained with
 * `action-tokens`: the trainer writes both files into the adapter folder together, so a mapping
 * copied next to another adapter, or next to a language adapter, is refused. The local backend
 * further checks the ids against the base model's tokenizer (checkMappingAgainstTokenizer).
 * @throws ApplicationFailure (non-retryable, type ACTION_TOKENS_FAILURE) naming the adapter.
 */
export async function loadActionTokenMapping(store: ObjectStore, adapterUri: string): Promise<ActionTokenMapping> {
  const read = async <S extends z.ZodType>(file: string, schema: S): Promise<z.output<S> | undefined> => {
    try {
      return await getJsonIfExists(store, joinUri(adapterUri, file), schema);
    } catch (err) {
      if (err instanceof InvalidObjectError) throw fail(adapterUri, `${file} ${err.message.slice(err.uri.length + 2)}`);
      throw err;
    }
  };
  const mapping = await read(ACTION_TOKENS_FILE, ActionTokenMapping);
  if (mapping === undefined) {
    throw fail(adapterUri, `no ${ACTION_TOKENS_FILE} in the adapter folder; an adapter trained with actionRepresentation "action-tokens" stores it there (is this the adapter's folder, and was it trained with action tokens?)`);
  }
  const config = await read('training_config.json', AdapterTrainingConfig);
  if (config === undefined) throw fail(adapterUri, `no training_config.json beside ${ACTION_TOKENS_FILE}, so the mapping cannot be tied to this adapter`);
  if (config.actionRepresentation !== 'action-tokens') {
    throw fail(adapterUri, `the adapter was trained with actionRepresentation "${config.actionRepresentation}", so its ${ACTION_TOKENS_FILE} does not belong to it`);
  }
  return mapping;
}

/** What a tokenizer.json says about ids: its model's vocabulary (BPE: token -> id; Unigram: [piece, score] by id) and added tokens. */
const TokenizerJson = z.looseObject({
  model: z.looseObject({ vocab: z.union([z.record(z.string(), z.int()), z.array(z.tuple([z.string(), z.number()]).rest(z.unknown()))]) }),
  added_tokens: z.array(z.looseObject({ id: z.int(), content: z.string() })).default([]),
});

/**
 * Checks that each mapped id is, in the base model's tokenizer (`tokenizer.json` of a model
 * directory on this worker), the token the trainer recorded: a mapping made for another base model or tokenizer is
 * refused before any answer is mapped with it. A base model given as a hub id is not checked here.
 * @throws ApplicationFailure (non-retryable, type ACTION_TOKENS_FAILURE) naming the adapter.
 */
export async function checkMappingAgainstTokenizer(mapping: ActionTokenMapping, baseModelDir: string, adapterUri: string): Promise<void> {
  const file = join(baseModelDir, 'tokenizer.json');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return; // a hub id, or a model without a fast tokenizer file: the model's own load decides
  }
  let parsed: ReturnType<typeof TokenizerJson.safeParse>;
  try {
    parsed = TokenizerJson.safeParse(JSON.parse(text));
  } catch {
    return;
  }
  if (!parsed.success) return; // a tokenizer layout this check does not read
  const { vocab } = parsed.data.model;
  const tokenAt = new Map<number, string>(Array.isArray(vocab) ? vocab.map(([piece], id) => [id, piece]) : Object.entries(vocab).map(([token, id]) => [id, token]));
  for (const added of parsed.data.added_tokens) tokenAt.set(added.id, added.content);
  for (const [digit, entry] of Object.entries(mapping.digits)) {
    const actual = tokenAt.get(entry.id);
    if (actual !== entry.token) {
      throw fail(
        adapterUri,
        `${ACTION_TOKENS_FILE} does not fit the base model's tokenizer ${file}: digit ${digit} is id ${entry.id} = ${JSON.stringify(entry.token)} in the mapping but ${actual === undefined ? 'no token' : JSON.stringify(actual)} in the tokenizer`,
      );
    }
  }
}
