/**
 * MMMU (validation) as lmms-eval scores it (lmms_eval/tasks/mmmu/utils.py `mmmu_process_results`,
 * `evaluate_mmmu`, `eval_multi_choice`, `eval_open`, `parse_open_response`, `normalize_str`,
 * `extract_numbers`; lmms_eval/tasks/_task_utils/mmmu_mcq_utils.py
 * `parse_mmmu_multi_choice_response`; commit 75571cfe; the helpers follow the official MMMU repo).
 *
 * Multiple choice: strip `, . ! ? ; : '` from the ends, pad with spaces; candidates are letters in
 * "(X)", else in "X ", else in "X.", else (responses of more than five words) options whose text
 * appears in the response; several candidates: the one occurring last; none: lmms-eval picks a
 * random letter (`random.choice`). We cannot replay Python's generator, so the pick here is a fixed
 * function of the item id (FNV-1a): the same expected score, reproducible.
 *
 * Open questions — IMPORTANT: since lmms-eval commit 736454b5 (June 2025, so in v0.4 and today)
 * `mmmu_process_results` keeps only `str(parse_open_response(pred)[0])`, and `eval_open` then
 * iterates that string character by character, so an open question is right only when a gold
 * answer normalises to the empty string: in practice every open question scores 0 in lmms-eval.
 * The headline follows lmms-eval; `breakdown['accuracy (official MMMU open rule)']` gives the figure
 * with the official rule (a normalised gold string inside a parsed string, or a parsed number equal
 * to a gold number after rounding to 2 decimals).
 */
import type { VqaItem } from '../../../data-schemas/vqa';
import { codePoints, pyFloat, pyFloatStr, pyLen, pyLower, pyRound2, pyStrip, pySplit } from './py';

export const MMMU_MC_PROMPT = "Answer with the option's letter from the given choices directly.";
export const MMMU_OPEN_PROMPT = 'Answer the question using a single word or phrase.';

export function isMultipleChoice(item: VqaItem): boolean {
  const type = item.meta.questionType;
  return type === undefined ? (item.options?.length ?? 0) > 0 : type === 'multiple-choice';
}

/**
 * `construct_prompt` with the default kwargs; `<image N>` tags stay in the text (lmms-eval's
 * `doc_to_text`, not the interleaved `doc_to_messages`; images go separately, in item order).
 */
export function mmmuPrompt(item: VqaItem): string {
  if (isMultipleChoice(item)) {
    const options = (item.options ?? []).map((o) => `${o.label}. ${o.text}`).join('\n');
    return `${item.question}\n${options}\n\n${MMMU_MC_PROMPT}`;
  }
  return `${item.question}\n\n${MMMU_OPEN_PROMPT}`;
}

/** FNV-1a 32-bit, for the reproducible stand-in of `random.choice`. */
function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (const byte of new TextEncoder().encode(text)) {
    h ^= byte;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

export interface McParse {
  letter: string;
  /** True when no rule matched and the letter is the stand-in for lmms-eval's random pick. */
  guessed: boolean;
}

export function parseMultiChoice(response: string, allChoices: readonly string[], index2ans: ReadonlyMap<string, string>, seed: string): McParse {
  let text = response;
  for (const ch of [',', '.', '!', '?', ';', ':', "'"]) text = pyStrip(text, ch);
  text = ` ${text} `;

  let indexAns = true;
  let withBracket = false;
  let candidates: string[] = [];
  for (const c of allChoices) {
    if (text.includes(`(${c})`)) {
      candidates.push(c);
      withBracket = true;
    }
  }
  if (candidates.length === 0) candidates = allChoices.filter((c) => text.includes(`${c} `));
  if (candidates.length === 0) candidates = allChoices.filter((c) => text.includes(`${c}.`));
  if (candidates.length === 0 && pySplit(text).length > 5) {
    for (const [index, ans] of index2ans) {
      if (pyLower(text).includes(pyLower(ans))) {
        candidates.push(index);
        indexAns = false;
      }
    }
  }
  if (candidates.length === 0) {
    if (allChoices.length === 0) return { letter: '', guessed: true };
    return { letter: allChoices[fnv1a(seed) % allChoices.length]!, guessed: true };
  }
  if (candidates.length === 1) return { letter: candidates[0]!, guessed: false };
  const position = (c: string): number => {
    if (!indexAns) return pyLower(text).lastIndexOf(pyLower(index2ans.get(c) ?? ''));
    return withBracket ? text.lastIndexOf(`(${c})`) : text.lastIndexOf(` ${c} `);
  };
  // np.argmax: the first of the maxima.
  let best = 0;
  for (let i = 1; i < candidates.length; i++) if (position(candidates[i]!) > position(candidates[best]!)) best = i;
  return { letter: candidates[best]!, guessed: false };
}

/** A normalised answer: a number (rounded to 2 decimals) or a lower-cased string. */
export type Normalised = number | string;

const checkIsNumber = (s: string): boolean => pyFloat(s.replaceAll(',', '')) !== null;

/** `normalize_str`: numbers to floats rounded to 2 decimals; strings lower-cased, one character padded both ways. */
export function normalizeStr(input: string): Normalised[] {
  const s = pyStrip(input);
  if (checkIsNumber(s)) return [pyRound2(pyFloat(s.replaceAll(',', ''))!)];
  const lower = pyLower(s);
  if (pyLen(lower) === 1) return [` ${lower}`, `${lower} `];
  return [lower];
}

/** Python's `\b` (word = letter, digit or underscore, Unicode-aware), for the patterns below. */
const W = String.raw`[\p{L}\p{N}_]`;
const B = String.raw`(?:(?<=${W})(?!${W})|(?<!${W})(?=${W}))`;
const NUM_COMMAS = new RegExp(String.raw`-?${B}\d{1,3}(?:,\d{3})+${B}`, 'gu');
const NUM_SCIENTIFIC = /-?\d+(?:\.\d+)?[eE][+-]?\d+/gu;
const NUM_SIMPLE = new RegExp(String.raw`-?(?:\d+\.\d+|\.\d+|\d+${B})(?![eE][+-]?\d+)(?![,\d])`, 'gu');

/** `extract_numbers`: numbers with thousands commas, then scientific, then plain ones. */
export function extractNumbers(text: string): string[] {
  const all = (re: RegExp): string[] => [...text.matchAll(re)].map((m) => m[0]);
  return [...all(NUM_COMMAS), ...all(NUM_SCIENTIFIC), ...all(NUM_SIMPLE)];
}

const KEY_INDICATORS = ['could be ', 'so ', 'is ', 'thus ', 'therefore ', 'final ', 'answer ', 'result '];
const TRIVIAL = new Set([':', ',', '.', '!', '?', ';', "'"]);

function keySubresponses(response: string): string[] {
  const text = pyLower(pyStrip(pyStrip(response), '.'));
  const subs = text.split(/\.\s(?=[A-Z])|\n/u);
  const keys: string[] = [];
  subs.forEach((resp, index) => {
    const indicators = index === subs.length - 1 ? [...KEY_INDICATORS, '='] : KEY_INDICATORS;
    // The shortest tail after an indicator; an empty tail counts as none (Python truthiness).
    let shortest = '';
    for (const indicator of indicators) {
      if (!resp.includes(indicator)) continue;
      const tail = pyStrip(resp.split(indicator).at(-1)!);
      if (!shortest || pyLen(tail) < pyLen(shortest)) shortest = tail;
    }
    if (shortest && !TRIVIAL.has(pyStrip(shortest))) keys.push(shortest);
  });
  return keys.length === 0 ? [text] : keys;
}

/** `parse_open_response`: key sub-responses and the numbers in them, normalised, duplicates dropped. */
export function parseOpenResponse(response: string): Normalised[] {
  const keys = keySubresponses(response);
  const raw = [...keys, ...keys.flatMap(extractNumbers)];
  const seen = new Set<string>();
  const out: Normalised[] = [];
  for (const value of raw.flatMap(normalizeStr)) {
    const key = `${typeof value}:${String(value)}`;
    if (typeof value === 'number' && Number.isNaN(value)) out.push(value);
    else if (!seen.has(key)) {
      seen.add(key);
      out.push(value);
    }
  }
  return out;
}

/** `eval_open` over a list of parsed predictions (strings: a gold string inside; numbers: equal). */
export function evalOpen(gold: readonly string[], preds: readonly Normalised[]): boolean {
  const norm = gold.flatMap(normalizeStr);
  for (const pred of preds) {
    if (typeof pred === 'string') {
      if (norm.some((n) => typeof n === 'string' && pred.includes(n))) return true;
    } else if (norm.some((n) => typeof n === 'number' && n === pred)) return true;
  }
  return false;
}

export interface MmmuItemResult {
  /** As lmms-eval judges it. */
  correct: boolean;
  /** With the official MMMU open rule (same as `correct` for multiple choice). */
  officialCorrect: boolean;
  guessed: boolean;
}

export function mmmuItem(item: VqaItem, response: string | undefined): MmmuItemResult {
  if (response === undefined) return { correct: false, officialCorrect: false, guessed: false };
  const pred = pyStrip(response);
  if (isMultipleChoice(item)) {
    const options = item.options ?? [];
    const index2ans = new Map(options.map((o) => [o.label, o.text]));
    const parsed = parseMultiChoice(pred, options.map((o) => o.label), index2ans, item.id);
    // Gold: a letter (or several accepted letters).
    const correct = item.answers.includes(parsed.letter);
    return { correct, officialCorrect: correct, guessed: parsed.guessed };
  }
  const parsed = parseOpenResponse(pred);
  const officialCorrect = evalOpen(item.answers, parsed);
  // lmms-eval: `str(parsed[0])`, then `eval_open` walks its characters (see the file comment).
  const first = parsed[0];
  const firstStr = first === undefined ? '' : typeof first === 'number' ? pyFloatStr(first) : first;
  const correct = evalOpen(item.answers, codePoints(firstStr));
  return { correct, officialCorrect, guessed: false };
}

/** `extract_subset_name`: "validation_Art_Theory_12" → "Art_Theory" (else `meta.subject`). */
export function mmmuSubject(item: VqaItem): string {
  const split = item.id.split('_')[0] ?? '';
  const m = new RegExp(`^${split.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}_(.+?)_\\d+$`).exec(item.id);
  if (m) return m[1]!;
  return String(item.meta.subject ?? 'unknown');
}
