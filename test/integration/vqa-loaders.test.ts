import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BenchmarkLayoutError, ITEMS_FILE, limitItems, loadBenchmark, materializeItems, parseAnswerList } from '../../activities/vqa/loaders';
import { FileStore } from '../../activities/store';
import { fileUri, joinUri } from '../../data-schemas/uri';
import { VqaItem } from '../../data-schemas/vqa';
import { REPO_ROOT } from '../../infra/config';

const SAMPLES = join(REPO_ROOT, 'data', 'samples', 'vqa-samples');

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
    expect(parseAnswerList('plain answer')).toEqual(['plain answer']);
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
});
