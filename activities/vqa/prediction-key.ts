/**
 * What a stored prediction is keyed by: everything that made the answer. A prediction is reused only
 * when the backend, the base model, the adapter's content, the prompt (its benchmark's prompt version
 * and the rendered text), the generation settings
 * and the item's content (question, options, answers, meta, image bytes) are all the same.
 */
import { createReadStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import type { GenerationSettings, ModelIdentity, VqaItem } from '../../data-schemas/vqa';
import { sha256Hex, sha256HexOfStream } from '../store';

/** Bumped when the key's recipe changes, so keys of different recipes never meet. */
const KEY_RECIPE = 'vqa-prediction-key/1';

/** The hash a model's identity is known by. */
export function modelKeyOf(identity: ModelIdentity): string {
  // The identity's fields in a fixed order: the key must not depend on how an object was built.
  const fields =
    identity.backend === 'openai'
      ? [identity.backend, identity.baseUrl, identity.model]
      : identity.backend === 'gemini'
        ? [identity.backend, identity.model, identity.thinkingBudget]
        : [identity.backend, identity.baseModel, identity.adapter];
  return sha256Hex(JSON.stringify([KEY_RECIPE, ...fields]));
}

/** An item's content: its fields and the bytes of its images (as their sha256, in item order). */
export function itemSha256(item: Omit<VqaItem, 'images'>, imageSha256s: readonly string[]): string {
  const meta = Object.entries(item.meta).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return sha256Hex(JSON.stringify([item.id, item.benchmark, item.question, item.hint ?? null, item.options ?? null, item.answers, meta, imageSha256s]));
}

/** The key of one prediction; 32 hex digits (128 bits) keep object names short. */
export function predictionKey(input: { modelKey: string; promptVersion: string; prompt: string; generation: GenerationSettings; itemSha256: string }): string {
  const g = input.generation;
  return sha256Hex(JSON.stringify([KEY_RECIPE, input.modelKey, input.promptVersion, sha256Hex(input.prompt), g.maxNewTokens, g.temperature, g.topP ?? null, input.itemSha256])).slice(0, 32);
}

/** Object name of a prediction under its (model, benchmark) folder. */
export const predictionFile = (itemId: string, key: string): string => `${itemId}.${key}.json`;

/** Files a directory hash leaves out: the staging marker. */
const NOT_CONTENT = new Set(['.complete']);

const fingerprints = new Map<string, { fingerprint: string; sha256: string }>();

/**
 * `sha256:<hex>` over a directory's files (relative path and content hash of each, sorted by path).
 * A model directory is hashed once per worker while its files keep their sizes and modification
 * times (hashing a 12B model's weights reads ~24 GB).
 */
export async function directorySha256(dir: string): Promise<string> {
  const files: { rel: string; size: number; mtimeMs: number }[] = [];
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || NOT_CONTENT.has(entry.name)) continue;
    const path = join(entry.parentPath, entry.name);
    const info = await stat(path);
    files.push({ rel: relative(dir, path).split(sep).join('/'), size: info.size, mtimeMs: info.mtimeMs });
  }
  files.sort((a, b) => (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0));
  const fingerprint = JSON.stringify(files);
  const known = fingerprints.get(dir);
  if (known?.fingerprint === fingerprint) return known.sha256;
  const lines: string[] = [];
  for (const file of files) lines.push(`${file.rel}\0${(await sha256HexOfStream(createReadStream(join(dir, file.rel)))).sha256}`);
  const sha256 = `sha256:${sha256Hex(lines.join('\n'))}`;
  fingerprints.set(dir, { fingerprint, sha256 });
  return sha256;
}
