/**
 * ANLS for DocVQA and InfoVQA as lmms-eval computes it (lmms_eval/api/metrics.py `anls` and
 * `levenshtein_distance`, commit 75571cfe; after Qwen-VL's infographicsvqa_eval.py).
 *
 * Per reference answer: both sides lower-cased, stripped and whitespace-collapsed; the normalised
 * Levenshtein distance is the edit distance over max(length of the raw answer, length of the raw
 * prediction) (lmms-eval divides by the un-normalised lengths, upper-cased, in code points). The
 * item scores 1 − the smallest distance, or 0 when that is below the threshold 0.5 (exactly 0.5 is
 * kept). The benchmark figure is the mean over items, in %.
 */
import { codePoints, pyLen, pyLower, pySplit, pyStrip } from './py';

export const ANLS_THRESHOLD = 0.5;

/** Edit distance (insert, delete, substitute, each 1) over code points. */
export function levenshtein(a: string, b: string): number {
  let s1 = codePoints(a);
  let s2 = codePoints(b);
  if (s1.length > s2.length) [s1, s2] = [s2, s1];
  let prev = Array.from({ length: s1.length + 1 }, (_, i) => i);
  for (let i2 = 0; i2 < s2.length; i2++) {
    const cur = [i2 + 1];
    for (let i1 = 0; i1 < s1.length; i1++) {
      cur.push(s1[i1] === s2[i2] ? prev[i1]! : 1 + Math.min(prev[i1]!, prev[i1 + 1]!, cur[cur.length - 1]!));
    }
    prev = cur;
  }
  return prev[prev.length - 1]!;
}

/** ANLS of one prediction (already stripped, as lmms-eval strips every response) against its answers. */
export function anls(prediction: string, answers: readonly string[], threshold = ANLS_THRESHOLD): number {
  if (answers.length === 0) return 0;
  const det = pySplit(pyLower(pyStrip(prediction))).join(' ');
  const values = answers.map((answer) => {
    const gt = pySplit(pyLower(pyStrip(answer))).join(' ');
    const length = Math.max(pyLen(answer.toUpperCase()), pyLen(prediction.toUpperCase()));
    return length === 0 ? 0 : levenshtein(gt, det) / length;
  });
  const result = 1 - Math.min(...values);
  return result < threshold ? 0 : result;
}
