import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BenchmarkLayoutError, ITEMS_FILE, limitItems, loadBenchmark, materializeItems, parseAnswerCell, TSV_FILES, type LoadedItem } from '../../activities/vqa/loaders';
import { BENCHMARKS } from '../../activities/vqa/scoring/index';
import { FileStore } from '../../activities/store';
import { fileUri, joinUri } from '../../data-schemas/uri';
import { VqaItem, type BenchmarkId } from '../../data-schemas/vqa';
import { REPO_ROOT } from '../../infra/config';

const SAMPLES = join(REPO_ROOT, 'data', 'samples', 'vqa-samples');
const JPEG = readFileSync(join(SAMPLES, 'mmbench', 'images', '1.jpg'));

/** A TSV cell as pandas writes it: quoted (quotes doubled) when it holds a quote, a tab or a newline. */
const tsvCell = (cell: string): string => (/["\t\n\r]/.test(cell) ? `"${cell.replace(/"/g, '""')}"` : cell);

/** Writes `<dir>/<file>` as a VLMEvalKit TSV: the header, then each row (base64 JPEG in `image` unless given). */
function writeTsv(dir: string, file: string, rows: Record<string, string>[]): void {
  mkdirSync(dir, { recursive: true });
  const header = [...new Set(rows.flatMap((r) => Object.keys(r))), 'image'].filter((c, i, all) => all.indexOf(c) === i);
  const lines = rows.map((r) => header.map((c) => tsvCell(r[c] ?? (c === 'image' ? JPEG.toString('base64') : ''))).join('\t'));
  writeFileSync(join(dir, file), [header.join('\t'), ...lines].join('\n') + '\n');
}

/** Writes `<dir>/items.jsonl` and one image for every row (`image: images/<id>.jpg`). */
function writeJsonl(dir: string, rows: Record<string, unknown>[]): void {
  mkdirSync(join(dir, 'images'), { recursive: true });
  for (const r of rows) writeFileSync(join(dir, 'images', `${String(r.id)}.jpg`), JPEG);
  writeFileSync(join(dir, ITEMS_FILE), rows.map((r) => JSON.stringify({ image: `images/${String(r.id)}.jpg`, ...r })).join('\n') + '\n');
}

/** The stored item the sweep would prompt with: loaded, then materialised (schema-checked). */
async function storedItems(store: FileStore, loaded: LoadedItem[], out: string): Promise<VqaItem[]> {
  return (await materializeItems(store, loaded, fileUri(out))).items;
}

describe('benchmark loaders', () => {
  const store = new FileStore();
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'vla-vqa-load-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('reads the bundled real samples: MMBench in both languages, AI2D and MMMU-Pro from one mixed file', async () => {
    const en = await loadBenchmark(store, 'mmbench-en', fileUri(join(SAMPLES, 'mmbench')));
    const cn = await loadBenchmark(store, 'mmbench-cn', fileUri(join(SAMPLES, 'mmbench')));
    expect(en).toHaveLength(20);
    expect(cn).toHaveLength(20);
    expect(en[0]!.item).toMatchObject({ id: 'mmbench-en-1', benchmark: 'mmbench-en', answers: [expect.stringMatching(/^[A-D]$/)] });
    expect(en[0]!.item.options?.map((o) => o.label)).toEqual(['A', 'B', 'C', 'D']);
    expect(en[0]!.item.meta.category).toMatch(/Logic Reasoning/);
    expect(en[0]!.images[0]!.ext).toBe('jpg');

    const ai2d = await loadBenchmark(store, 'ai2d', fileUri(join(SAMPLES, 'mmmu-pro-ai2d')));
    const mmmu = await loadBenchmark(store, 'mmmu', fileUri(join(SAMPLES, 'mmmu-pro-ai2d')));
    expect(ai2d).toHaveLength(9);
    expect(mmmu).toHaveLength(9);
    expect(mmmu[0]!.item.options).toHaveLength(10);
    expect(mmmu[0]!.item.meta.questionType).toBe('multiple-choice');
    expect(mmmu[0]!.item.question).toContain('<image 1>');
  });

  it('reads the VLMEvalKit TSV release: base64 images, rotated MMBench copies pointing at the image row, answer lists', async () => {
    const root = join(dir, 'tsv');
    mkdirSync(root, { recursive: true });
    const jpeg = readFileSync(join(SAMPLES, 'mmbench', 'images', '1.jpg')).toString('base64');
    const header = ['index', 'question', 'hint', 'A', 'B', 'C', 'D', 'answer', 'category', 'l2-category', 'image'];
    const rows = [
      ['7', 'What is shown?', 'nan', 'a cat', 'a dog', 'a car', 'a tree', 'B', 'object', 'perception', jpeg],
      // The same question with its options rotated by one: its image is the row of index 7.
      ['1000007', 'What is shown?', 'nan', 'a dog', 'a car', 'a tree', 'a cat', 'A', 'object', 'perception', '7'],
      ['8', 'Which "quoted" word?', 'Read it.', 'x', 'y', 'nan', 'nan', 'A', 'ocr', 'perception', jpeg],
    ];
    const quote = (cell: string): string => (/["\t\n]/.test(cell) ? `"${cell.replace(/"/g, '""')}"` : cell);
    writeFileSync(join(root, 'MMBench_DEV_EN.tsv'), [header, ...rows].map((r) => r.map(quote).join('\t')).join('\n') + '\n');
    const items = await loadBenchmark(store, 'mmbench-en', fileUri(root));
    expect(items.map((i) => i.item.id)).toEqual(['7', '1000007', '8']);
    expect(items.map((i) => i.item.meta.index)).toEqual([7, 7, 8]);
    expect(items[1]!.images[0]!.data).toEqual(items[0]!.images[0]!.data);
    expect(items[2]!.item).toMatchObject({ question: 'Which "quoted" word?', hint: 'Read it.', options: [{ label: 'A', text: 'x' }, { label: 'B', text: 'y' }] });
    expect(items[0]!.item.hint).toBeUndefined();
    // Limited to one question: both rotations of it stay together.
    expect(limitItems(items, 1).map((i) => i.item.id)).toEqual(['7', '1000007']);

    writeFileSync(join(root, 'TextVQA_VAL.tsv'), `index\tquestion\tanswer\timage\n3\twhat brand?\t"['nokia', 'Nokia', ""nokia's""]"\t${jpeg}\n`);
    const textvqa = await loadBenchmark(store, 'textvqa', fileUri(root));
    expect(textvqa[0]!.item.answers).toEqual(['nokia', 'Nokia', "nokia's"]);
    expect(parseAnswerCell('plain answer', 'x')).toEqual(['plain answer']);
  });

  it('names what is wrong: no data in a known layout, a missing image, a row without an answer, a broken TSV', async () => {
    const empty = join(dir, 'empty');
    mkdirSync(empty, { recursive: true });
    await expect(loadBenchmark(store, 'docvqa', fileUri(empty))).rejects.toThrow(/holds no docvqa data: expected items\.jsonl .* DocVQA_VAL\.tsv/);

    const broken = join(dir, 'broken');
    mkdirSync(broken, { recursive: true });
    writeFileSync(join(broken, ITEMS_FILE), `${JSON.stringify({ id: 'a', question: 'q?', answer: 'yes', image: 'images/missing.png' })}\n`);
    await expect(loadBenchmark(store, 'mme', fileUri(broken))).rejects.toThrow(/items\.jsonl line 1: image images\/missing\.png is missing/);
    writeFileSync(join(broken, ITEMS_FILE), `${JSON.stringify({ id: 'a', question: 'q?', image: 'x.png' })}\n`);
    await expect(loadBenchmark(store, 'mme', fileUri(broken))).rejects.toThrow(BenchmarkLayoutError);

    const tsv = join(dir, 'badtsv');
    mkdirSync(tsv, { recursive: true });
    writeFileSync(join(tsv, 'ChartQA_TEST.tsv'), 'index\tquestion\n1\twhat?\n');
    await expect(loadBenchmark(store, 'chartqa', fileUri(tsv))).rejects.toThrow(/ChartQA_TEST\.tsv: missing column\(s\) answer, image/);
  });

  it('materialises items into one layout in the store, deterministically', async () => {
    const loaded = await loadBenchmark(store, 'ai2d', fileUri(join(SAMPLES, 'mmmu-pro-ai2d')));
    const out = fileUri(join(dir, 'materialised'));
    const first = await materializeItems(store, limitItems(loaded, 3), out);
    const again = await materializeItems(store, limitItems(loaded, 3), out);
    expect(again.sha256).toBe(first.sha256);
    expect(first.items).toHaveLength(3);
    const lines = (await store.get(joinUri(out, ITEMS_FILE))).toString('utf8').trim().split('\n');
    const item = VqaItem.parse(JSON.parse(lines[0]!));
    expect((await store.get(joinUri(out, item.images[0]!))).equals(Buffer.from(loaded[0]!.images[0]!.data))).toBe(true);
  });

  it('reads answer lists with Python escapes exactly (OCRBench handwritten math, newlines, quotes, \\x and \\u escapes)', async () => {
    const root = join(dir, 'escapes');
    // As VLMEvalKit's OCRBench.tsv stores them: the repr of a Python list.
    writeTsv(root, 'OCRBench.tsv', [
      { index: '0', question: 'Recognise the formula.', answer: String.raw`['x ^ { 2 } \n + 1', '\\frac { a } { b }']`, category: 'Handwritten Mathematical Expression Recognition' },
      { index: '1', question: 'What is written?', answer: String.raw`["it's", 'tab\there', 'caf\xe9 \u4e2d', 'back\\slash']`, category: 'Regular Text Recognition' },
      { index: '2', question: 'And this?', answer: 'a plain answer, not a list', category: 'Regular Text Recognition' },
    ]);
    const items = await loadBenchmark(store, 'ocrbench', fileUri(root));
    expect(items.map((i) => i.item.answers)).toEqual([
      ['x ^ { 2 } \n + 1', '\\frac { a } { b }'],
      ["it's", 'tab\there', 'café 中', 'back\\slash'],
      ['a plain answer, not a list'],
    ]);
    // The HME answer now matches the model's formula (newlines and spaces are removed for HME100k).
    const stored = await storedItems(store, items, join(dir, 'escapes-out'));
    const predictions = new Map([['0', 'x^{2}+1'], ['1', 'It says Tab\there.'], ['2', 'nothing']]);
    expect(stored.map((i) => BENCHMARKS.ocrbench.itemScore(i, predictions.get(i.id)))).toEqual([1, 1, 0]);

    // The same answers in the JSON-lines layout keep JSON's own escapes.
    const jsonl = join(dir, 'escapes-jsonl');
    writeJsonl(jsonl, [{ id: 'h', question: 'Recognise the formula.', answers: ['x ^ { 2 } \n + 1', '\\frac { a } { b }'] }]);
    expect((await loadBenchmark(store, 'ocrbench', fileUri(jsonl)))[0]!.item.answers).toEqual(['x ^ { 2 } \n + 1', '\\frac { a } { b }']);

    // A list that Python could not read is refused, naming the file, the row and the column.
    writeTsv(root, 'TextVQA_VAL.tsv', [
      { index: '5', question: 'what?', answer: "['ok']" },
      { index: '6', question: 'what?', answer: "['ok', 'broken]" },
    ]);
    await expect(loadBenchmark(store, 'textvqa', fileUri(root))).rejects.toThrow(/TextVQA_VAL\.tsv row 2 \(index 6\) column answer: not a readable Python list: unterminated string literal/);
    // Several images: the `image` cell is a Python list of base64 strings, read the same way.
    const png = readFileSync(join(SAMPLES, 'mmmu-pro-ai2d', 'images', readdirSync(join(SAMPLES, 'mmmu-pro-ai2d', 'images')).find((f) => f.endsWith('.png'))!));
    // MMMU_DEV_VAL.tsv: the dev split's rows (few-shot examples) are not part of "MMMU (val)".
    writeTsv(root, 'MMMU_DEV_VAL.tsv', [
      { index: '8', question: 'A dev example?', answer: '1', question_type: 'open', split: 'dev' },
      { index: '9', question: 'Compare <image 1> and <image 2>.', answer: '2', question_type: 'open', split: 'validation', image: `[${JSON.stringify(JPEG.toString('base64'))}, '${png.toString('base64')}']` },
    ]);
    const mmmu = await loadBenchmark(store, 'mmmu', fileUri(root));
    expect(mmmu.map((i) => i.item.id)).toEqual(['9']);
    expect(mmmu[0]!.images.map((i) => i.ext)).toEqual(['jpg', 'png']);
    writeTsv(root, 'DocVQA_VAL.tsv', [{ index: '7', question: 'what?', answer: "['a', ['nested']]" }]);
    await expect(loadBenchmark(store, 'docvqa', fileUri(root))).rejects.toThrow(/DocVQA_VAL\.tsv row 1 \(index 7\) column answer: element 2 is a nested list/);
  });

  it("carries ChartQA's human / augmented split into the breakdown from every layout, and refuses an unknown one", async () => {
    const tsv = join(dir, 'chartqa-tsv');
    writeTsv(tsv, 'ChartQA_TEST.tsv', [
      { index: '0', question: 'Highest value?', answer: '42', split: 'human' },
      { index: '1', question: 'Lowest value?', answer: '7', split: 'augmented' },
    ]);
    const jsonl = join(dir, 'chartqa-jsonl');
    writeJsonl(jsonl, [
      { id: '0', question: 'Highest value?', answer: '42', type: 'human_test' },
      { id: '1', question: 'Lowest value?', answer: '7', split: 'augmented' },
    ]);
    const predictions = new Map([['0', '42'], ['1', '9']]);
    for (const root of [tsv, jsonl]) {
      const items = await storedItems(store, await loadBenchmark(store, 'chartqa', fileUri(root)), `${root}-out`);
      expect(items.map((i) => i.meta.type)).toEqual(['human_test', 'augmented_test']);
      expect(BENCHMARKS.chartqa.score(items, predictions).breakdown).toEqual({ 'type/human_test': 100, 'type/augmented_test': 0 });
    }
    writeTsv(tsv, 'ChartQA_TEST.tsv', [{ index: '0', question: 'Highest value?', answer: '42', split: 'val' }]);
    await expect(loadBenchmark(store, 'chartqa', fileUri(tsv))).rejects.toThrow(/ChartQA_TEST\.tsv row 1 \(index 0\) column split: ChartQA split "val" is neither human nor augmented/);
  });

  it('prompts every layout the loaders accept as lmms-eval builds it, options included', async () => {
    const LETTER = "\nAnswer with the option's letter from the given choices directly.";
    const SHORT = '\nAnswer the question using a single word or phrase.';
    const RWQA = 'Please answer directly with only the letter of the correct option and nothing else.';
    const abcd = { A: 'cat', B: 'dog', C: 'bird', D: 'fish' };
    const cases: { benchmark: BenchmarkId; layout: string; tsv?: Record<string, string>; jsonl?: Record<string, unknown>; prompt: string }[] = [
      // MMMU: construct_prompt (question, "X. text" lines, blank line, instruction; open: blank line, instruction).
      { benchmark: 'mmmu', layout: 'tsv', tsv: { question: 'Which <image 1>?', A: 'x', B: 'y', C: 'z', answer: 'B', question_type: 'multiple-choice' }, prompt: 'Which <image 1>?\nA. x\nB. y\nC. z\n\n' + LETTER.slice(1) },
      { benchmark: 'mmmu', layout: 'tsv open', tsv: { question: 'How many?', answer: '3', question_type: 'open' }, prompt: 'How many?\n\n' + SHORT.slice(1) },
      { benchmark: 'mmmu', layout: 'jsonl', jsonl: { question: 'Which <image 1>?', options: ['x', 'y', 'z'], answer: 'B' }, prompt: 'Which <image 1>?\nA. x\nB. y\nC. z\n\n' + LETTER.slice(1) },
      // MMStar: options in columns (VLMEvalKit; lmms-eval's mmstar_oc) or inside the question (Lin-Chen/MMStar).
      { benchmark: 'mmstar', layout: 'tsv (columns A-D)', tsv: { question: 'Which animal is it?', ...abcd, answer: 'A', category: 'coarse perception', 'l2-category': 'recognition' }, prompt: "Which animal is it?\nOptions:\nA. cat\nB. dog\nC. bird\nD. fish\n\nAnswer with the option's letter from the given choices directly" },
      { benchmark: 'mmstar', layout: 'jsonl (options field)', jsonl: { question: 'Which animal is it?', options: abcd, answer: 'A' }, prompt: "Which animal is it?\nOptions:\nA. cat\nB. dog\nC. bird\nD. fish\n\nAnswer with the option's letter from the given choices directly" },
      { benchmark: 'mmstar', layout: 'jsonl (options in the question)', jsonl: { question: 'Which animal is it?\nOptions: A: cat, B: dog, C: bird, D: fish', answer: 'A' }, prompt: "Which animal is it?\nOptions: A: cat, B: dog, C: bird, D: fish\nAnswer with the option's letter from the given choices directly" },
      // MME: " Please answer yes or no." replaced by the post prompt.
      { benchmark: 'mme', layout: 'tsv', tsv: { question: 'Is there a cat? Please answer yes or no.', answer: 'Yes', category: 'existence' }, prompt: 'Is there a cat?' + SHORT },
      { benchmark: 'mme', layout: 'jsonl', jsonl: { question: 'Is there a cat? Please answer yes or no.', answer: 'Yes', subtask: 'existence' }, prompt: 'Is there a cat?' + SHORT },
      // OCRBench: the question as it is.
      { benchmark: 'ocrbench', layout: 'tsv', tsv: { question: ' what is written? ', answer: "['x']" }, prompt: 'what is written?' },
      { benchmark: 'ocrbench', layout: 'jsonl', jsonl: { question: 'what is written?', answers: ['x'] }, prompt: 'what is written?' },
      // MMBench: hint, question, "There are several options:" and the options, then the language post prompt.
      { benchmark: 'mmbench-en', layout: 'tsv', tsv: { question: 'Which animal?', hint: 'Look.', A: 'cat', B: 'dog', answer: 'A' }, prompt: 'Look. Which animal? There are several options:\nA. cat\nB. dog\n' + LETTER },
      { benchmark: 'mmbench-en', layout: 'jsonl', jsonl: { question: 'Which animal?', options: { A: 'cat', B: 'dog' }, answer: 'A' }, prompt: 'Which animal? There are several options:\nA. cat\nB. dog\n' + LETTER },
      { benchmark: 'mmbench-cn', layout: 'tsv', tsv: { question: '哪种动物？', A: 'cat', B: 'dog', answer: 'A' }, prompt: '哪种动物？ There are several options:\nA. cat\nB. dog\n\n请直接使用所提供的选项字母作为答案回答。' },
      { benchmark: 'mmbench-cn', layout: 'jsonl', jsonl: { question: '哪种动物？', options: ['cat', 'dog'], answer: 'A' }, prompt: '哪种动物？ There are several options:\nA. cat\nB. dog\n\n请直接使用所提供的选项字母作为答案回答。' },
      // TextVQA: capitalised question, short-answer instruction. DocVQA, InfoVQA: the question, the instruction.
      { benchmark: 'textvqa', layout: 'tsv', tsv: { question: 'what brand?', answer: "['nokia']" }, prompt: 'What brand?' + SHORT },
      { benchmark: 'textvqa', layout: 'jsonl', jsonl: { question: 'what brand?', answers: ['nokia'] }, prompt: 'What brand?' + SHORT },
      { benchmark: 'docvqa', layout: 'tsv', tsv: { question: 'What date?', answer: "['1/8/93']" }, prompt: 'What date?' + SHORT },
      { benchmark: 'docvqa', layout: 'jsonl', jsonl: { question: 'What date?', answers: ['1/8/93'] }, prompt: 'What date?' + SHORT },
      { benchmark: 'infovqa', layout: 'tsv', tsv: { question: 'How many?', answer: "['3']" }, prompt: 'How many?' + SHORT },
      { benchmark: 'infovqa', layout: 'jsonl', jsonl: { question: 'How many?', answers: ['3'] }, prompt: 'How many?' + SHORT },
      // AI2D: question, "X. text" lines, instruction.
      { benchmark: 'ai2d', layout: 'tsv', tsv: { question: 'Which stage?', A: 'egg', B: 'larva', C: 'nan', D: 'nan', answer: 'B' }, prompt: 'Which stage?\nA. egg\nB. larva' + LETTER },
      { benchmark: 'ai2d', layout: 'jsonl', jsonl: { question: 'Which stage?', options: ['egg', 'larva'], answer: 'B' }, prompt: 'Which stage?\nA. egg\nB. larva' + LETTER },
      // ChartQA: question, single-word instruction.
      { benchmark: 'chartqa', layout: 'tsv', tsv: { question: 'Highest value?', answer: '42', split: 'human' }, prompt: 'Highest value?\nAnswer the question with a single word.' },
      { benchmark: 'chartqa', layout: 'jsonl', jsonl: { question: 'Highest value?', answer: '42', type: 'human_test' }, prompt: 'Highest value?\nAnswer the question with a single word.' },
      // RealWorldQA: the question as its release writes it (options as "X. text" lines, then the instruction).
      { benchmark: 'realworldqa', layout: 'tsv (columns A-C)', tsv: { question: 'Which way does the road turn?', A: 'Left', B: 'Straight', C: 'Right', answer: 'A' }, prompt: `Which way does the road turn?\nA. Left\nB. Straight\nC. Right\n${RWQA}` },
      { benchmark: 'realworldqa', layout: 'jsonl (options field)', jsonl: { question: `Which way does the road turn? ${RWQA}`, options: ['Left', 'Straight', 'Right'], answer: 'A' }, prompt: `Which way does the road turn?\nA. Left\nB. Straight\nC. Right\n${RWQA}` },
      { benchmark: 'realworldqa', layout: 'jsonl (options in the question)', jsonl: { question: `Which way does the road turn?\nA. Left\nB. Straight\nC. Right\n${RWQA}\n`, answer: 'A' }, prompt: `Which way does the road turn?\nA. Left\nB. Straight\nC. Right\n${RWQA}` },
      { benchmark: 'realworldqa', layout: 'tsv (open question)', tsv: { question: 'How many cars are there? Please answer directly with a single word or number.', answer: '3' }, prompt: 'How many cars are there? Please answer directly with a single word or number.' },
    ];
    const seen = new Set<string>();
    for (const [k, c] of cases.entries()) {
      const root = join(dir, 'prompts', String(k));
      if (c.tsv) writeTsv(root, TSV_FILES[c.benchmark][0]!, [{ index: '1', ...c.tsv }]);
      else writeJsonl(root, [{ id: '1', ...c.jsonl }]);
      const [stored] = await storedItems(store, await loadBenchmark(store, c.benchmark, fileUri(root)), join(dir, 'prompts-out', String(k)));
      expect({ case: `${c.benchmark} ${c.layout}`, prompt: BENCHMARKS[c.benchmark].prompt(stored!) }).toEqual({ case: `${c.benchmark} ${c.layout}`, prompt: c.prompt });
      seen.add(`${c.benchmark} ${c.tsv ? 'tsv' : 'jsonl'}`);
    }
    // Both layouts of every benchmark are covered.
    expect(seen.size).toBe(2 * Object.keys(BENCHMARKS).length);

    // A letter answer whose options the prompt would not show is refused.
    const bare = join(dir, 'prompts', 'no-options');
    writeTsv(bare, 'AI2D_TEST.tsv', [{ index: '4', question: 'Which stage?', answer: 'B' }]);
    await expect(loadBenchmark(store, 'ai2d', fileUri(bare))).rejects.toThrow(/AI2D_TEST\.tsv item 4: a multiple-choice item \(answer B\) without its options/);
    writeTsv(bare, 'MMStar.tsv', [{ index: '5', question: 'Which animal is it?', answer: 'C' }]);
    await expect(loadBenchmark(store, 'mmstar', fileUri(bare))).rejects.toThrow(/MMStar\.tsv item 5: .* and no "C\." in the question/);
  });
});
