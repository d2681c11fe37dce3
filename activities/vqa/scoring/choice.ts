/**
 * Multiple-choice letter extraction as lmms-eval does it (commit 75571cfe, see index.ts):
 *
 * - `extractMcqAnswer`: lmms_eval/tasks/_task_utils/mcq_extract.py `extract_mcq_answer`, the shared
 *   extractor that MMStar (`mmstar/utils.py exact_match`), RealWorldQA
 *   (`realworldqa/utils.py realworldqa_process_results`) and MMBench's static fallback use.
 * - `ai2dCorrect`: AI2D has no process_results; its yaml runs `ai2d/utils.py MultiChoiceRegexFilter`
 *   (a leading `X.` becomes `X`, anything else passes unchanged), then the generic `exact_match`
 *   metric (lmms_eval/api/metrics.py `exact_match_hf_evaluate`) with ignore_case and
 *   ignore_punctuation against the gold letter.
 */
import type { ChoiceOption, VqaItem } from '../../../data-schemas/vqa';
import { codePoints, pyIsAlpha, pyLower, pyRStrip, pyStrip } from './py';

const DEFAULT_CHOICES = ['A', 'B', 'C', 'D', 'E', 'F', 'G', 'H'];

/** Answer phrases after which the first choice letter is taken, in lmms-eval's order. */
const ANSWER_PHRASES = [
  'the answer is',
  'answer is',
  'the correct answer is',
  'correct answer is',
  'the best answer is',
  'best answer is',
  'the correct option is',
  'correct option is',
  'the best option is',
  'best option is',
  'the choice is',
  'choice is',
  'the correct choice is',
  'correct choice is',
  'i choose',
  'i select',
  'i pick',
  'my answer is',
  'my choice is',
  '옵션',
  '정답은',
  '답은',
  '답:',
  '答案是',
  '答案为',
  '选',
  '答えは',
];

type Format = 'start' | 'end' | 'phrase' | 'parentheses' | 'period' | 'colon' | 'right_paren' | 'space' | 'fallback';
const PRIORITY: Record<Format, number> = {
  start: 10,
  end: 9,
  phrase: 7,
  parentheses: 6,
  period: 5,
  colon: 4,
  right_paren: 3,
  space: 2,
  fallback: 0,
};

interface Candidate {
  letter: string;
  position: number;
  format: Format;
}

/**
 * The choice letter a free-form answer names, or "" when none. Every format the response matches
 * gives a candidate (its last occurrence); the highest-priority format wins (start > end > answer
 * phrase > "(X)" > "X." > "X:" > "X)" > "X "), the later position breaking ties; a bare letter
 * anywhere counts only when nothing else matched.
 */
export function extractMcqAnswer(response: string, choices?: readonly string[]): string {
  if (!response || pyStrip(response) === '') return '';
  const all = choices && choices.length > 0 ? choices : DEFAULT_CHOICES;

  let text = pyStrip(response);
  for (const ch of [',', '.', '!', '?', ';', ':', "'", '"']) text = pyStrip(text, ch);
  text = ` ${text} `;

  const candidates: Candidate[] = [];
  const bySuffix = (format: Format, make: (ch: string) => string): void => {
    for (const ch of all) {
      const needle = make(ch);
      if (text.includes(needle)) candidates.push({ letter: ch, position: text.lastIndexOf(needle), format });
    }
  };
  bySuffix('parentheses', (ch) => `(${ch})`);
  bySuffix('period', (ch) => `${ch}.`);
  bySuffix('colon', (ch) => `${ch}:`);
  bySuffix('right_paren', (ch) => `${ch})`);
  bySuffix('space', (ch) => `${ch} `);

  const lower = pyLower(text);
  for (const phrase of ANSWER_PHRASES) {
    const idx = lower.indexOf(phrase);
    if (idx === -1) continue;
    const after = idx + phrase.length;
    for (const ch of all) {
      const pos = text.indexOf(ch, after);
      if (pos !== -1) candidates.push({ letter: ch, position: pos, format: 'phrase' });
    }
  }

  const stripped = codePoints(pyStrip(text));
  const standalone = (neighbour: string | undefined): boolean => stripped.length === 1 || !pyIsAlpha(neighbour ?? '');
  for (const ch of all) {
    if (stripped.length > 0 && stripped.join('').startsWith(ch) && standalone(stripped[1])) {
      candidates.push({ letter: ch, position: 0, format: 'start' });
    }
  }
  for (const ch of all) {
    if (stripped.length > 0 && stripped.join('').endsWith(ch) && standalone(stripped[stripped.length - 2])) {
      candidates.push({ letter: ch, position: text.length - 1, format: 'end' });
    }
  }

  if (candidates.length === 0) {
    for (const ch of all) {
      if (text.includes(ch)) candidates.push({ letter: ch, position: text.lastIndexOf(ch), format: 'fallback' });
    }
  }
  if (candidates.length === 0) return '';

  // Python's stable sort by (priority, position) descending.
  candidates.sort((a, b) => PRIORITY[b.format] - PRIORITY[a.format] || b.position - a.position);
  return candidates[0]!.letter;
}

/** ASCII punctuation (Python `string.punctuation`). */
const ASCII_PUNCTUATION = /[!"#$%&'()*+,\-./:;<=>?@[\\\]^_`{|}~]/g;

/** lmms-eval's `exact_match` with ignore_case and ignore_punctuation, on one prediction and reference. */
export function exactMatchIgnoringCaseAndPunctuation(prediction: string, reference: string): boolean {
  const norm = (s: string): string => pyLower(s).replace(ASCII_PUNCTUATION, '');
  return norm(prediction) === norm(reference);
}

/**
 * AI2D: the response becomes its leading letter when it starts with `X.` (after whitespace), is
 * stripped, and must then equal the gold letter ignoring case and ASCII punctuation ("A", "a",
 * "(A)", "A. cat" are right for A; "The answer is A" is not).
 */
export function ai2dCorrect(response: string, goldLetter: string): boolean {
  const leading = /^\s*([A-Z])\./u.exec(response);
  const filtered = pyStrip(leading ? leading[1]! : response);
  return exactMatchIgnoringCaseAndPunctuation(filtered, goldLetter);
}

/** MMStar: `extract_mcq_answer` over A-D must equal the gold letter (stripped, upper-cased). */
export function mmstarCorrect(response: string, goldLetter: string): boolean {
  return extractMcqAnswer(response, ['A', 'B', 'C', 'D']) === pyStrip(goldLetter).toUpperCase();
}

/**
 * RealWorldQA: when the gold answer is a letter A-D, `extract_mcq_answer` over A-D must give it;
 * otherwise (open answers such as "3" or "Downhill") the lower-cased response, stripped of
 * whitespace and trailing periods, must equal the lower-cased gold answer.
 */
export function realworldqaCorrect(response: string, gold: string): boolean {
  const gt = pyStrip(gold);
  if (['A', 'B', 'C', 'D'].includes(gt.toUpperCase())) {
    return extractMcqAnswer(response, ['A', 'B', 'C', 'D']) === gt.toUpperCase();
  }
  return pyRStrip(pyStrip(pyLower(response)), '.') === pyLower(gt);
}

// --- Prompts of the benchmarks whose public releases differ in where the options are ----------

/**
 * Whether the question text already lists every option (`A. text` or `A: text`), as the releases
 * lmms-eval reads do for MMStar ("Options: A: ..., B: ...") and RealWorldQA ("A. ..." lines); an
 * item without options counts as listing them.
 */
export function questionListsOptions(question: string, options: readonly ChoiceOption[] | undefined): boolean {
  return (options ?? []).every((o) => question.includes(`${o.label}. ${o.text}`) || question.includes(`${o.label}: ${o.text}`));
}

const byLabel = (options: readonly ChoiceOption[] | undefined): ChoiceOption[] =>
  [...(options ?? [])].sort((a, b) => (a.label < b.label ? -1 : a.label > b.label ? 1 : 0));

/** MMStar's default post prompt (`_default_template_yaml`; no final period). */
export const MMSTAR_POST_PROMPT = "\nAnswer with the option's letter from the given choices directly";
/** The question's own instruction, which MMStar's post prompt replaces. */
const MMSTAR_REPLACED = ' Please answer yes or no.';

/**
 * MMStar. Options inside the question (Lin-Chen/MMStar, `mmstar_doc_to_text`): the stripped
 * question without " Please answer yes or no.", then the post prompt. Options in columns A-D
 * (VLMEvalKit's MMStar.tsv, which lmms-eval reads as `mmstar_oc`, `mmstar_oc_doc_to_text`): the
 * question without `<image 1>`, "\nOptions:\n", one "X. text\n" line per option in letter order,
 * the post prompt, trailing whitespace stripped.
 */
export function mmstarPrompt(item: VqaItem): string {
  if (questionListsOptions(item.question, item.options)) return `${pyStrip(item.question).replaceAll(MMSTAR_REPLACED, '')}${MMSTAR_POST_PROMPT}`;
  const listed = byLabel(item.options).map((o) => `${o.label}. ${o.text}\n`).join('');
  return pyRStrip(`${item.question.replaceAll('<image 1>', '')}\nOptions:\n${listed}${MMSTAR_POST_PROMPT}`);
}

/** The instruction line that ends RealWorldQA's multiple-choice questions in its release. */
export const REALWORLDQA_INSTRUCTION = 'Please answer directly with only the letter of the correct option and nothing else.';

/**
 * RealWorldQA (`realworldqa_doc_to_text`, default kwargs: no pre or post prompt): the stripped
 * question. Its release (lmms-lab RealWorldQA, from xai-org) writes the options into the question
 * as "A. text" lines followed by the instruction line; where the options come in columns instead
 * (VLMEvalKit's RealWorldQA.tsv), that question is rebuilt: the question without the instruction,
 * one "X. text" line per option in letter order, then the instruction, one per line.
 */
export function realworldqaPrompt(item: VqaItem): string {
  if (questionListsOptions(item.question, item.options)) return pyStrip(item.question);
  const stem = pyStrip(item.question.replaceAll(REALWORLDQA_INSTRUCTION, ''));
  return pyStrip([stem, ...byLabel(item.options).map((o) => `${o.label}. ${o.text}`), REALWORLDQA_INSTRUCTION].join('\n'));
}
