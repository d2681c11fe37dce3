import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { z } from 'zod';
import { objectUriProblem } from './uri';

/**
 * Bounds on values that reach Temporal's server as workflow ids or search attributes, and on the
 * free text of workflow inputs. Pure, loadable by workflows (no node:crypto: the hash is
 * @noble/hashes' pure-JS SHA-256, and UTF-8 is encoded here, not by TextEncoder).
 */

/** Temporal's default `limit.maxIDLength`: a longer workflow id fails the workflow task that starts it, in a loop. */
export const MAX_WORKFLOW_ID_BYTES = 1000;
/**
 * A Keyword search attribute's value is kept whole up to this many bytes (the server's default
 * `limit.searchAttributeValueSize` is 2048 and terminates a workflow that upserts a longer one).
 */
export const MAX_SEARCH_ATTRIBUTE_BYTES = 1000;

/** The UTF-8 bytes of `text` (lone surrogates as U+FFFD, like TextEncoder). */
export function utf8Bytes(text: string): Uint8Array {
  const out: number[] = [];
  for (const ch of text) {
    let cp = ch.codePointAt(0) as number;
    if (cp >= 0xd800 && cp <= 0xdfff) cp = 0xfffd;
    if (cp < 0x80) out.push(cp);
    else if (cp < 0x800) out.push(0xc0 | (cp >> 6), 0x80 | (cp & 0x3f));
    else if (cp < 0x10000) out.push(0xe0 | (cp >> 12), 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f));
    else out.push(0xf0 | (cp >> 18), 0x80 | ((cp >> 12) & 0x3f), 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f));
  }
  return Uint8Array.from(out);
}

/** Length of `text` in UTF-8 bytes (what the server's limits count). */
export function utf8Length(text: string): number {
  let n = 0;
  for (const ch of text) {
    const cp = ch.codePointAt(0) as number;
    n += cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
  }
  return n;
}

/** Lowercase hex SHA-256 of the UTF-8 of `text` (activities use the store's node:crypto `sha256Hex`; workflows cannot). */
function sha256OfText(text: string): string {
  return bytesToHex(sha256(utf8Bytes(text)));
}

/**
 * `value` itself when it is at most `maxBytes` UTF-8 bytes; else the longest prefix (whole code
 * points) that fits with `~` and the SHA-256 (hex) of the whole value: still readable, stable,
 * and distinct for distinct values.
 */
export function boundedKey(value: string, maxBytes: number): string {
  if (value.length <= maxBytes / 4 || utf8Length(value) <= maxBytes) return value;
  const suffix = `~${sha256OfText(value)}`;
  const room = maxBytes - suffix.length;
  if (room < 0) throw new RangeError(`maxBytes ${maxBytes} leaves no room for the hash`);
  let prefix = '';
  let bytes = 0;
  for (const ch of value) {
    const size = utf8Length(ch);
    if (bytes + size > room) break;
    prefix += ch;
    bytes += size;
  }
  return prefix + suffix;
}

/** A workflow id derived from input: unchanged up to 1000 bytes, else a readable prefix and a hash of the whole. */
export function boundedWorkflowId(id: string): string {
  return boundedKey(id, MAX_WORKFLOW_ID_BYTES);
}

/** A Keyword search attribute's value: unchanged up to 1000 bytes, else a readable prefix and a hash of the whole. */
export function boundedSearchAttribute(value: string): string {
  return boundedKey(value, MAX_SEARCH_ATTRIBUTE_BYTES);
}

/**
 * A KeywordList search attribute's values, JSON-encoded as the server measures them, stay within
 * this many bytes (the server's `limit.searchAttributeValueSize`, 2048, counts the whole list).
 */
export const MAX_SEARCH_ATTRIBUTE_LIST_BYTES = 1800;
/** Each value of a long list keeps at least this many bytes: a readable prefix, `~` and the hash. */
const MIN_LIST_VALUE_BYTES = 80;

/**
 * A KeywordList search attribute's values: duplicates dropped, each value bounded like
 * `boundedSearchAttribute` to an equal share of the list's bytes. A list longer than the shares
 * allow (more than 21 values) keeps its first values: a search for a later one finds nothing,
 * but the workflow is never terminated for the list's size.
 */
export function boundedSearchAttributeList(values: readonly string[]): string[] {
  const distinct = [...new Set(values)];
  // Each value costs its bytes, two quotes and a comma in the JSON array.
  const perValueOverhead = 3;
  const maxCount = Math.floor(MAX_SEARCH_ATTRIBUTE_LIST_BYTES / (MIN_LIST_VALUE_BYTES + perValueOverhead));
  const kept = distinct.slice(0, maxCount);
  const share = Math.min(MAX_SEARCH_ATTRIBUTE_BYTES, Math.floor(MAX_SEARCH_ATTRIBUTE_LIST_BYTES / Math.max(kept.length, 1)) - perValueOverhead);
  return kept.map((value) => boundedKey(value, share));
}

/** C0 and C1 control characters, DEL, and the invisible format characters (bidi overrides, zero widths, BOM). */
// eslint-disable-next-line no-control-regex -- finding control characters is the point
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u202a-\u202e\u2028\u2029\u2060-\u2064\u2066-\u2069\ufeff]/u;

/** Where `text` has its first unprintable character, as `U+XXXX at character N`; undefined when none. */
export function unprintableAt(text: string): string | undefined {
  const match = UNPRINTABLE.exec(text);
  if (!match) return undefined;
  const cp = (match[0].codePointAt(0) as number).toString(16).toUpperCase().padStart(4, '0');
  return `U+${cp} at character ${match.index}`;
}

/**
 * Free text of a workflow input that ends up in an id, a search attribute, a file name or a log
 * line (model names, queue names): 1 to `max` characters, no control or invisible characters.
 */
export function boundedName(max: number): z.ZodString {
  return z
    .string()
    .min(1)
    .max(max, `must be at most ${max} characters`)
    .superRefine((value, ctx) => {
      if (value.length > max) return; // already refused by max; scanning 100 KB of it says nothing new
      const at = unprintableAt(value);
      if (at !== undefined) ctx.addIssue({ code: 'custom', message: `contains a control or invisible character (${at})` });
    });
}

/** A Temporal task queue name as a workflow input gives it. */
export const TaskQueueName = boundedName(200);

/**
 * A model as a worker loads it: a local directory, a hub id, or an object URI (then held to
 * `ObjectUriField`'s rules). At most 512 characters: it names search attributes and log lines.
 */
export const ModelRef = boundedName(512).superRefine((value, ctx) => {
  if (value.length > 512 || !/^[a-z][a-z0-9+.-]*:\/\//i.test(value)) return;
  const problem = objectUriProblem(value);
  if (problem !== undefined) ctx.addIssue({ code: 'custom', message: `must be a model directory, hub id or object URI: ${problem}` });
});
