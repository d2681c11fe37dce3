/**
 * MME as lmms-eval scores it (lmms_eval/tasks/mme/utils.py `parse_pred_ans`, `mme_process_results`,
 * `mme_aggregate_results`, commit 75571cfe).
 *
 * A response reads as yes/no: lower-cased, stripped, periods removed; exactly "yes"/"no"; a single
 * "y"/"n"; otherwise "yes" or "no" within its first four characters ("yes" first); anything else is
 * "other" (wrong). Per subtask, each image (its two questions) scores acc (% of its questions right)
 * + acc+ (100 when both are right), and the subtask score is the mean over its images (max 200).
 * Perception sums the 10 perception subtasks (max 2000), cognition the 4 cognition ones (max 800).
 */
import type { VqaItem } from '../../../data-schemas/vqa';
import { pyLower, pyStrip } from './py';

export const MME_PERCEPTION = ['existence', 'count', 'position', 'color', 'posters', 'celebrity', 'scene', 'landmark', 'artwork', 'OCR'] as const;
export const MME_COGNITION = ['commonsense_reasoning', 'numerical_calculation', 'text_translation', 'code_reasoning'] as const;

/** The question's own instruction, dropped because the post prompt replaces it. */
const REPLACE_PROMPT = ' Please answer yes or no.';
export const MME_POST_PROMPT = '\nAnswer the question using a single word or phrase.';

export function mmePrompt(item: VqaItem): string {
  return `${pyStrip(item.question).replaceAll(REPLACE_PROMPT, '')}${MME_POST_PROMPT}`;
}

export function mmeParse(response: string): 'yes' | 'no' | 'other' {
  const ans = pyStrip(pyLower(response)).replaceAll('.', '');
  if (ans === 'yes' || ans === 'no') return ans;
  if ([...ans].length === 1) return ans === 'y' ? 'yes' : ans === 'n' ? 'no' : 'other';
  const prefix = [...ans].slice(0, 4).join('');
  if (prefix.includes('yes')) return 'yes';
  if (prefix.includes('no')) return 'no';
  return 'other';
}

export function mmeItemCorrect(item: VqaItem, response: string | undefined): boolean {
  if (response === undefined) return false;
  const gold = pyStrip(pyLower(item.answers[0] ?? '')).replaceAll('.', '');
  return mmeParse(pyStrip(response)) === gold;
}

export interface MmeResult {
  perception: number;
  cognition: number;
  /** Score (acc + acc+, max 200) of each subtask present. */
  subtasks: Record<string, number>;
}

/**
 * Scores grouped by `meta.subtask` and, within it, `meta.imageId`. lmms-eval asserts exactly two
 * questions per image; here an image with another count (a subset cut a pair) scores acc as its
 * share of right answers and acc+ as 100 when all are right. Subtasks outside both lists count in
 * `subtasks` only.
 */
export function mmeScore(items: readonly VqaItem[], predictions: ReadonlyMap<string, string>): MmeResult {
  const bySubtask = new Map<string, Map<string, boolean[]>>();
  for (const item of items) {
    const subtask = String(item.meta.subtask ?? 'unknown');
    const image = String(item.meta.imageId ?? item.id);
    const images = bySubtask.get(subtask) ?? new Map<string, boolean[]>();
    bySubtask.set(subtask, images);
    const scores = images.get(image) ?? [];
    images.set(image, scores);
    scores.push(mmeItemCorrect(item, predictions.get(item.id)));
  }
  const subtasks: Record<string, number> = {};
  for (const [subtask, images] of bySubtask) {
    let total = 0;
    for (const scores of images.values()) {
      const right = scores.filter(Boolean).length;
      total += (right / scores.length) * 100 + (right === scores.length ? 100 : 0);
    }
    subtasks[subtask] = total / images.size;
  }
  const sum = (names: readonly string[]): number => names.reduce((acc, n) => acc + (subtasks[n] ?? 0), 0);
  return { perception: sum(MME_PERCEPTION), cognition: sum(MME_COGNITION), subtasks };
}
