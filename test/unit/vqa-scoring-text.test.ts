/**
 * Worked examples for the VQA scorers, part 2: ANLS (DocVQA, InfoVQA), TextVQA accuracy, ChartQA
 * relaxed accuracy, OCRBench. Each expected number is derived by hand from the lmms-eval rule
 * (commit 75571cfe) named in the module's comment.
 */
import { describe, expect, it } from 'vitest';
import { VqaItem } from '../../data-schemas/vqa';
import { BENCHMARKS } from '../../activities/vqa/scoring/index';
import { anls, levenshtein } from '../../activities/vqa/scoring/anls';
import { relaxedCorrectness } from '../../activities/vqa/scoring/chartqa';
import { ocrbenchHit } from '../../activities/vqa/scoring/ocrbench';
import { normalizeVqaAnswer, vqaAccuracy } from '../../activities/vqa/scoring/vqa-accuracy';

const item = (over: Partial<VqaItem> & Pick<VqaItem, 'id' | 'benchmark'>): VqaItem =>
  VqaItem.parse({ question: 'what is written here?', images: ['img.png'], answers: ['x'], ...over });

describe('ANLS (threshold 0.5)', () => {
  it('levenshtein', () => {
    expect(levenshtein('kitten', 'sitting')).toBe(3);
    expect(levenshtein('', 'abc')).toBe(3);
  });
  it('exact, case/space-insensitive match scores 1', () => {
    expect(anls('  The  Cat ', ['the cat'])).toBe(1);
  });
  it('just above 0.5 is kept', () => {
    // "abcdef" vs "abcxyz": 3 edits / max(6, 6) = 0.5 → 1 − 0.5 = 0.5, not below 0.5 → kept.
    expect(anls('abcxyz', ['abcdef'])).toBe(0.5);
    // "abcdefg" vs "abcdwxy": 3 edits / 7 → 1 − 3/7 = 4/7 ≈ 0.571, kept.
    expect(anls('abcdwxy', ['abcdefg'])).toBeCloseTo(4 / 7, 12);
  });
  it('just below 0.5 becomes 0', () => {
    // "abcdefg" vs "abcxyzw": 4/7 → 1 − 4/7 = 0.4286 < 0.5 → 0.
    expect(anls('abcxyzw', ['abcdefg'])).toBe(0);
  });
  it('takes the best of several answers', () => {
    // "1 mile": vs "one mile" 3/8 → 0.625; vs "1 mile" 0 → 1.
    expect(anls('1 mile', ['one mile', '1 mile'])).toBe(1);
  });
  it('divides by the raw lengths, not the normalised ones', () => {
    // Answer "a  b" (4 characters raw, "a b" normalised) vs prediction "a c": 1 edit / max(4, 3) → 0.75.
    expect(anls('a c', ['a  b'])).toBe(0.75);
  });
  it('empty prediction against a non-empty answer is 0; benchmark mean in %', () => {
    expect(anls('', ['abc'])).toBe(0);
    const items = [item({ id: 'a', benchmark: 'docvqa', answers: ['abcdef'] }), item({ id: 'b', benchmark: 'docvqa', answers: ['x'] })];
    const s = BENCHMARKS.docvqa.score(items, new Map([['a', 'abcxyz']]));
    expect(s.value).toBe(25); // (0.5 + 0 [missing]) / 2
    expect(s.metric).toBe('ANLS');
  });
});

describe('TextVQA (EvalAI normalisation + leave-one-out VQA accuracy)', () => {
  it.each([
    ['Two', '2', 'number words to digits'],
    ['The Cat.', 'cat', 'lower-case, article dropped, final period deleted'],
    ['a dog', 'dog', 'article "a" dropped'],
    ['none', '0', '"none" is a number word'],
    ['dont', "don't", 'contraction restored'],
    ['coca-cola', 'coca cola', '"-" not touching a space becomes a space'],
    ['coca - cola', 'coca cola', '"-" touching a space is deleted; split/join collapses spaces'],
    ['3.5', '3.5', 'a period before a digit stays'],
    ["man's hat", "man 's hat", '"\'s" split off'],
    ['1,000', '1000', 'commas deleted'],
    ['yes!', 'yes', '"!" not touching a space becomes a space, trimmed by split'],
  ])('%j → %j (%s)', (raw, expected) => {
    expect(normalizeVqaAnswer(raw)).toBe(expected);
  });

  const ten = (pairs: [string, number][]): string[] => pairs.flatMap(([a, n]) => Array<string>(n).fill(a));
  it('min(1, matches/3) averaged over the 10 leave-one-out subsets', () => {
    // 4 humans say "2": leaving one of them out leaves 3 → 1; leaving another out leaves 4 → 1. → 1.
    expect(vqaAccuracy('two', ten([['2', 4], ['3', 6]]))).toBe(1);
    // 3 say it: 3 subsets leave 2 matches (2/3), 7 leave 3 (1) → (3·2/3 + 7) / 10 = 0.9.
    expect(vqaAccuracy('2', ten([['2', 3], ['3', 7]]))).toBeCloseTo(0.9, 12);
    // 2 say it: 2 subsets leave 1 (1/3), 8 leave 2 (2/3) → (2/3 + 16/3) / 10 = 0.6.
    expect(vqaAccuracy('the 2.', ten([['2', 2], ['3', 8]]))).toBeCloseTo(0.6, 12);
    // 1 says it: 1 subset leaves 0, 9 leave 1 (1/3) → 0.3.
    expect(vqaAccuracy('2', ten([['2', 1], ['3', 9]]))).toBeCloseTo(0.3, 12);
    expect(vqaAccuracy('', ten([['2', 10]]))).toBe(0);
  });
  it('benchmark mean in %, prompt capitalised as Python capitalize()', () => {
    const it1 = item({ id: 't', benchmark: 'textvqa', question: 'what does MTV stand for?', answers: ten([['music television', 10]]) });
    expect(BENCHMARKS.textvqa.prompt(it1)).toBe('What does mtv stand for?\nAnswer the question using a single word or phrase.');
    expect(BENCHMARKS.textvqa.score([it1], new Map([['t', 'Music Television.']])).value).toBe(100);
  });
});

describe('ChartQA relaxed accuracy (5%)', () => {
  it.each([
    ['10.4', '10', true, '|10.4 − 10| / 10 = 0.04 ≤ 0.05'],
    ['10.6', '10', false, '0.06 > 0.05'],
    ['10.5', '10', true, '0.05 exactly (in binary 0.05 ≤ 0.05 holds)'],
    ['12%', '0.12', true, '"12%" → 0.12'],
    ['12', '12%', false, '12 vs 0.12: far off'],
    ['1,000', '1000', false, 'commas do not parse: string comparison "1,000" != "1000"'],
    ['1000', '1,000', false, 'target does not parse: string comparison'],
    ['Yes', 'yes', true, 'words compared lower-cased'],
    ['0', '0', true, 'target 0 is falsy → string comparison "0" == "0"'],
    ['0.0', '0', false, 'target 0 → string comparison "0.0" != "0"'],
    ['$5', '5', false, '"$5" is not a number and not the string "5"'],
    [' 5 ', '5', true, 'Python float() ignores surrounding spaces'],
  ])('%j vs %j → %s (%s)', (pred, target, expected) => {
    expect(relaxedCorrectness(pred, target)).toBe(expected);
  });
  it('benchmark: mean in %, split by type', () => {
    const items = [
      item({ id: 'h', benchmark: 'chartqa', answers: ['50'], meta: { type: 'human_test' } }),
      item({ id: 'g', benchmark: 'chartqa', answers: ['Blue'], meta: { type: 'augmented_test' } }),
    ];
    const s = BENCHMARKS.chartqa.score(items, new Map([['h', '51'], ['g', 'red']]));
    expect(s.value).toBe(50);
    expect(s.breakdown).toEqual({ 'type/human_test': 100, 'type/augmented_test': 0 });
  });
});

describe('OCRBench', () => {
  it('substring after folding, lower-casing and stripping', () => {
    expect(ocrbenchHit('The text says: HELLO World', ['hello world'], false)).toBe(true);
    expect(ocrbenchHit('ＨＥＬＬＯ', ['hello'], false)).toBe(true); // full-width folded
    expect(ocrbenchHit('hello\nworld', ['hello world'], false)).toBe(true); // newline → space
    expect(ocrbenchHit('helloworld', ['hello world'], false)).toBe(false); // spaces kept outside HME100k
    expect(ocrbenchHit('', ['hello'], false)).toBe(false);
  });
  it('HME100k: spaces and newlines removed, case kept', () => {
    expect(ocrbenchHit('\\frac{a}{b}', ['\\frac { a } { b }'], true)).toBe(true);
    expect(ocrbenchHit('X^2', ['x ^ 2'], true)).toBe(false);
    expect(ocrbenchHit('x ^\n2', ['x^2'], true)).toBe(true);
  });
  it('headline: hits / 10 (lmms-eval Final_score / 1000, in %), not rescaled on a subset', () => {
    const items = [
      item({ id: 'a', benchmark: 'ocrbench', answers: ['stop'], meta: { category: 'Regular Text Recognition' } }),
      item({ id: 'b', benchmark: 'ocrbench', answers: ['x^2'], meta: { category: 'Handwritten Mathematical Expression Recognition', dataset: 'HME100k' } }),
      item({ id: 'c', benchmark: 'ocrbench', answers: ['exit'], meta: { category: 'Scene Text-centric VQA' } }),
      item({ id: 'd', benchmark: 'ocrbench', answers: ['42'], meta: { category: 'Scene Text-centric VQA' } }),
    ];
    const s = BENCHMARKS.ocrbench.score(items, new Map([['a', 'STOP'], ['b', 'x ^ 2'], ['c', 'Exit.'], ['d', '24']]));
    // Hits: a (case folded), b (spaces removed), c (substring) → 3 → 3 / 1000 → 0.3 %.
    expect(s.value).toBeCloseTo(0.3, 12);
    expect(s.breakdown.hits).toBe(3);
    expect(s.breakdown['accuracy %']).toBe(75);
    expect(s.breakdown['hits per 1000']).toBe(750);
    expect(s.breakdown['Text Recognition']).toBe(1);
    expect(s.breakdown['category/Scene Text-centric VQA']).toBe(1);
  });
});

describe('prompts of the short-answer benchmarks', () => {
  it('DocVQA, InfoVQA, ChartQA, OCRBench, RealWorldQA, AI2D', () => {
    const q = item({ id: 'q', benchmark: 'docvqa', question: 'What is the date? ' });
    expect(BENCHMARKS.docvqa.prompt(q)).toBe('What is the date? \nAnswer the question using a single word or phrase.');
    expect(BENCHMARKS.infovqa.prompt(q)).toBe('What is the date? \nAnswer the question using a single word or phrase.');
    expect(BENCHMARKS.chartqa.prompt(q)).toBe('What is the date? \nAnswer the question with a single word.');
    expect(BENCHMARKS.ocrbench.prompt(q)).toBe('What is the date?');
    expect(BENCHMARKS.realworldqa.prompt(q)).toBe('What is the date?');
    const ai = item({ id: 'a', benchmark: 'ai2d', question: 'Which stage?', options: [{ label: 'A', text: 'egg' }, { label: 'B', text: 'larva' }] });
    expect(BENCHMARKS.ai2d.prompt(ai)).toBe("Which stage?\nA. egg\nB. larva\nAnswer with the option's letter from the given choices directly.");
  });
});
