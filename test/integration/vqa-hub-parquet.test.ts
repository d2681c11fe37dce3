/**
 * The lmms-lab Hugging Face layout of the twelve benchmarks: parquet files written by the real
 * `datasets` package with each repository's public Features (python/tests/lmms_lab_parquet.py, run
 * in the project's Python environment), read back by our loader from a folder and from S3
 * (versitygw on loopback), field by field, with the prompt each item gives compared with the same
 * item in the VLMEvalKit TSV layout.
 */
import { execFile } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { z } from 'zod';
import { FileStore, S3Store, type ObjectStore } from '../../activities/store';
import { BenchmarkLayoutError, HUB_LAYOUTS, loadBenchmark, materializeItems, TSV_FILES, type LoadedItem } from '../../activities/vqa/loaders';
import { BENCHMARKS } from '../../activities/vqa/scoring/index';
import { fileUri } from '../../data-schemas/uri';
import type { BenchmarkId, VqaItem } from '../../data-schemas/vqa';
import { loadConfig, REPO_ROOT } from '../../infra/config';
import { ensurePythonEnv } from '../../infra/python';

const run = promisify(execFile);
const GENERATOR = join(REPO_ROOT, 'python', 'tests', 'lmms_lab_parquet.py');
/** Per file of a snapshot, the sha256 of each row's images, as the generator embedded them. */
const Shas = z.record(z.string(), z.array(z.array(z.string())));

const sha256 = (data: Uint8Array): string => createHash('sha256').update(data).digest('hex');

/** Which snapshot folder (and file in it) holds each benchmark's split. */
const SNAPSHOT: Record<BenchmarkId, [string, string]> = {
  mmmu: ['mmmu', 'data/validation-00000-of-00001.parquet'],
  mmstar: ['mmstar', 'mmstar.parquet'],
  mme: ['mme', 'data/test-'],
  ocrbench: ['ocrbench', 'data/test-00000-of-00001.parquet'],
  'mmbench-en': ['mmbench', 'en/dev-00000-of-00001.parquet'],
  'mmbench-cn': ['mmbench', 'cn/dev-00000-of-00001.parquet'],
  textvqa: ['textvqa', 'data/validation-00000-of-00001.parquet'],
  docvqa: ['docvqa', 'DocVQA/validation-00000-of-00001.parquet'],
  infovqa: ['docvqa', 'InfographicVQA/validation-00000-of-00001.parquet'],
  ai2d: ['ai2d', 'data/test-00000-of-00001.parquet'],
  chartqa: ['chartqa', 'data/test-00000-of-00001.parquet'],
  realworldqa: ['realworldqa', 'data/test-00000-of-00001.parquet'],
};

const RWQA_INSTRUCTION = 'Please answer directly with only the letter of the correct option and nothing else.';

/** What each benchmark's rows (as the generator writes them) must load as. */
const EXPECTED: Record<BenchmarkId, Omit<VqaItem, 'images'>[]> = {
  mmmu: [
    {
      id: 'validation_Art_Theory_1',
      benchmark: 'mmmu',
      question: 'Which painting, <image 1> or <image 2>, is older?',
      options: [{ label: 'A', text: 'The first' }, { label: 'B', text: 'The second' }, { label: 'C', text: "Neither's" }],
      answers: ['A'],
      meta: { questionType: 'multiple-choice' },
    },
    { id: 'validation_Math_2', benchmark: 'mmmu', question: 'How many sides does the shape in <image 1> have?', answers: ['6'], meta: { questionType: 'open' } },
  ],
  mmstar: [
    {
      id: '0',
      benchmark: 'mmstar',
      question:
        'Which option describe the object relationship in the image correctly?\nOptions: A: The suitcase is on the book., B: The suitcase is beneath the cat., C: The suitcase is beneath the bed., D: The suitcase is beneath the book.',
      answers: ['A'],
      meta: { category: 'coarse perception', l2category: 'image scene and topic' },
    },
    { id: '1', benchmark: 'mmstar', question: 'What is the main color of the car?\nOptions: A: red, B: blue, C: green, D: white', answers: ['B'], meta: { category: 'fine-grained perception', l2category: 'attribute & celebrity recognition' } },
  ],
  mme: [
    { id: '0', benchmark: 'mme', question: 'Is a c++ code shown in the picture? Please answer yes or no.', answers: ['Yes'], meta: { category: 'code_reasoning', subtask: 'code_reasoning', imageId: 'code_reasoning/0020.png' } },
    { id: '1', benchmark: 'mme', question: 'Is a python code shown in the picture? Please answer yes or no.', answers: ['No'], meta: { category: 'code_reasoning', subtask: 'code_reasoning', imageId: 'code_reasoning/0020.png' } },
    { id: '2', benchmark: 'mme', question: 'Is there a train in this image? Please answer yes or no.', answers: ['Yes'], meta: { category: 'existence', subtask: 'existence', imageId: 'existence/000000006040.jpg' } },
  ],
  ocrbench: [
    { id: '0', benchmark: 'ocrbench', question: 'what is written in the image?', answers: ['CHAIN'], meta: { category: 'Regular Text Recognition', dataset: 'IIIT5K' } },
    {
      id: '1',
      benchmark: 'ocrbench',
      question: 'Please write out the expression of the formula in the image using LaTeX format.',
      answers: ['x ^ { 2 } \n + 1', '\\frac { a } { b }'],
      meta: { category: 'Handwritten Mathematical Expression Recognition', dataset: 'HME100k' },
    },
  ],
  'mmbench-en': [
    { id: '241', benchmark: 'mmbench-en', question: 'Which animal is it?', options: [{ label: 'A', text: 'cat' }, { label: 'B', text: 'dog' }, { label: 'C', text: 'bird' }], answers: ['A'], meta: { index: 241, category: 'object_localization', l2category: 'coarse_perception' } },
    { id: '1000241', benchmark: 'mmbench-en', question: 'Which animal is it?', options: [{ label: 'A', text: 'dog' }, { label: 'B', text: 'bird' }, { label: 'C', text: 'cat' }], answers: ['C'], meta: { index: 241, category: 'object_localization', l2category: 'coarse_perception' } },
    {
      id: '242',
      benchmark: 'mmbench-en',
      question: 'What mood is shown?',
      hint: 'The people are at a party.',
      options: [{ label: 'A', text: 'happy' }, { label: 'B', text: 'sad' }, { label: 'C', text: 'angry' }, { label: 'D', text: 'calm' }],
      answers: ['A'],
      meta: { index: 242, category: 'image_emotion', l2category: 'coarse_perception' },
    },
  ],
  'mmbench-cn': [{ id: '7', benchmark: 'mmbench-cn', question: '哪种动物？', options: [{ label: 'A', text: 'cat' }, { label: 'B', text: 'dog' }, { label: 'C', text: 'bird' }], answers: ['A'], meta: { index: 7, category: 'object_localization', l2category: 'coarse_perception' } }],
  textvqa: [
    {
      id: '34602',
      benchmark: 'textvqa',
      question: 'what is the brand of this camera?',
      answers: ['nous les gosses', 'dakota', 'clos culombu', 'dakota digital', 'dakota', 'dakota', 'dakota digital', 'dakota digital', 'dakota', 'dakota'],
      meta: {},
    },
  ],
  docvqa: [{ id: '49153', benchmark: 'docvqa', question: 'What is the ‘actual’ value per 1000, during the year 1975?', answers: ['0.28'], meta: {} }],
  infovqa: [{ id: '98313', benchmark: 'infovqa', question: 'Which social platform has heavy female audience?', answers: ['pinterest'], meta: {} }],
  ai2d: [
    {
      id: '0',
      benchmark: 'ai2d',
      question: 'Which stage comes after the egg?',
      options: [{ label: 'A', text: 'adult' }, { label: 'B', text: 'larva' }, { label: 'C', text: 'pupa' }, { label: 'D', text: 'egg' }],
      answers: ['B'],
      meta: {},
    },
  ],
  chartqa: [
    { id: '0', benchmark: 'chartqa', question: 'How many food item is shown in the bar graph?', answers: ['14'], meta: { type: 'human_test' } },
    { id: '1', benchmark: 'chartqa', question: 'What is the value of the largest bar?', answers: ['42.5'], meta: { type: 'augmented_test' } },
  ],
  realworldqa: [
    { id: '0', benchmark: 'realworldqa', question: `Which way does the road turn?\nA. Left\nB. Straight\nC. Right\n${RWQA_INSTRUCTION}`, answers: ['A'], meta: {} },
    { id: '1', benchmark: 'realworldqa', question: 'How many cars are there? Please answer directly with a single word or number.', answers: ['3'], meta: {} },
  ],
};

/** A TSV cell as pandas writes it: quoted (quotes doubled) when it holds a quote, a tab or a newline. */
const tsvCell = (cell: string): string => (/["\t\n\r]/.test(cell) ? `"${cell.replace(/"/g, '""')}"` : cell);

/** The same item in VLMEvalKit's TSV layout: question, hint, options in columns A-J, the answer, and its benchmark's own column. */
function tsvOf(loaded: LoadedItem): string {
  const { item, images } = loaded;
  const row: Record<string, string> = { index: '1', question: item.question, hint: item.hint ?? 'nan', answer: item.answers.length > 1 ? `[${item.answers.map((a) => JSON.stringify(a)).join(', ')}]` : item.answers[0]! };
  for (const o of item.options ?? []) row[o.label] = o.text;
  if (item.benchmark === 'mmmu') row.question_type = String(item.meta.questionType);
  if (item.benchmark === 'chartqa') row.split = String(item.meta.type);
  row.image = Buffer.from(images[0]!.data).toString('base64');
  return `${Object.keys(row).join('\t')}\n${Object.values(row).map(tsvCell).join('\t')}\n`;
}

/** The store a test reads through, noting every whole-object read of a parquet file (and every ranged read in `ranges`). */
function recording(store: ObjectStore, wholeReads: string[], ranges: string[] = []): ObjectStore {
  return {
    put: (uri, body, o) => store.put(uri, body, o),
    putIfAbsent: (uri, body, o) => store.putIfAbsent(uri, body, o),
    putStream: (uri, body, o) => store.putStream(uri, body, o),
    get: (uri) => {
      if (uri.endsWith('.parquet')) wholeReads.push(uri);
      return store.get(uri);
    },
    getStream: (uri) => {
      if (uri.endsWith('.parquet')) wholeReads.push(uri);
      return store.getStream(uri);
    },
    getRange: (uri, start, end) => {
      ranges.push(uri);
      return store.getRange(uri, start, end);
    },
    head: (uri) => store.head(uri),
    list: (uri) => store.list(uri),
    delete: (uri, o) => store.delete(uri, o),
  };
}

describe('benchmarks in the lmms-lab Hugging Face layout (parquet written by datasets)', () => {
  const fileStore = new FileStore();
  let dir: string;
  let shas: z.infer<typeof Shas>;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'vla-vqa-hub-'));
    const py = await ensurePythonEnv(loadConfig().cacheDir);
    const { stdout } = await run(py.python, [GENERATOR, join(dir, 'hub')], { env: py.env, maxBuffer: 16 * 1024 * 1024 });
    shas = Shas.parse(JSON.parse(stdout));
  }, 180_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** The image hashes of a benchmark's split, in row order over its files. */
  const splitShas = (benchmark: BenchmarkId): string[][] => {
    const [snapshot, file] = SNAPSHOT[benchmark];
    return Object.keys(shas)
      .filter((key) => key.startsWith(`${snapshot}/${file}`))
      .sort()
      .flatMap((key) => shas[key]!);
  };

  it('loads each of the twelve benchmarks field by field, images byte for byte, without reading a file whole', async () => {
    const wholeReads: string[] = [];
    const store = recording(fileStore, wholeReads);
    for (const benchmark of Object.keys(EXPECTED) as BenchmarkId[]) {
      const loaded = await loadBenchmark(store, benchmark, fileUri(join(dir, 'hub', SNAPSHOT[benchmark][0])));
      expect({ benchmark, items: loaded.map((l) => l.item) }).toEqual({ benchmark, items: EXPECTED[benchmark] });
      expect({ benchmark, images: loaded.map((l) => l.images.map((i) => sha256(i.data))) }).toEqual({ benchmark, images: splitShas(benchmark) });
      // The extension comes from the bytes (the generator writes JPEG and PNG).
      for (const { images } of loaded) for (const image of images) expect(['jpg', 'png']).toContain(image.ext);
    }
    // MMMU's first question shows two images, in the order of its <image N> tags.
    const mmmu = await loadBenchmark(fileStore, 'mmmu', fileUri(join(dir, 'hub', 'mmmu')));
    expect(mmmu.map((l) => l.images.map((i) => i.ext))).toEqual([['jpg', 'png'], ['png']]);
    expect(wholeReads).toEqual([]);
  });

  it('gives every item the prompt the same item gives in the TSV layout', async () => {
    for (const benchmark of Object.keys(EXPECTED) as BenchmarkId[]) {
      const hub = await loadBenchmark(fileStore, benchmark, fileUri(join(dir, 'hub', SNAPSHOT[benchmark][0])));
      for (const [k, loaded] of hub.entries()) {
        const tsvRoot = join(dir, 'tsv', benchmark, String(k));
        mkdirSync(tsvRoot, { recursive: true });
        writeFileSync(join(tsvRoot, TSV_FILES[benchmark][0]!), tsvOf(loaded));
        const [fromTsv] = await loadBenchmark(fileStore, benchmark, fileUri(tsvRoot));
        const [stored] = (await materializeItems(fileStore, [loaded], fileUri(join(dir, 'out', benchmark, String(k))))).items;
        const [storedTsv] = (await materializeItems(fileStore, [fromTsv!], fileUri(join(dir, 'out-tsv', benchmark, String(k))))).items;
        const definition = BENCHMARKS[benchmark];
        expect({ benchmark, k, prompt: definition.prompt(stored!) }).toEqual({ benchmark, k, prompt: definition.prompt(storedTsv!) });
        // The scorer reads the same answers and the same meta fields it keys on.
        expect(stored!.answers).toEqual(storedTsv!.answers);
        for (const key of ['questionType', 'type'] as const) expect(stored!.meta[key]).toEqual(storedTsv!.meta[key]);
      }
    }
    // One prompt spelled out: MMBench's hint, question and options, then the instruction.
    const en = await loadBenchmark(fileStore, 'mmbench-en', fileUri(join(dir, 'hub', 'mmbench')));
    const [stored] = (await materializeItems(fileStore, [en[2]!], fileUri(join(dir, 'out', 'spelled')))).items;
    expect(BENCHMARKS['mmbench-en'].prompt(stored!)).toBe(
      "The people are at a party. What mood is shown? There are several options:\nA. happy\nB. sad\nC. angry\nD. calm\n\nAnswer with the option's letter from the given choices directly.",
    );
  });

  it('stops reading a split once a limited sweep has its items, where each item is its own group', async () => {
    const root = fileUri(join(dir, 'hub', 'chartqa'));
    const count = async (limit?: number): Promise<[number, number]> => {
      const ranges: string[] = [];
      const items = await loadBenchmark(recording(fileStore, [], ranges), 'chartqa', root, limit);
      return [items.length, ranges.length];
    };
    // The footer, then one read per row group (one row each here).
    const [all, rangesAll] = await count();
    const [one, rangesOne] = await count(1);
    expect([all, one]).toEqual([2, 1]);
    expect(rangesOne).toBeLessThan(rangesAll);
    // MMBench's rotations may come later in the split: it is read whole whatever the limit.
    const mmbench = await loadBenchmark(fileStore, 'mmbench-en', fileUri(join(dir, 'hub', 'mmbench')), 1);
    expect(mmbench.map((l) => l.item.id)).toEqual(['241', '1000241', '242']);
  });

  it('reads a snapshot in S3 the same way, by ranged GETs', async () => {
    const s3 = inject('s3');
    const s3Store = new S3Store({ endpoint: s3.endpoint, region: s3.region, credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey } });
    try {
      const root = `s3://${s3.bucket}/hub-${randomUUID()}/mmbench`;
      const local = join(dir, 'hub', 'mmbench');
      const walk = (at: string): string[] => readdirSync(at).flatMap((name) => (statSync(join(at, name)).isDirectory() ? walk(join(at, name)) : [join(at, name)]));
      for (const path of walk(local)) await s3Store.put(`${root}/${relative(local, path)}`, readFileSync(path));
      const wholeReads: string[] = [];
      const fromS3 = await loadBenchmark(recording(s3Store, wholeReads), 'mmbench-en', root);
      expect(fromS3.map((l) => l.item)).toEqual(EXPECTED['mmbench-en']);
      expect(fromS3.map((l) => l.images.map((i) => sha256(i.data)))).toEqual(splitShas('mmbench-en'));
      expect(wholeReads).toEqual([]);
    } finally {
      s3Store.destroy();
    }
  });

  it('names what is wrong: no data, missing columns, a bad cell, a missing shard, a codec it cannot decode', async () => {
    const hub = (name: string): string => fileUri(join(dir, 'hub', name));
    const empty = join(dir, 'empty');
    mkdirSync(empty, { recursive: true });
    await expect(loadBenchmark(fileStore, 'infovqa', fileUri(empty))).rejects.toThrow(
      /holds no infovqa data: expected items\.jsonl .*InfoVQA_VAL\.tsv.* or InfographicVQA\/validation-\*\.parquet \(lmms-lab\/DocVQA \(config InfographicVQA\) from the Hugging Face hub\)/,
    );
    await expect(loadBenchmark(fileStore, 'chartqa', hub('broken-columns'))).rejects.toThrow(
      /broken-columns\/data\/test-00000-of-00001\.parquet: missing column\(s\) type, answer \(expected the lmms-lab\/ChartQA columns; the file has question, image\)/,
    );
    await expect(loadBenchmark(fileStore, 'ai2d', hub('broken-cells'))).rejects.toThrow(/broken-cells\/data\/test-00000-of-00001\.parquet row 2 column answer: 9 is not the index of one of the 2 options/);
    await expect(loadBenchmark(fileStore, 'realworldqa', hub('broken-shards'))).rejects.toThrow(/the test split is incomplete: missing test-00000-of-00002\.parquet/);
    const zstd = await loadBenchmark(fileStore, 'realworldqa', hub('zstd')).catch((err: unknown) => err);
    expect(zstd).toBeInstanceOf(BenchmarkLayoutError);
    expect((zstd as Error).message).toMatch(/zstd\/data\/test-00000-of-00001\.parquet: column question is compressed with ZSTD, which this reader does not decode/);
    // gzip (pyarrow's other common codec) decodes through Node's zlib.
    const gzip = await loadBenchmark(fileStore, 'realworldqa', hub('gzip'));
    expect(gzip.map((l) => l.item)).toEqual(EXPECTED.realworldqa);
    // The dev split beside MMMU's validation files and the test splits beside MMBench's dev are not read.
    expect(HUB_LAYOUTS.mmmu.files).toEqual({ dir: 'data', split: 'validation' });
  });
});
