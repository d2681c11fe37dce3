/**
 * MMBench (en and cn, dev split) as lmms-eval scores it without a GPT judge: the static variant,
 * `mmbench_en_dev_static` (lmms_eval/tasks/mmbench/en_utils.py `mmbench_aggregate_dev_results_static`
 * → mmbench_evals.py `MMBench_Evaluator.eval_result(eval_method="static")`). The GPT variant
 * (`gpt_eval_score`) differs only where neither rule below finds an answer: it asks GPT to match the
 * response to an option instead of running `extract_mcq_answer`.
 *
 * Circular evaluation: the release holds each source question several times with its options
 * rotated (row index `i`, `i + 1e6`, `i + 2e6`, ...); a source question counts as right only when
 * every rotation's answer is right. Per rotation the answer is `can_infer` (a single option letter
 * among the whitespace-separated tokens, bare or as `X.` `X,` `X:` `X)` `(X)` ..., else the single
 * option whose text appears in the response) and, where that finds nothing, `extract_mcq_answer`
 * over the item's option letters.
 *
 * Prompt (`mmbench_doc_to_text` + `create_options_prompt`):
 * `<hint> <question> There are several options:\nA. ...\nB. ...` then `\n` and the post prompt.
 */
import type { ChoiceOption, VqaItem } from '../../../data-schemas/vqa';
import { extractMcqAnswer } from './choice';
import { pyLower, pySplit, pyStrip } from './py';

export const MMBENCH_POST_PROMPT = {
  en: "\nAnswer with the option's letter from the given choices directly.",
  cn: '\n请直接使用所提供的选项字母作为答案回答。',
} as const;

/** `mmbench.yaml` metadata `sys_prompt` (English for both languages). */
const SYS_PROMPT = 'There are several options:';

/** The options lmms-eval lists: letters A-E with a non-empty text other than "nan", sorted. */
function promptOptions(options: readonly ChoiceOption[] | undefined): ChoiceOption[] {
  return (options ?? [])
    .filter((o) => 'ABCDE'.includes(o.label) && o.text !== '' && o.text !== 'nan')
    .sort((a, b) => (a.label < b.label ? -1 : a.label > b.label ? 1 : 0));
}

export function mmbenchPrompt(item: VqaItem, lang: 'en' | 'cn'): string {
  const optionsPrompt = [SYS_PROMPT, ...promptOptions(item.options).map((o) => `${o.label}. ${o.text}`)].join('\n');
  // en skips a missing hint and the literal "nan"; cn only a missing one.
  const hasHint = item.hint !== undefined && (lang === 'cn' || item.hint !== 'nan');
  const query = hasHint ? `${item.hint} ${item.question} ${optionsPrompt}` : `${item.question} ${optionsPrompt}`;
  return `${query}\n${MMBENCH_POST_PROMPT[lang]}`;
}

/** The options the scorer matches against: A-D present on the item (`build_choices`). */
function scoringChoices(item: VqaItem): Map<string, string> {
  const out = new Map<string, string>();
  for (const ch of 'ABCD') {
    const opt = item.options?.find((o) => o.label === ch);
    if (opt) out.set(ch, opt.text);
  }
  return out;
}

const OPTION_TOKEN_WRAPS: readonly [string, string][] = [
  ['', '.'],
  ['', ','],
  ['', ':'],
  ['', ')'],
  ['', ').'],
  ['(', ')'],
  ['(', ').'],
  [':', ''],
  [':', ','],
  [':', '.'],
  [':', ')'],
  [':', ').'],
];

/** `can_infer_option`: a single letter A-E as a whitespace-separated token, bare or wrapped. */
export function canInferOption(answer: string): string | false {
  const choices = 'ABCDE';
  if (answer.includes('Failed to obtain answer via API')) return false;
  const splits = pySplit(answer).map((x) => pyStrip(x));
  const count = (prefix: string, suffix: string): number => [...choices].filter((c) => splits.includes(prefix + c + suffix)).length;
  if (count('', '') === 1) {
    for (const ch of choices) {
      // "A" may be an article: with more than three tokens, a bare A is not trusted.
      if (splits.includes('A') && splits.length > 3) break;
      if (splits.includes(ch)) return ch;
    }
  }
  for (const [prefix, suffix] of OPTION_TOKEN_WRAPS) {
    if (count(prefix, suffix) === 1) {
      for (const ch of choices) if (splits.includes(prefix + ch + suffix)) return ch;
    }
  }
  return false;
}

/** `can_infer_text`: the one option whose (lower-cased) text appears in the lower-cased answer. */
export function canInferText(answer: string, choices: Map<string, string>): string | false {
  const lower = pyLower(answer);
  const hits = [...choices].filter(([, text]) => lower.includes(pyLower(text))).map(([k]) => k);
  return hits.length === 1 ? hits[0]! : false;
}

/** The letter the static evaluator reads from one rotation's response ("" when none). */
export function mmbenchExtract(item: VqaItem, response: string): string {
  const choices = scoringChoices(item);
  const inferred = canInferOption(response) || canInferText(response, choices);
  if (inferred) return inferred;
  return extractMcqAnswer(response, [...choices.keys()].sort());
}

/** One rotation answered right (the per-item figure; a missing response is wrong). */
export function mmbenchItemCorrect(item: VqaItem, response: string | undefined): boolean {
  if (response === undefined) return false;
  const gold = item.answers[0];
  return gold !== undefined && mmbenchExtract(item, pyStrip(response)) === gold;
}

/**
 * The circular group of an item: `meta.index` modulo 1e6 (rotations carry `i + k·1e6` in the
 * release, or the shared source index when the loader already folded them). Without an index the
 * item is its own group (no circular evaluation).
 */
export function mmbenchGroup(item: VqaItem): string {
  const raw = item.meta.index;
  if (raw === undefined) return `item:${item.id}`;
  const n = typeof raw === 'number' ? raw : Number(raw);
  return Number.isInteger(n) ? `index:${n % 1_000_000}` : `index:${String(raw)}`;
}

export interface CircularResult {
  /** Circular accuracy in % over source questions. */
  circular: number;
  /** Per-rotation accuracy in %. */
  single: number;
  groups: number;
  /** Circular accuracy in % per `category` and per `l2category`. */
  byCategory: Record<string, number>;
  byL2Category: Record<string, number>;
}

export function mmbenchCircular(items: readonly VqaItem[], predictions: ReadonlyMap<string, string>): CircularResult {
  const groups = new Map<string, VqaItem[]>();
  for (const item of items) {
    const key = mmbenchGroup(item);
    const list = groups.get(key);
    if (list) list.push(item);
    else groups.set(key, [item]);
  }
  let hits = 0;
  let singleHits = 0;
  const cat = new Map<string, [number, number]>();
  const l2 = new Map<string, [number, number]>();
  const bump = (m: Map<string, [number, number]>, key: string, hit: number): void => {
    const cur = m.get(key) ?? [0, 0];
    m.set(key, [cur[0] + hit, cur[1] + 1]);
  };
  for (const members of groups.values()) {
    // The main row (smallest index) gives the group's category, as `cate_map[idx]` does.
    const sorted = [...members].sort((a, b) => Number(a.meta.index ?? 0) - Number(b.meta.index ?? 0));
    const correct = sorted.map((it) => mmbenchItemCorrect(it, predictions.get(it.id)));
    singleHits += correct.filter(Boolean).length;
    const hit = correct.every(Boolean) ? 1 : 0;
    hits += hit;
    const main = sorted[0]!;
    bump(cat, String(main.meta.category ?? 'uncategorized'), hit);
    if (main.meta.l2category !== undefined) bump(l2, String(main.meta.l2category), hit);
  }
  const pct = (m: Map<string, [number, number]>): Record<string, number> =>
    Object.fromEntries([...m].map(([k, [h, n]]) => [k, (100 * h) / n]));
  return {
    circular: groups.size === 0 ? 0 : (100 * hits) / groups.size,
    single: items.length === 0 ? 0 : (100 * singleHits) / items.length,
    groups: groups.size,
    byCategory: pct(cat),
    byL2Category: pct(l2),
  };
}
