/**
 * OCRBench as lmms-eval scores it (lmms_eval/tasks/ocrbench/utils.py `ocrbench_process_results`,
 * `ocrbench_aggregate_accuracy`, commit 75571cfe).
 *
 * An item is a hit when one of its reference answers is a substring of the response. Normally both
 * sides are folded (full-width ASCII U+FF01–U+FF5E to ASCII, U+3000 to a space), lower-cased,
 * stripped and have newlines turned into spaces. Items from the HME100k source (the "Handwritten
 * Mathematical Expression Recognition" category) are compared case-sensitively with every space and
 * newline removed instead (LaTeX such as `\frac { a } { b }`).
 *
 * lmms-eval reports `Final_score / 1000` with Final_score the raw number of hits, whatever the
 * number of items: on a subset it does not rescale. Table 1 shows that figure in % (75.0 = 750
 * hits), so our headline is hits / 10 — equal to Table 1's scale on the full 1000 items and, like
 * lmms-eval, not rescaled on a subset (the breakdown has `hits`, `accuracy %` = hits / N and
 * `hits per 1000` = hits × 1000 / N).
 */
import type { VqaItem } from '../../../data-schemas/vqa';
import { pyLower, pyStrip } from './py';

export const OCRBENCH_CATEGORIES = [
  'Regular Text Recognition',
  'Irregular Text Recognition',
  'Artistic Text Recognition',
  'Handwriting Recognition',
  'Digit String Recognition',
  'Non-Semantic Text Recognition',
  'Scene Text-centric VQA',
  'Doc-oriented VQA',
  'Key Information Extraction',
  'Handwritten Mathematical Expression Recognition',
] as const;
export const OCRBENCH_RECOGNITION = OCRBENCH_CATEGORIES.slice(0, 6);
export const HME_CATEGORY = 'Handwritten Mathematical Expression Recognition';

/** Full-width ASCII and the ideographic space to ASCII, nothing else (not NFKC). */
export function foldFullwidthAscii(text: string): string {
  let out = '';
  for (const ch of text) {
    const cp = ch.codePointAt(0)!;
    if (cp >= 0xff01 && cp <= 0xff5e) out += String.fromCodePoint(cp - 0xfee0);
    else if (cp === 0x3000) out += ' ';
    else out += ch;
  }
  return out;
}

/** Whether the item comes from HME100k: `meta.dataset`, else its category. */
export function isHme(item: VqaItem): boolean {
  const dataset = item.meta.dataset;
  if (dataset !== undefined) return dataset === 'HME100k';
  return item.meta.category === HME_CATEGORY;
}

export function ocrbenchHit(response: string, answers: readonly string[], hme: boolean): boolean {
  const pred = pyStrip(response);
  const norm = hme
    ? (s: string): string => pyStrip(s).replaceAll('\n', ' ').replaceAll(' ', '')
    : (s: string): string => pyStrip(pyLower(foldFullwidthAscii(s))).replaceAll('\n', ' ');
  const predict = norm(pred);
  return answers.some((a) => predict.includes(norm(a)));
}
