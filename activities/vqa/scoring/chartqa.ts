/**
 * ChartQA relaxed accuracy as lmms-eval computes it (lmms_eval/tasks/chartqa/utils.py
 * `relaxed_correctness`, `chartqa_process_results`, commit 75571cfe; after Qwen-VL's
 * evaluate_vqa.py).
 *
 * Both strings go through Python `float()`, a trailing "%" dividing by 100 ("12%" → 0.12). When the
 * prediction parses and the target parses to a non-zero number, the prediction is right when
 * |pred − target| / |target| ≤ 0.05. Otherwise (a word, "1,000" — commas do not parse —, a target
 * of 0) the lower-cased strings must be equal. No other normalisation: "$5" or "5 million" are
 * words. The benchmark figure is the mean in %, split by `meta.type` (human_test /
 * augmented_test) in the breakdown.
 */
import { pyFloat, pyLower, pyRStrip } from './py';

export const CHARTQA_MAX_RELATIVE_CHANGE = 0.05;

function toFloat(text: string): number | null {
  if (text.endsWith('%')) {
    const v = pyFloat(pyRStrip(text, '%'));
    return v === null ? null : v / 100;
  }
  return pyFloat(text);
}

export function relaxedCorrectness(prediction: string, target: string, maxRelativeChange = CHARTQA_MAX_RELATIVE_CHANGE): boolean {
  const p = toFloat(prediction);
  const t = toFloat(target);
  // Python `if prediction_float is not None and target_float:` (0.0 is falsy, NaN is not).
  if (p !== null && t !== null && t !== 0) {
    return Math.abs(p - t) / Math.abs(t) <= maxRelativeChange;
  }
  return pyLower(prediction) === pyLower(target);
}
