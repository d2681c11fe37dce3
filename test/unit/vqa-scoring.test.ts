/**
 * Worked examples for the VQA scorers (activities/vqa/scoring), each derived by hand from the
 * lmms-eval rule it follows (commit 75571cfe; the module comments name the functions). Part 1:
 * multiple choice (MMStar, AI2D, RealWorldQA, MMBench), MME, MMMU, and the registry. Part 2
 * (vqa-scoring-text.test.ts): ANLS, TextVQA, ChartQA, OCRBench.
 */
import { describe, expect, it } from 'vitest';
import { BenchmarkId, BenchmarkScore, GenerationSettings, VqaItem } from '../../data-schemas/vqa';
import { BENCHMARKS } from '../../activities/vqa/scoring/index';
import { ai2dCorrect, extractMcqAnswer, mmstarCorrect, realworldqaCorrect } from '../../activities/vqa/scoring/choice';
import { canInferOption, canInferText, mmbenchExtract } from '../../activities/vqa/scoring/mmbench';
import { mmeParse } from '../../activities/vqa/scoring/mme';
import { evalOpen, extractNumbers, mmmuItem, normalizeStr, parseMultiChoice, parseOpenResponse } from '../../activities/vqa/scoring/mmmu';
import { pyFloat, pyFloatStr, pyRound2, pySplit, pyStrip } from '../../activities/vqa/scoring/py';

const item = (over: Partial<VqaItem> & Pick<VqaItem, 'id' | 'benchmark'>): VqaItem =>
  VqaItem.parse({ question: 'Q?', images: ['img.png'], answers: ['A'], ...over });

const abcd = [
  { label: 'A', text: 'cat' },
  { label: 'B', text: 'dog' },
  { label: 'C', text: 'bird' },
  { label: 'D', text: 'fish' },
];

describe('Python helpers', () => {
  it('strip/split use Python whitespace; float() accepts what Python accepts', () => {
    expect(pyStrip('\u00a0 A \u3000')).toBe('A');
    expect(pySplit(' a\tb\u2003c ')).toEqual(['a', 'b', 'c']);
    expect(pyFloat(' 1_000 ')).toBe(1000);
    expect(pyFloat('5.')).toBe(5);
    expect(pyFloat('.5')).toBe(0.5);
    expect(pyFloat('-Inf')).toBe(-Infinity);
    expect(Number.isNaN(pyFloat('nan'))).toBe(true);
    expect(pyFloat('1,000')).toBeNull();
    expect(pyFloat('12%')).toBeNull();
    expect(pyFloat('1__0')).toBeNull();
  });
  it('round(x, 2) rounds exact ties to even', () => {
    expect(pyRound2(0.125)).toBe(0.12); // exact binary tie → even
    expect(pyRound2(0.375)).toBe(0.38);
    expect(pyRound2(2.675)).toBe(2.67); // 2.675 is 2.67499999... in binary
    expect(pyRound2(1.005)).toBe(1); // 1.00499999...
    expect(pyRound2(3.14159)).toBe(3.14);
  });
  it('str(float) is Python repr: exponent below 1e-4 and from 1e16, two exponent digits at least', () => {
    expect([2, 0.5, 0.0001, 0.00001, 1.5e-7, 1e16, 1.25e21, 123456789012345.6, -0, 1e22, 5e-324].map(pyFloatStr)).toEqual([
      '2.0', '0.5', '0.0001', '1e-05', '1.5e-07', '1e+16', '1.25e+21', '123456789012345.6', '-0.0', '1e+22', '5e-324',
    ]);
  });
});

describe('extract_mcq_answer (MMStar, RealWorldQA, MMBench fallback)', () => {
  const cases: [string, string, string][] = [
    ['A', 'A', 'a bare letter is a "start" candidate'],
    ['(C)', 'C', '"(C)": start is "(", so "parentheses" (6) beats "right_paren" (3)'],
    ['The answer is (C).', 'C', 'trailing "." is stripped; "(C)" and the phrase "answer is" both give C'],
    ['B. dog', 'B', '"B" starts the text and is followed by the non-letter "." → start'],
    ['A and B', 'A', 'start (10) A beats end (9) B'],
    ['I think it is B', 'B', 'end (9) B; "I" is not a choice'],
    ['Cat', 'C', 'start fails ("a" is alphabetic), no other format → fallback finds "C"'],
    ['', '', 'empty response'],
    ['none of them', '', 'no capital A-D anywhere'],
    ['The correct option is D, because', 'D', 'phrase "option is" → first choice letter after it: D'],
    ['答案是C', 'C', 'Chinese phrase 答案是; "C" also ends the text (end, 9) after a non-alpha? 是 is alphabetic (Lo), so phrase (7) wins with C'],
  ];
  it.each(cases)('%j → %j (%s)', (response, expected) => {
    expect(extractMcqAnswer(response, ['A', 'B', 'C', 'D'])).toBe(expected);
  });
  it('"A cat" starts with the letter A followed by a space (start wins even though it may be an article)', () => {
    expect(extractMcqAnswer('A cat', ['A', 'B', 'C', 'D'])).toBe('A');
  });
  it('MMStar compares with the stripped, upper-cased gold', () => {
    expect(mmstarCorrect('(b)', ' b ')).toBe(false); // lower-case b is not a choice: fallback finds nothing → ""
    expect(mmstarCorrect('B', ' b ')).toBe(true);
  });
});

describe('AI2D (regex filter + exact_match ignoring case and punctuation)', () => {
  it.each([
    ['A', 'A', true, 'bare letter'],
    ['a', 'A', true, 'case ignored'],
    ['A. cat', 'A', true, 'leading "A." becomes "A"'],
    ['(A)', 'A', true, 'punctuation removed: "a" == "a"'],
    ['A)', 'A', true, '"a)" → "a"'],
    ['The answer is A', 'A', false, 'whole sentence compared: "the answer is a" != "a"'],
    ['cat', 'A', false, 'option text is not mapped to its letter for AI2D'],
    ['A and B', 'A', false, '"a and b" != "a"'],
    ['', 'A', false, 'empty'],
  ])('%j vs %s → %s (%s)', (response, gold, expected) => {
    expect(ai2dCorrect(response, gold)).toBe(expected);
  });
});

describe('RealWorldQA', () => {
  it('letters go through extract_mcq_answer, other answers are compared lower-cased without trailing "."', () => {
    expect(realworldqaCorrect('B.', 'B')).toBe(true);
    expect(realworldqaCorrect('The answer is C', 'C')).toBe(true);
    expect(realworldqaCorrect('Downhill.', 'downhill')).toBe(true);
    expect(realworldqaCorrect('3 cars', '3')).toBe(false); // exact match only
    expect(realworldqaCorrect('three', '3')).toBe(false); // no number-word mapping any more
  });
  it('prompt: the question as the release writes it; options given apart become "X. text" lines before the instruction', () => {
    const rule = 'Please answer directly with only the letter of the correct option and nothing else.';
    const listed = `Which way?\nA. cat\nB. dog\n${rule}`;
    expect(BENCHMARKS.realworldqa.prompt(item({ id: 'r1', benchmark: 'realworldqa', question: ` ${listed}\n` }))).toBe(listed);
    expect(BENCHMARKS.realworldqa.prompt(item({ id: 'r2', benchmark: 'realworldqa', question: 'Which way?', options: abcd.slice(0, 2) }))).toBe(listed);
    expect(BENCHMARKS.realworldqa.prompt(item({ id: 'r3', benchmark: 'realworldqa', question: `Which way? ${rule}`, options: abcd.slice(0, 2) }))).toBe(listed);
    // The options in the question and in `options` too: shown once.
    expect(BENCHMARKS.realworldqa.prompt(item({ id: 'r4', benchmark: 'realworldqa', question: listed, options: abcd.slice(0, 2) }))).toBe(listed);
  });
});

describe('MME yes/no parsing', () => {
  it.each([
    ['Yes.', 'yes', 'periods removed, lower-cased'],
    ['no, it is not', 'no', '"no" within the first four characters "no, "'],
    ['Y', 'yes', 'single letter y'],
    ['x', 'other', 'single other letter'],
    ['Not really', 'no', 'first four "not " contain "no"'],
    ['Yesterday', 'yes', 'first four "yest" contain "yes"'],
    ['There is a dog', 'other', 'first four "ther": neither'],
    ['', 'other', 'empty: length 0, first four "" → other'],
  ])('%j → %s (%s)', (response, expected) => {
    expect(mmeParse(response)).toBe(expected);
  });

  it('scores acc + acc+ per image, sums perception and cognition', () => {
    // existence: image e1 both right (100 + 100), image e2 one right (50 + 0) → (200 + 50) / 2 = 125.
    // count: image c1 both wrong → 0. code_reasoning: image r1 both right → 200.
    const mk = (id: string, subtask: string, imageId: string, answer: string): VqaItem =>
      item({ id, benchmark: 'mme', question: 'Is there a dog? Please answer yes or no.', answers: [answer], meta: { subtask, imageId } });
    const items = [
      mk('e1a', 'existence', 'e1.jpg', 'Yes'),
      mk('e1b', 'existence', 'e1.jpg', 'No'),
      mk('e2a', 'existence', 'e2.jpg', 'Yes'),
      mk('e2b', 'existence', 'e2.jpg', 'No'),
      mk('c1a', 'count', 'c1.jpg', 'Yes'),
      mk('c1b', 'count', 'c1.jpg', 'No'),
      mk('r1a', 'code_reasoning', 'r1.png', 'Yes'),
      mk('r1b', 'code_reasoning', 'r1.png', 'No'),
    ];
    const preds = new Map([
      ['e1a', 'Yes.'],
      ['e1b', 'no, it is not'],
      ['e2a', 'Yes'],
      ['e2b', 'Yes'],
      ['c1a', 'No'],
      // c1b missing → wrong
      ['r1a', 'yes'],
      ['r1b', 'No'],
    ]);
    const s = BENCHMARKS.mme.score(items, preds);
    expect(s.value).toBe(125);
    expect(s.breakdown.cognition).toBe(200);
    expect(s.breakdown.total).toBe(325);
    expect(s.breakdown['subtask/count']).toBe(0);
    expect(BENCHMARKS.mme.itemScore(items[3]!, 'Yes')).toBe(0);
  });

  it('prompt drops " Please answer yes or no." and appends the short-answer instruction', () => {
    const it1 = item({ id: 'm', benchmark: 'mme', question: ' Is this a cat? Please answer yes or no. ' });
    expect(BENCHMARKS.mme.prompt(it1)).toBe('Is this a cat?\nAnswer the question using a single word or phrase.');
  });
});

describe('MMBench (static circular evaluation)', () => {
  it('can_infer_option: one letter token, bare or wrapped', () => {
    expect(canInferOption('B')).toBe('B');
    expect(canInferOption('(C).')).toBe('C'); // wrap ("(", ").")
    expect(canInferOption('A and B')).toBe(false); // two bare letters, and no wrapped one
    expect(canInferOption('A cat is sitting')).toBe(false); // "A" with more than 3 tokens: article
    expect(canInferOption('The answer is B.')).toBe('B'); // bare tokens: none; ("", ".") → "B."
  });
  it('can_infer_text: exactly one option text inside the answer', () => {
    const choices = new Map([['A', 'cat'], ['B', 'dog']]);
    expect(canInferText('It is a Dog', choices)).toBe('B');
    expect(canInferText('cat and dog', choices)).toBe(false);
  });
  it('falls back to extract_mcq_answer over the item letters', () => {
    const it1 = item({ id: 'x', benchmark: 'mmbench-en', options: abcd.slice(0, 3), answers: ['C'] });
    // can_infer_option: tokens "Answer:(C)" → no wrap matches; can_infer_text: no option text;
    // extract_mcq_answer: "(C)" parentheses → C.
    expect(mmbenchExtract(it1, 'Answer:(C)')).toBe('C');
  });

  it('a source question counts only when every rotation is right', () => {
    const rot = (id: string, index: number, answer: string, category: string): VqaItem =>
      item({ id, benchmark: 'mmbench-en', options: abcd, answers: [answer], meta: { index, category } });
    const items = [
      // Source 7 (three rotations, all right).
      rot('q7', 7, 'A', 'ocr'),
      rot('q7r1', 1_000_007, 'B', 'ocr'),
      rot('q7r2', 2_000_007, 'C', 'ocr'),
      // Source 9 (two rotations, the second wrong).
      rot('q9', 9, 'D', 'ocr'),
      rot('q9r1', 1_000_009, 'A', 'ocr'),
      // Source 11 (one rotation, right).
      rot('q11', 11, 'B', 'scene'),
    ];
    const preds = new Map([
      ['q7', 'A'],
      ['q7r1', 'The answer is B.'],
      ['q7r2', 'bird'],
      ['q9', 'D'],
      ['q9r1', 'B'],
      ['q11', '(B)'],
    ]);
    const s = BENCHMARKS['mmbench-en'].score(items, preds);
    // Groups 7 and 11 right, 9 wrong → 2/3; rotations 5/6 right.
    expect(s.value).toBeCloseTo(200 / 3, 12);
    expect(s.breakdown['single-pass accuracy']).toBeCloseTo(500 / 6, 12);
    expect(s.breakdown.groups).toBe(3);
    expect(s.breakdown['category/ocr']).toBe(50);
    expect(s.breakdown['category/scene']).toBe(100);
    expect(BENCHMARKS['mmbench-en'].itemScore(items[4]!, 'B')).toBe(0);
  });

  it('prompts: hint, question, English option list, then the language post prompt', () => {
    const it1 = item({ id: 'p', benchmark: 'mmbench-en', hint: 'Look.', question: 'Which animal?', options: abcd.slice(0, 2) });
    expect(BENCHMARKS['mmbench-en'].prompt(it1)).toBe(
      "Look. Which animal? There are several options:\nA. cat\nB. dog\n\nAnswer with the option's letter from the given choices directly.",
    );
    const it2 = item({ id: 'p2', benchmark: 'mmbench-cn', question: '哪种动物？', options: abcd.slice(0, 2) });
    expect(BENCHMARKS['mmbench-cn'].prompt(it2)).toBe('哪种动物？ There are several options:\nA. cat\nB. dog\n\n请直接使用所提供的选项字母作为答案回答。');
  });
});

describe('MMMU', () => {
  const mcItem = item({ id: 'validation_Art_1', benchmark: 'mmmu', options: abcd, answers: ['B'], meta: { questionType: 'multiple-choice' } });
  const index2ans = new Map(abcd.map((o) => [o.label, o.text]));
  const letters = ['A', 'B', 'C', 'D'];

  it('multiple choice: "(X)", then "X ", then "X.", then option text (more than five words)', () => {
    expect(parseMultiChoice('(B)', letters, index2ans, 's').letter).toBe('B');
    expect(parseMultiChoice('The answer is (C).', letters, index2ans, 's').letter).toBe('C');
    // " A and B " has "A " and "B ": the later " B " wins.
    expect(parseMultiChoice('A and B', letters, index2ans, 's').letter).toBe('B');
    expect(parseMultiChoice('B.', letters, index2ans, 's').letter).toBe('B'); // "." stripped, " B " → "B "
    expect(parseMultiChoice('I am quite sure the animal is a dog', letters, index2ans, 's')).toEqual({ letter: 'B', guessed: false });
    // Only four words: option texts are not searched → random pick (stand-in, reproducible).
    const guess = parseMultiChoice('it is a dog', letters, index2ans, 'seed');
    expect(guess.guessed).toBe(true);
    expect(parseMultiChoice('it is a dog', letters, index2ans, 'seed')).toEqual(guess);
  });

  it('normalize_str and extract_numbers', () => {
    expect(normalizeStr(' 1,234.567 ')).toEqual([1234.57]);
    expect(normalizeStr('X')).toEqual([' x', 'x ']);
    expect(normalizeStr('Paris')).toEqual(['paris']);
    // All comma numbers first, then scientific, then plain ones — and the plain pattern also finds
    // "200" inside "1,200" (no boundary before it is required) and the "3"s of "3.5e3" ("3" before
    // "." and the exponent's "3").
    expect(extractNumbers('between 1,200 and 3.5e3 or -7 kg')).toEqual(['1,200', '3.5e3', '200', '3', '3', '-7']);
  });

  it('open answers with units and several numbers (official rule)', () => {
    // "the speed is 12.5 m/s and the time is 3 s": key part after the last "is " → "3 s";
    // numbers in it: 3 → parsed [“3 s”, 3]. The gold 12.5 is not found; gold 3 is.
    const parsed = parseOpenResponse('The speed is 12.5 m/s and the time is 3 s.');
    expect(parsed).toEqual(['3 s', 3]);
    expect(evalOpen(['3'], parsed)).toBe(true);
    expect(evalOpen(['12.5'], parsed)).toBe(false);
    // Units: "5 cm" gold is a string; it must appear inside a parsed string.
    expect(evalOpen(['5 cm'], parseOpenResponse('5 cm'))).toBe(true);
    expect(evalOpen(['5'], parseOpenResponse('5.00 cm'))).toBe(true); // 5.0 == round(5, 2)
  });

  it('open answers score 0 in lmms-eval (first parsed value walked character by character)', () => {
    const open = item({ id: 'validation_Math_3', benchmark: 'mmmu', question: 'x?', answers: ['3'], meta: { questionType: 'open' } });
    expect(mmmuItem(open, '3')).toEqual({ correct: false, officialCorrect: true, guessed: false });
    const s = BENCHMARKS.mmmu.score([mcItem, open], new Map([[mcItem.id, 'B'], [open.id, '3']]));
    expect(s.value).toBe(50); // MC right, open wrong
    expect(s.breakdown['accuracy (official MMMU open rule)']).toBe(100);
    expect(s.breakdown['subject/Art']).toBe(100);
    expect(s.breakdown['subject/Math']).toBe(0);
  });

  it('prompt: question, lettered options, blank line, instruction', () => {
    expect(BENCHMARKS.mmmu.prompt({ ...mcItem, question: 'What is <image 1>?' })).toBe(
      "What is <image 1>?\nA. cat\nB. dog\nC. bird\nD. fish\n\nAnswer with the option's letter from the given choices directly.",
    );
  });
});

describe('registry', () => {
  it('has every benchmark, greedy settings valid against the schema, and scores on the Table 1 scale', () => {
    for (const id of BenchmarkId.options) {
      const def = BENCHMARKS[id];
      expect(def.id).toBe(id);
      expect(GenerationSettings.parse(def.generation).temperature).toBe(0);
      const s = def.score([], new Map());
      expect(BenchmarkScore.parse(s).items).toBe(0);
    }
    expect(BENCHMARKS['mmbench-en'].generation.maxNewTokens).toBe(1024);
    expect(BENCHMARKS['mmbench-cn'].generation.maxNewTokens).toBe(256);
    expect(BENCHMARKS.mme.generation.maxNewTokens).toBe(16);
    expect(BENCHMARKS.docvqa.generation.maxNewTokens).toBe(32);
  });

  it('names the version of every prompt; MMStar and RealWorldQA are at v2 (options given apart are shown)', () => {
    for (const id of BenchmarkId.options) expect(BENCHMARKS[id].promptVersion).toMatch(/^v[1-9][0-9]*$/);
    expect(BENCHMARKS.mmstar.promptVersion).toBe('v2');
    expect(BENCHMARKS.realworldqa.promptVersion).toBe('v2');
  });

  it('MMStar: mean over l2 categories, not over items', () => {
    const mk = (id: string, l2: string, answer: string): VqaItem =>
      item({ id, benchmark: 'mmstar', answers: [answer], meta: { category: 'math', l2category: l2 } });
    const items = [mk('a', 'geometry', 'A'), mk('b', 'geometry', 'B'), mk('c', 'geometry', 'C'), mk('d', 'statistical reasoning', 'D')];
    const preds = new Map([['a', 'A'], ['b', 'B'], ['c', 'A'], ['d', 'D']]);
    const s = BENCHMARKS.mmstar.score(items, preds);
    // geometry 2/3, statistical 1/1 → (66.67 + 100) / 2 = 83.33; micro 3/4 = 75.
    expect(s.value).toBeCloseTo((200 / 3 + 100) / 2, 10);
    expect(s.breakdown['micro accuracy']).toBe(75);
    expect(s.breakdown['category/math']).toBeCloseTo((200 / 3 + 100) / 2, 10);
    expect(BENCHMARKS.mmstar.prompt(item({ id: 'p', benchmark: 'mmstar', question: ' Which? Options: A: x, B: y ' }))).toBe(
      "Which? Options: A: x, B: y\nAnswer with the option's letter from the given choices directly",
    );
    // Options in columns (lmms-eval's mmstar_oc): listed after the question, in letter order.
    const columns = item({ id: 'q', benchmark: 'mmstar', question: '<image 1>Which animal? ', options: [abcd[1]!, abcd[0]!] });
    expect(BENCHMARKS.mmstar.prompt(columns)).toBe("Which animal? \nOptions:\nA. cat\nB. dog\n\nAnswer with the option's letter from the given choices directly");
  });

  it('a missing prediction is wrong everywhere', () => {
    for (const id of BenchmarkId.options) {
      const it1 = item({ id: 'z', benchmark: id, options: abcd, answers: ['A'], meta: { questionType: 'multiple-choice' } });
      expect(BENCHMARKS[id].itemScore(it1, undefined)).toBe(0);
    }
  });
});
