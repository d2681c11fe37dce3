import { z } from 'zod';
import { Finite, ObjectUri, RelativeRef } from './common';

/**
 * VQA retention (DOMAIN.md "VQA retention"): the twelve benchmarks of the paper's Table 1, one item
 * format they all load into, the predictions a model makes on them, and the scores.
 */

export const BenchmarkId = z.enum([
  'mmmu',
  'mmstar',
  'mme',
  'ocrbench',
  'mmbench-en',
  'mmbench-cn',
  'textvqa',
  'docvqa',
  'infovqa',
  'ai2d',
  'chartqa',
  'realworldqa',
]);
export type BenchmarkId = z.infer<typeof BenchmarkId>;

/** One option of a multiple-choice item: its letter and text. */
export const ChoiceOption = z.strictObject({ label: z.string().regex(/^[A-Z]$/), text: z.string() });
export type ChoiceOption = z.infer<typeof ChoiceOption>;

/**
 * One benchmark item, whatever the benchmark's own release looks like (each loader maps its
 * release to this). Images are paths relative to the benchmark's root.
 */
export const VqaItem = z.strictObject({
  /** Unique within the benchmark; part of the prediction's object key. */
  id: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/),
  benchmark: BenchmarkId,
  question: z.string().min(1),
  /** Context shown before the question (MMBench's hint). */
  hint: z.string().optional(),
  /** Multiple-choice options, in the release's order. */
  options: z.array(ChoiceOption).optional(),
  images: z.array(RelativeRef).min(1),
  /**
   * Reference answers: the option letter for multiple choice, "yes"/"no" for MME, the 10 human
   * answers for TextVQA, every accepted answer for DocVQA/InfoVQA/OCRBench/ChartQA.
   */
  answers: z.array(z.string()).min(1),
  /** Scorer inputs beyond the answers: category (MMStar, MMBench), subtask (MME), questionType (MMMU: multiple-choice | open), circular group (MMBench: the source question index), lang. */
  meta: z.record(z.string(), z.union([z.string(), Finite])).default({}),
});
export type VqaItem = z.infer<typeof VqaItem>;

/** Decoding of one benchmark: greedy, short answers (lmms-eval's defaults per task). */
export const GenerationSettings = z.strictObject({
  maxNewTokens: z.int().positive(),
  temperature: z.number().min(0).max(2),
  topP: z.number().gt(0).max(1).optional(),
});
export type GenerationSettings = z.infer<typeof GenerationSettings>;

/** What a backend is asked: one user turn with the item's images and the prompt text. */
export interface VqaRequest {
  prompt: string;
  images: { mimeType: string; data: Uint8Array }[];
  generation: GenerationSettings;
}

/**
 * A model under evaluation and how to reach it. Secrets (API keys) never appear here: the worker
 * that calls the backend reads them from its environment.
 */
export const ModelSpec = z.discriminatedUnion('backend', [
  z.strictObject({
    /** Label in reports and object keys. */
    name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/),
    /** An OpenAI-compatible chat completions server (vLLM serves a base model and its LoRA adapters by name). */
    backend: z.literal('openai'),
    baseUrl: z.url(),
    /** The served model name; for a vLLM LoRA adapter, the adapter's name. */
    model: z.string().min(1),
    /** For retention: the `name` of this model's base in the same sweep. */
    baseOf: z.string().optional(),
  }),
  z.strictObject({
    name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/),
    backend: z.literal('gemini'),
    model: z.string().min(1),
    baseOf: z.string().optional(),
  }),
  z.strictObject({
    name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/),
    /** transformers + peft in the project's Python environment, as a child process. */
    backend: z.literal('local'),
    /** A model directory on the worker (or a hub id its machine can reach). */
    baseModel: z.string().min(1),
    /** A LoRA adapter directory or object URI (`PeftModel.from_pretrained`); absent: the base model. */
    adapter: z.string().min(1).optional(),
    baseOf: z.string().optional(),
  }),
]);
export type ModelSpec = z.infer<typeof ModelSpec>;

/** One stored prediction: `<sweep>/predictions/<model>/<benchmark>/<item id>.json`. */
export const VqaPrediction = z.strictObject({
  itemId: z.string(),
  benchmark: BenchmarkId,
  model: z.string(),
  prompt: z.string(),
  response: z.string(),
  latencyMs: z.number().nonnegative(),
  usage: z.strictObject({ inputTokens: z.int().nonnegative(), outputTokens: z.int().nonnegative() }).optional(),
});
export type VqaPrediction = z.infer<typeof VqaPrediction>;

/** A benchmark's score on the scale of the paper's Table 1, plus its breakdown. */
export const BenchmarkScore = z.strictObject({
  benchmark: BenchmarkId,
  /** The headline figure: accuracy in % for most; MME perception (max 2000); OCRBench out of 1000. */
  value: Finite,
  /** Name of the headline metric, e.g. `accuracy`, `circular accuracy`, `ANLS`, `perception`. */
  metric: z.string(),
  items: z.int().nonnegative(),
  /** Further figures: per category, cognition and total for MME, non-circular accuracy for MMBench, ... */
  breakdown: z.record(z.string(), Finite).default({}),
});
export type BenchmarkScore = z.infer<typeof BenchmarkScore>;

/** Where a benchmark's data lies: a directory or object prefix in the layout its loader documents. */
export const BenchmarkSource = z.strictObject({
  benchmark: BenchmarkId,
  uri: ObjectUri,
});
export type BenchmarkSource = z.infer<typeof BenchmarkSource>;
