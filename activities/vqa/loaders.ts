/**
 * Benchmark loaders: read a benchmark in the layout a user supplies (a directory or object prefix;
 * nothing is downloaded) and map it to `VqaItem`s. Two layouts, detected by what the root holds:
 *
 * 1. **VLMEvalKit TSV** (the common public release of all twelve benchmarks as one file each, images
 *    base64-encoded inline): `<root>/<NAME>.tsv`, e.g. `MMBench_DEV_EN.tsv`, `MME.tsv`,
 *    `TextVQA_VAL.tsv` (see TSV_FILES). Columns: `index`, `question`, `hint`, `A`..`J`, `answer` (one
 *    answer, or a Python list of them read as `ast.literal_eval` does: see parseAnswerCell),
 *    `category`, `l2-category`, `image` (base64, a Python list of base64 for several images, or the
 *    `index` of the row holding the image, as MMBench's rotated copies do), `image_path` (MME),
 *    `question_type` (MMMU), `split` (ChartQA: human / augmented; MMMU: rows of the dev split are left out).
 * 2. **JSON lines** (the project's own, and the bundled samples'): `<root>/items.jsonl`, one item a
 *    line: `id`, `question`, `options` ({"A": ...} or a list), `answer` (or `answers`), `image` (or
 *    `images`, paths relative to the root), optional `hint`, `category`, `benchmark` (or `source`:
 *    `ai2d`/`mmmu`/`mmmu-pro`, or MMBench's `lang`: `en`/`cn`; selects the rows of one benchmark in
 *    a mixed file; rows that say none belong to any), and any scorer field (`subtask`, `imageId`, `index`, `questionType`,
 *    ChartQA's `type` or `split`).
 *
 * 3. **Hugging Face hub snapshot** (the lmms-lab parquet releases lmms-eval reads, as
 *    `huggingface-cli download --repo-type dataset <repo> --local-dir <root>` leaves them):
 *    `<root>/<dir>/<split>-NNNNN-of-NNNNN.parquet` (or one named file, MMStar's `mmstar.parquet`),
 *    images as `{bytes, path}` structs (see HUB_LAYOUTS). Read a row group at a time (hub-parquet.ts).
 *
 * Items are then **materialised** into the sweep's store prefix (`items.jsonl` + `images/`), so
 * every later activity reads one layout, whatever the source was.
 */
import { parse as parseCsv } from 'csv-parse/sync';
import type { ParquetRow } from 'hyparquet';
import { z } from 'zod';
import { RelativeRef } from '../../data-schemas/common';
import { joinUri } from '../../data-schemas/uri';
import { BenchmarkId, VqaItem, type ChoiceOption } from '../../data-schemas/vqa';
import { InvalidObjectError, ObjectNotFoundError, parseStoredJson, sha256Hex } from '../store';
import { describeZodIssues } from '../../data-schemas/issues';
import { parsePyLiteral, PyLiteralError, pyScalarStr, type PyValue } from './python-literal';
import { pyStrip } from './scoring/py';
import { findHubFiles, hubFilesPattern, openParquet, type HubFiles } from './hub-parquet';
import { BenchmarkLayoutError } from './layout-error';
import type { ObjectInfo, ObjectStore } from '../store/types';

export { BenchmarkLayoutError };

/** The VLMEvalKit file names, in order of preference, per benchmark. */
export const TSV_FILES: Record<BenchmarkId, string[]> = {
  mmmu: ['MMMU_DEV_VAL.tsv', 'MMMU_TEST.tsv'],
  mmstar: ['MMStar.tsv'],
  mme: ['MME.tsv'],
  ocrbench: ['OCRBench.tsv'],
  'mmbench-en': ['MMBench_DEV_EN.tsv', 'MMBench_DEV_EN_V11.tsv', 'MMBench_TEST_EN.tsv'],
  'mmbench-cn': ['MMBench_DEV_CN.tsv', 'MMBench_DEV_CN_V11.tsv', 'MMBench_TEST_CN.tsv'],
  textvqa: ['TextVQA_VAL.tsv'],
  docvqa: ['DocVQA_VAL.tsv', 'DocVQA_TEST.tsv'],
  infovqa: ['InfoVQA_VAL.tsv', 'InfoVQA_TEST.tsv'],
  ai2d: ['AI2D_TEST.tsv'],
  chartqa: ['ChartQA_TEST.tsv'],
  realworldqa: ['RealWorldQA.tsv'],
};

export const ITEMS_FILE = 'items.jsonl';
const LETTERS = 'ABCDEFGHIJ'.split('');
/** VLMEvalKit stores MMBench's circular rotations as index + k * 1e6. */
const CIRCULAR_STRIDE = 1_000_000;

/** An item plus its images' bytes, before materialisation. */
export interface LoadedItem {
  item: Omit<VqaItem, 'images'>;
  images: { data: Uint8Array; ext: string }[];
}

const JsonlRow = z.looseObject({
  id: z.union([z.string(), z.number()]).transform(String),
  question: z.string().min(1),
  hint: z.string().nullish(),
  options: z.union([z.record(z.string(), z.string()), z.array(z.string())]).nullish(),
  answer: z.union([z.string(), z.number()]).transform(String).optional(),
  answers: z.array(z.union([z.string(), z.number()]).transform(String)).optional(),
  image: RelativeRef.optional(),
  images: z.array(RelativeRef).optional(),
  category: z.string().nullish(),
  lang: z.string().optional(),
  source: z.string().optional(),
  benchmark: z.string().optional(),
  /** ChartQA's question source (lmms-eval's `type`, or VLMEvalKit's `split`). */
  type: z.string().optional(),
  split: z.string().optional(),
});

/** Keys of the row that are scorer metadata and pass through to `meta`. */
const META_KEYS = ['category', 'l2category', 'subtask', 'imageId', 'index', 'questionType', 'lang', 'source'] as const;

function extOf(path: string): string {
  const m = /\.([A-Za-z0-9]+)$/.exec(path);
  return (m?.[1] ?? 'bin').toLowerCase();
}

/** The image type from its first bytes (TSV images carry no name). */
export function sniffImageExt(data: Uint8Array): string {
  if (data[0] === 0xff && data[1] === 0xd8) return 'jpg';
  if (data[0] === 0x89 && data[1] === 0x50 && data[2] === 0x4e && data[3] === 0x47) return 'png';
  if (data[0] === 0x47 && data[1] === 0x49 && data[2] === 0x46) return 'gif';
  if (data[0] === 0x52 && data[1] === 0x49 && data[2] === 0x46 && data[3] === 0x46) return 'webp';
  if (data[0] === 0x42 && data[1] === 0x4d) return 'bmp';
  return 'bin';
}

export function mimeTypeOf(ext: string): string {
  return ({ jpg: 'image/jpeg', jpeg: 'image/jpeg', png: 'image/png', gif: 'image/gif', webp: 'image/webp', bmp: 'image/bmp' } as Record<string, string>)[ext] ?? 'application/octet-stream';
}

/** The item id as a key segment (letters, digits, . _ -). */
const safeId = (raw: string): string => raw.replace(/[^A-Za-z0-9._-]/g, '_').replace(/^[^A-Za-z0-9]/, 'i');

/**
 * The benchmark a row belongs to: its `benchmark` field, else what `source` or MMBench's `lang`
 * says; undefined when the row does not say (a folder that holds one benchmark only).
 */
function rowBenchmark(row: z.infer<typeof JsonlRow>): BenchmarkId | undefined {
  const declared = BenchmarkId.safeParse(row.benchmark);
  if (declared.success) return declared.data;
  if (row.source === 'mmmu' || row.source === 'mmmu-pro') return 'mmmu';
  const source = BenchmarkId.safeParse(row.source);
  if (source.success) return source.data;
  if (row.lang === 'en') return 'mmbench-en';
  if (row.lang === 'cn') return 'mmbench-cn';
  return undefined;
}

function optionsOf(raw: Record<string, string> | string[] | null | undefined): ChoiceOption[] | undefined {
  if (!raw) return undefined;
  if (Array.isArray(raw)) return raw.map((text, i) => ({ label: LETTERS[i]!, text }));
  return Object.entries(raw)
    .filter(([label, text]) => /^[A-J]$/.test(label) && text !== null && text !== '')
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([label, text]) => ({ label, text }));
}

async function loadJsonl(store: ObjectStore, benchmark: BenchmarkId, root: string, text: string): Promise<LoadedItem[]> {
  const items: LoadedItem[] = [];
  const lines = text.split('\n');
  for (const [n, line] of lines.entries()) {
    if (!line.trim()) continue;
    let parsed: z.infer<typeof JsonlRow>;
    try {
      parsed = parseStoredJson(`${joinUri(root, ITEMS_FILE)} line ${n + 1}`, line, JsonlRow, `a benchmark item (one line of ${ITEMS_FILE})`);
    } catch (err) {
      if (err instanceof InvalidObjectError) throw new BenchmarkLayoutError(err.message, { cause: err });
      throw err;
    }
    const declared = rowBenchmark(parsed);
    if (declared !== undefined && declared !== benchmark) continue;
    const answers = parsed.answers ?? (parsed.answer !== undefined ? [parsed.answer] : undefined);
    const imagePaths = parsed.images ?? (parsed.image !== undefined ? [parsed.image] : []);
    if (!answers?.length) throw new BenchmarkLayoutError(`${joinUri(root, ITEMS_FILE)} line ${n + 1}: no answer or answers`);
    if (imagePaths.length === 0) throw new BenchmarkLayoutError(`${joinUri(root, ITEMS_FILE)} line ${n + 1}: no image or images`);
    const images = await Promise.all(
      imagePaths.map(async (p) => {
        try {
          return { data: await store.get(joinUri(root, p)), ext: extOf(p) };
        } catch (err) {
          if (err instanceof ObjectNotFoundError) throw new BenchmarkLayoutError(`${joinUri(root, ITEMS_FILE)} line ${n + 1}: image ${p} is missing`);
          throw err;
        }
      }),
    );
    const options = optionsOf(parsed.options);
    const meta: Record<string, string | number> = {};
    for (const key of META_KEYS) {
      const v = (parsed as Record<string, unknown>)[key];
      if (typeof v === 'string' || typeof v === 'number') meta[key] = v;
    }
    if (options && meta.questionType === undefined && benchmark === 'mmmu') meta.questionType = 'multiple-choice';
    if (meta.index === undefined && benchmark.startsWith('mmbench')) meta.index = parsed.id;
    const chartqaSource = parsed.type ?? parsed.split;
    if (benchmark === 'chartqa' && chartqaSource !== undefined) meta.type = chartqaType(chartqaSource, `${joinUri(root, ITEMS_FILE)} line ${n + 1} field ${parsed.type !== undefined ? 'type' : 'split'}`);
    items.push({
      item: {
        id: safeId(parsed.id),
        benchmark,
        question: parsed.question,
        ...(parsed.hint ? { hint: parsed.hint } : {}),
        ...(options ? { options } : {}),
        answers,
        meta,
      },
      images,
    });
  }
  return items;
}

/** The Python list in a TSV cell (`repr` of a list, as VLMEvalKit writes answer and image lists). */
function pyListCell(raw: string, where: string, column: string): string[] {
  let value: PyValue;
  try {
    value = parsePyLiteral(raw.trim());
  } catch (err) {
    if (err instanceof PyLiteralError) throw new BenchmarkLayoutError(`${where} column ${column}: not a readable Python list: ${err.message}`);
    throw err;
  }
  if (value.kind !== 'list' && value.kind !== 'tuple') throw new BenchmarkLayoutError(`${where} column ${column}: expected a Python list, found a ${value.kind}`);
  return value.items.map((element, k) => {
    const text = pyScalarStr(element);
    if (text === undefined) throw new BenchmarkLayoutError(`${where} column ${column}: element ${k + 1} is a nested ${element.kind}, expected a string or a number`);
    return text;
  });
}

/**
 * The accepted answers in a TSV `answer` cell: a cell written as a Python list (`['a', "it's\n"]`,
 * starting with `[` and ending with `]`) is read as `ast.literal_eval` reads it, escapes included,
 * each element as Python's `str()` of it; a malformed list is an error naming the row, not an
 * answer. Any other cell is one answer, as it is.
 */
export function parseAnswerCell(raw: string, where: string): string[] {
  const s = raw.trim();
  if (!s.startsWith('[') || !s.endsWith(']')) return [raw];
  const answers = pyListCell(s, where, 'answer');
  if (answers.length === 0) throw new BenchmarkLayoutError(`${where} column answer: an empty list of answers`);
  return answers;
}

function decodeImages(cell: string, byIndex: Map<string, string>, where: string): { data: Uint8Array; ext: string }[] {
  let value = cell.trim();
  // MMBench's rotated copies point at the row that holds the image.
  if (value.length < 64 && byIndex.has(value)) value = byIndex.get(value)!.trim();
  const encoded = value.startsWith('[') ? pyListCell(value, where, 'image') : [value];
  return encoded.map((b64) => {
    const data = Buffer.from(b64, 'base64');
    if (data.length < 8) throw new BenchmarkLayoutError(`${where}: the image column does not hold a base64 image`);
    return { data, ext: sniffImageExt(data) };
  });
}

/**
 * ChartQA's question source as lmms-eval names it (`type`: human_test / augmented_test), from
 * VLMEvalKit's `split` column (human / augmented) or a JSON row's `type` or `split`; the breakdown
 * keys on it, so an unknown value is refused rather than reported as a third kind.
 */
function chartqaType(raw: string, where: string): 'human_test' | 'augmented_test' {
  const v = raw.trim().toLowerCase().replace(/^test_/, '').replace(/_test$/, '');
  if (v === 'human') return 'human_test';
  if (v === 'augmented') return 'augmented_test';
  throw new BenchmarkLayoutError(`${where}: ChartQA split ${JSON.stringify(raw)} is neither human nor augmented (human_test / augmented_test)`);
}

/** Options in columns `A`..`J` (VLMEvalKit's TSV, lmms-lab's MMBench): empty, `nan` and null cells are no option. */
function letterOptions(row: Readonly<Record<string, unknown>>): ChoiceOption[] {
  return LETTERS.flatMap((label) => {
    const text = row[label];
    return typeof text !== 'string' || text === '' || text === 'nan' ? [] : [{ label, text }];
  });
}

/** A hint cell as MMBench's releases write "no hint": NaN (`nan` in a TSV), null, or empty. */
const hintOf = (raw: string | null | undefined): string | undefined => (raw && raw !== 'nan' ? raw : undefined);

function loadTsv(benchmark: BenchmarkId, fileUri: string, text: string): LoadedItem[] {
  let rows: Record<string, string>[];
  try {
    rows = parseCsv<Record<string, string>>(text, { delimiter: '\t', columns: true, relax_quotes: true, relax_column_count: true, skip_empty_lines: true });
  } catch (err) {
    throw new BenchmarkLayoutError(`${fileUri}: not a readable TSV (${err instanceof Error ? err.message : String(err)})`);
  }
  const required = ['index', 'question', 'answer', 'image'];
  const header = rows[0] ? Object.keys(rows[0]) : [];
  const missing = required.filter((c) => !header.includes(c));
  if (missing.length) throw new BenchmarkLayoutError(`${fileUri}: missing column(s) ${missing.join(', ')} (expected the VLMEvalKit TSV layout)`);
  const byIndex = new Map(rows.filter((r) => (r.image ?? '').length >= 64).map((r) => [String(r.index), r.image!]));
  // MMMU_DEV_VAL.tsv also holds MMMU's dev split (its few-shot examples); "MMMU (val)" is the
  // validation split alone, as lmms-eval's mmmu_val and VLMEvalKit's primary metric count it.
  const kept = rows.map((row, n) => ({ row, n })).filter(({ row }) => !(benchmark === 'mmmu' && row.split?.trim().toLowerCase() === 'dev'));
  return kept.map(({ row, n }) => {
    const where = `${fileUri} row ${n + 1} (index ${row.index})`;
    const options = letterOptions(row);
    const meta: Record<string, string | number> = {};
    if (row.category) meta.category = row.category;
    if (row['l2-category'] ?? row.l2_category) meta.l2category = (row['l2-category'] ?? row.l2_category)!;
    const index = Number(row.index);
    if (benchmark.startsWith('mmbench')) meta.index = Number.isFinite(index) ? index % CIRCULAR_STRIDE : row.index!;
    if (benchmark === 'mme') {
      meta.subtask = row.category ?? '';
      // The second question about an image points at the first one's row.
      const image = (row.image ?? '').trim();
      meta.imageId = row.image_path ?? (image.length < 64 && byIndex.has(image) ? image : String(row.index));
    }
    if (benchmark === 'mmmu') meta.questionType = row.question_type === 'open' || options.length === 0 ? 'open' : 'multiple-choice';
    if (benchmark === 'chartqa' && (row.split ?? row.type) !== undefined) meta.type = chartqaType((row.split ?? row.type)!, `${where} column ${row.split !== undefined ? 'split' : 'type'}`);
    const hint = hintOf(row.hint);
    return {
      item: {
        id: safeId(String(row.index)),
        benchmark,
        question: row.question!,
        ...(hint ? { hint } : {}),
        ...(options.length ? { options } : {}),
        answers: parseAnswerCell(row.answer ?? '', where),
        meta,
      },
      images: decodeImages(row.image ?? '', byIndex, where),
    };
  });
}

/** Benchmarks whose prompt lists `options`: a letter answer needs them. */
const OPTIONS_FROM_FIELD = new Set<BenchmarkId>(['mmbench-en', 'mmbench-cn', 'ai2d']);
/** Benchmarks whose release may write the options into the question instead. */
const OPTIONS_IN_QUESTION_OR_FIELD = new Set<BenchmarkId>(['mmstar', 'realworldqa']);

/**
 * Refuses a multiple-choice item (a letter answer) whose options the prompt would not show: no
 * options and, where the release may write them into the question, no "X." / "X:" there either.
 * A model cannot answer "B" to options it never saw.
 */
function checkOptionsShown(items: LoadedItem[], source: string): LoadedItem[] {
  for (const { item } of items) {
    const gold = pyStrip(item.answers[0] ?? '');
    if (!/^[A-J]$/.test(gold) || (item.options?.length ?? 0) > 0) continue;
    if (OPTIONS_FROM_FIELD.has(item.benchmark) || (OPTIONS_IN_QUESTION_OR_FIELD.has(item.benchmark) && !new RegExp(`(?:^|\\s)${gold}[.:]`).test(item.question))) {
      throw new BenchmarkLayoutError(`${source} item ${item.id}: a multiple-choice item (answer ${gold}) without its options (no option columns or field${OPTIONS_IN_QUESTION_OR_FIELD.has(item.benchmark) ? `, and no "${gold}." in the question` : ''})`);
    }
  }
  return items;
}

/** An image column of a `datasets` parquet file (`Image()` feature): the encoded file and its name. */
const HubImage = z.object({
  bytes: z.instanceof(Uint8Array, { error: 'no embedded image (a path-only Image() cell); the hub files embed their images' }).refine((b) => b.length >= 8, 'not an image (under 8 bytes)'),
  path: z.string().nullish(),
});
const HubId = z.union([z.string(), z.number(), z.bigint()]).transform(String);
const HubText = z.string().min(1);
const HubAnswers = z.array(z.string()).min(1);

function hubImage(image: z.infer<typeof HubImage>): { data: Uint8Array; ext: string } {
  const sniffed = sniffImageExt(image.bytes);
  return { data: image.bytes, ext: sniffed === 'bin' && image.path ? extOf(image.path) : sniffed };
}

/** One benchmark's hub release: where its split is, its columns, and how a row becomes an item. */
interface HubLayout {
  /** The Hugging Face dataset (and config) lmms-eval's task reads. */
  repo: string;
  files: HubFiles;
  /** Every column read; `required` are those a file must have. */
  columns: string[];
  required: string[];
  /** Row `n` (0-based over the split's shards) as an item; `where` names the file and row. */
  toItem(row: ParquetRow, n: number, where: string): LoadedItem;
}

function hubLayout<Row extends z.ZodObject>(repo: string, files: HubFiles, schema: Row, toItem: (row: z.infer<Row>, n: number, where: string) => LoadedItem): HubLayout {
  const columns = Object.keys(schema.shape);
  return {
    repo,
    files,
    columns,
    required: columns.filter((c) => !(schema.shape[c] as z.ZodType).safeParse(undefined).success),
    toItem(row, n, where) {
      const parsed = schema.safeParse(row);
      if (!parsed.success) throw new BenchmarkLayoutError(`${where}: ${describeZodIssues(parsed.error)} (expected the ${repo} columns)`);
      return toItem(parsed.data, n, where);
    },
  };
}

/** A single-image item with no scorer metadata beyond `meta`. */
const hubItem = (benchmark: BenchmarkId, id: string, question: string, answers: string[], image: z.infer<typeof HubImage>, extra: Partial<Pick<LoadedItem['item'], 'hint' | 'options'>> = {}, meta: Record<string, string | number> = {}): LoadedItem => ({
  item: { id: safeId(id), benchmark, question, ...extra, answers, meta },
  images: [hubImage(image)],
});

const MMMU_IMAGE_COLUMNS = ['image_1', 'image_2', 'image_3', 'image_4', 'image_5', 'image_6', 'image_7'] as const;

/** MMBench's two languages share one repository (configs `en`, `cn`) and one row schema. */
const mmbenchLayout = (benchmark: 'mmbench-en' | 'mmbench-cn', config: string): HubLayout =>
  hubLayout(
    'lmms-lab/MMBench',
    { dir: config, split: 'dev' },
    z.object({
      index: HubId,
      question: HubText,
      hint: z.string().nullish(),
      ...Object.fromEntries(LETTERS.map((l) => [l, z.string().nullish()])),
      answer: HubText,
      category: z.string().nullish(),
      'L2-category': z.string().nullish(),
      image: HubImage,
    }),
    (row) => {
      const index = Number(row.index);
      const meta: Record<string, string | number> = { index: Number.isFinite(index) ? index % CIRCULAR_STRIDE : row.index };
      if (row.category) meta.category = row.category;
      if (row['L2-category']) meta.l2category = row['L2-category'];
      const options = letterOptions(row);
      const hint = hintOf(row.hint);
      return hubItem(benchmark, row.index, row.question, [row.answer], row.image, { ...(hint ? { hint } : {}), ...(options.length ? { options } : {}) }, meta);
    },
  );

/**
 * The lmms-lab releases of the twelve benchmarks (each lmms-eval task's `dataset_path`,
 * `dataset_name` and `test_split`), mapped to the same items the TSV and JSON-lines layouts give:
 * the same meta fields, so the prompts and scores are the same. Rows without an id column take
 * their position in the split (0-based). A string answer column is one answer, as lmms-eval reads
 * it (lists are list columns here, unlike a TSV's Python-list cells).
 */
export const HUB_LAYOUTS: Record<BenchmarkId, HubLayout> = {
  mmmu: hubLayout(
    'lmms-lab/MMMU',
    { dir: 'data', split: 'validation' },
    z.object({
      id: HubText,
      question: HubText,
      options: z.string(),
      answer: HubText,
      question_type: z.string(),
      image_1: HubImage.nullish(),
      image_2: HubImage.nullish(),
      image_3: HubImage.nullish(),
      image_4: HubImage.nullish(),
      image_5: HubImage.nullish(),
      image_6: HubImage.nullish(),
      image_7: HubImage.nullish(),
    }),
    (row, _n, where) => {
      const options = pyListCell(row.options, where, 'options').map((text, i) => ({ label: LETTERS[i]!, text }));
      // mmmu_doc_to_visual: the image columns the prompt's <image N> tags name, in order; else every image.
      const text = `${row.question}\n${options.map((o) => o.text).join('\n')}`;
      const tags = new Set([...text.matchAll(/<image (\d+)>/g)].map((m) => `image_${m[1]}`));
      const tagged = MMMU_IMAGE_COLUMNS.filter((c) => tags.has(c));
      const wanted = tagged.length ? tagged : MMMU_IMAGE_COLUMNS.filter((c) => row[c]);
      if (wanted.length === 0) throw new BenchmarkLayoutError(`${where}: no image in image_1..image_7`);
      return {
        item: {
          id: safeId(row.id),
          benchmark: 'mmmu',
          question: row.question,
          ...(options.length ? { options } : {}),
          answers: [row.answer],
          meta: { questionType: row.question_type === 'open' || options.length === 0 ? 'open' : 'multiple-choice' },
        },
        images: wanted.map((c) => {
          const image = row[c];
          if (!image) throw new BenchmarkLayoutError(`${where} column ${c}: the question shows <image ${c.slice(6)}> but the column is empty`);
          return hubImage(image);
        }),
      };
    },
  ),
  mmstar: hubLayout(
    'Lin-Chen/MMStar',
    { file: 'mmstar.parquet' },
    z.object({ index: HubId, question: HubText, answer: HubText, category: z.string().nullish(), l2_category: z.string().nullish(), image: HubImage }),
    (row) => hubItem('mmstar', row.index, row.question, [row.answer], row.image, {}, { ...(row.category ? { category: row.category } : {}), ...(row.l2_category ? { l2category: row.l2_category } : {}) }),
  ),
  mme: hubLayout(
    'lmms-lab/MME',
    { dir: 'data', split: 'test' },
    z.object({ question_id: HubText, question: HubText, answer: HubText, category: HubText, image: HubImage }),
    (row, n) => hubItem('mme', String(n), row.question, [row.answer], row.image, {}, { category: row.category, subtask: row.category, imageId: row.question_id }),
  ),
  ocrbench: hubLayout(
    'echo840/OCRBench',
    { dir: 'data', split: 'test' },
    z.object({ dataset: HubText, question: HubText, question_type: HubText, answer: HubAnswers, image: HubImage }),
    (row, n) => hubItem('ocrbench', String(n), row.question, row.answer, row.image, {}, { category: row.question_type, dataset: row.dataset }),
  ),
  'mmbench-en': mmbenchLayout('mmbench-en', 'en'),
  'mmbench-cn': mmbenchLayout('mmbench-cn', 'cn'),
  textvqa: hubLayout(
    'lmms-lab/textvqa',
    { dir: 'data', split: 'validation' },
    z.object({ question_id: HubId, question: HubText, answers: HubAnswers, image: HubImage }),
    (row) => hubItem('textvqa', row.question_id, row.question, row.answers, row.image),
  ),
  docvqa: hubLayout(
    'lmms-lab/DocVQA (config DocVQA)',
    { dir: 'DocVQA', split: 'validation' },
    z.object({ questionId: HubId, question: HubText, answers: HubAnswers, image: HubImage }),
    (row) => hubItem('docvqa', row.questionId, row.question, row.answers, row.image),
  ),
  infovqa: hubLayout(
    'lmms-lab/DocVQA (config InfographicVQA)',
    { dir: 'InfographicVQA', split: 'validation' },
    z.object({ questionId: HubId, question: HubText, answers: HubAnswers, image: HubImage }),
    (row) => hubItem('infovqa', row.questionId, row.question, row.answers, row.image),
  ),
  ai2d: hubLayout(
    'lmms-lab/ai2d',
    { dir: 'data', split: 'test' },
    z.object({ question: HubText, options: z.array(z.string()).min(1), answer: z.string().regex(/^\d+$/, 'expected the index of the right option'), image: HubImage }),
    (row, n, where) => {
      // ai2d_doc_to_target: the answer is the option's index; the gold is its letter.
      const letter = LETTERS[Number(row.answer)];
      if (letter === undefined || Number(row.answer) >= row.options.length) throw new BenchmarkLayoutError(`${where} column answer: ${row.answer} is not the index of one of the ${row.options.length} options`);
      return hubItem('ai2d', String(n), row.question, [letter], row.image, { options: row.options.map((text, i) => ({ label: LETTERS[i]!, text })) });
    },
  ),
  chartqa: hubLayout(
    'lmms-lab/ChartQA',
    { dir: 'data', split: 'test' },
    z.object({ type: HubText, question: HubText, answer: HubText, image: HubImage }),
    (row, n, where) => hubItem('chartqa', String(n), row.question, [row.answer], row.image, {}, { type: chartqaType(row.type, `${where} column type`) }),
  ),
  realworldqa: hubLayout(
    'lmms-lab/RealWorldQA',
    { dir: 'data', split: 'test' },
    z.object({ question: HubText, answer: HubText, image: HubImage }),
    (row, n) => hubItem('realworldqa', String(n), row.question, [row.answer], row.image),
  ),
};

/** The rows of a hub split, in shard and row order, one row group at a time; after `stopAfter` items no further row group is read. */
async function loadHub(store: ObjectStore, layout: HubLayout, shards: ObjectInfo[], stopAfter = Infinity): Promise<LoadedItem[]> {
  const items: LoadedItem[] = [];
  let n = 0;
  for (const info of shards) {
    if (items.length >= stopAfter) break;
    const table = await openParquet(store, info);
    const missing = layout.required.filter((c) => !table.columns.includes(c));
    if (missing.length) throw new BenchmarkLayoutError(`${info.uri}: missing column(s) ${missing.join(', ')} (expected the ${layout.repo} columns; the file has ${table.columns.join(', ')})`);
    let rowInFile = 0;
    for await (const rows of table.rowGroups(layout.columns.filter((c) => table.columns.includes(c)))) {
      for (const row of rows) items.push(layout.toItem(row, n++, `${info.uri} row ${++rowInFile}`));
      if (items.length >= stopAfter) break;
    }
  }
  return items;
}

/**
 * Reads a benchmark from `root` in whichever layout is there. `limit` is the number of groups the
 * caller keeps (limitItems): where every group is one item, a hub split stops reading after that
 * many rows, so a limited sweep of a multi-gigabyte split reads its first row groups only. (MMBench's
 * rotations and MME's image pairs may sit anywhere in the split, so those are read whole.)
 */
export async function loadBenchmark(store: ObjectStore, benchmark: BenchmarkId, root: string, limit?: number): Promise<LoadedItem[]> {
  const jsonl = joinUri(root, ITEMS_FILE);
  const head = await store.head(jsonl);
  if (head) return checkOptionsShown(await loadJsonl(store, benchmark, root, (await store.get(jsonl)).toString('utf8')), jsonl);
  for (const name of TSV_FILES[benchmark]) {
    const uri = joinUri(root, name);
    if (await store.head(uri)) return checkOptionsShown(loadTsv(benchmark, uri, (await store.get(uri)).toString('utf8')), uri);
  }
  const hub = HUB_LAYOUTS[benchmark];
  const shards = await findHubFiles(store, root, hub.files);
  const stopAfter = limit !== undefined && !MULTI_ITEM_GROUPS.has(benchmark) ? limit : undefined;
  if (shards) return checkOptionsShown(await loadHub(store, hub, shards, stopAfter), joinUri(root, hubFilesPattern(hub.files)));
  throw new BenchmarkLayoutError(
    `${root} holds no ${benchmark} data: expected ${ITEMS_FILE} (JSON lines), one of ${TSV_FILES[benchmark].join(', ')} (VLMEvalKit TSV) or ${hubFilesPattern(hub.files)} (${hub.repo} from the Hugging Face hub); see docs/vqa.md`,
  );
}

/** The benchmarks whose groups (groupKey) hold several items; in the others each item is its own group. */
const MULTI_ITEM_GROUPS: ReadonlySet<BenchmarkId> = new Set(['mmbench-en', 'mmbench-cn', 'mme']);

/**
 * Groups that must stay whole when a sweep is limited to N items: MMBench's circular rotations of
 * one question, MME's two questions about one image.
 */
export function groupKey(item: Pick<VqaItem, 'id' | 'benchmark' | 'meta'>): string {
  if (item.benchmark.startsWith('mmbench') && item.meta.index !== undefined) return `q${item.meta.index}`;
  if (item.benchmark === 'mme' && item.meta.imageId !== undefined) return `i${item.meta.imageId}`;
  return item.id;
}

/** The first items covering at most `limit` whole groups. */
export function limitItems<T extends { item: Pick<VqaItem, 'id' | 'benchmark' | 'meta'> }>(items: T[], limit: number | undefined): T[] {
  if (limit === undefined) return items;
  const groups = new Set<string>();
  return items.filter(({ item }) => {
    const key = groupKey(item);
    if (!groups.has(key)) {
      if (groups.size >= limit) return false;
      groups.add(key);
    }
    return true;
  });
}

/**
 * Writes the items and their images under `outUri` (`images/<id>-<k>.<ext>`, `items.jsonl` last),
 * and returns the items as stored. Deterministic: a re-run writes the same bytes.
 */
export async function materializeItems(store: ObjectStore, loaded: LoadedItem[], outUri: string): Promise<{ items: VqaItem[]; sha256: string }> {
  const ids = new Set<string>();
  const items: VqaItem[] = [];
  for (const { item, images } of loaded) {
    if (ids.has(item.id)) throw new BenchmarkLayoutError(`duplicate item id ${item.id} in ${item.benchmark}`);
    ids.add(item.id);
    const paths: string[] = [];
    for (const [k, image] of images.entries()) {
      const path = `images/${item.id}-${k}.${image.ext}`;
      await store.put(joinUri(outUri, path), image.data);
      paths.push(path);
    }
    items.push(VqaItem.parse({ ...item, images: paths }));
  }
  const body = items.map((i) => JSON.stringify(i)).join('\n') + '\n';
  await store.put(joinUri(outUri, ITEMS_FILE), body);
  return { items, sha256: sha256Hex(body) };
}
