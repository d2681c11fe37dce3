import { z } from 'zod';

/**
 * Object URIs: `file:///abs/path` or `s3://bucket/key`. Pure functions, loadable by workflows.
 */
export type ParsedUri = { scheme: 'file'; path: string } | { scheme: 's3'; bucket: string; key: string };

export class InvalidUriError extends Error {
  override name = 'InvalidUriError';
}

export function parseObjectUri(uri: string): ParsedUri {
  if (uri.startsWith('file://')) {
    const rest = uri.slice('file://'.length);
    if (!rest.startsWith('/')) throw new InvalidUriError(`${uri}: a file URI needs an absolute path (file:///abs/path)`);
    return { scheme: 'file', path: decodeURIComponent(rest) };
  }
  if (uri.startsWith('s3://')) {
    const rest = uri.slice('s3://'.length);
    const slash = rest.indexOf('/');
    const bucket = slash === -1 ? rest : rest.slice(0, slash);
    const key = slash === -1 ? '' : rest.slice(slash + 1);
    if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) throw new InvalidUriError(`${uri}: "${bucket}" is not a valid S3 bucket name`);
    return { scheme: 's3', bucket, key };
  }
  throw new InvalidUriError(`${uri}: expected file:///abs/path or s3://bucket/key`);
}

/** Joins a relative path onto a root URI, with exactly one slash between them. */
export function joinUri(root: string, ...parts: string[]): string {
  let out = root.replace(/\/+$/, '');
  for (const part of parts) {
    const clean = part.replace(/^\/+|\/+$/g, '');
    if (clean) out += `/${clean}`;
  }
  return out;
}

/** The path of `uri` relative to `root`, or undefined when `uri` is not under `root`. */
export function relativeTo(root: string, uri: string): string | undefined {
  const base = root.replace(/\/+$/, '') + '/';
  return uri.startsWith(base) ? uri.slice(base.length) : undefined;
}

/** `file://` URI of an absolute filesystem path. */
export function fileUri(absPath: string): string {
  if (!absPath.startsWith('/')) throw new InvalidUriError(`${absPath}: not an absolute path`);
  return `file://${absPath.split('/').map(encodeURIComponent).join('/')}`;
}

/**
 * Longest object URI a workflow input may give: 1024 characters. S3 caps an object key at 1024
 * bytes, so a longer URI cannot name an S3 object at all; and every workflow id or search
 * attribute built from a URI stays within what Temporal's server accepts (ids past 1000 bytes are
 * hashed, see `boundedWorkflowId`). URIs are ASCII (RFC 3986), so characters are bytes.
 */
export const MAX_OBJECT_URI_LENGTH = 1024;

/** `%` not followed by two hex digits. */
const BAD_PERCENT = /%(?![0-9A-Fa-f]{2})/;

function codePoint(ch: string): string {
  return `U+${(ch.codePointAt(0) as number).toString(16).toUpperCase().padStart(4, '0')}`;
}

/**
 * Why `uri` may not be an object URI of a workflow input, or undefined when it may. Refused: over
 * MAX_OBJECT_URI_LENGTH; raw control, space, non-ASCII or backslash characters; malformed
 * percent-encoding or an encoding that is not UTF-8; a `.` or `..` path segment, raw or
 * percent-encoded (`%2e%2e`, `%2E.`); an encoded `/`, `\` or control character in a segment; a
 * double-encoded dot (`%252e`). The messages never repeat the value (it may be 100 KB).
 */
export function objectUriProblem(uri: string): string | undefined {
  if (uri.length > MAX_OBJECT_URI_LENGTH) return `is ${uri.length} characters long; an object URI is at most ${MAX_OBJECT_URI_LENGTH}`;
  for (let i = 0; i < uri.length; i++) {
    const ch = uri[i] as string;
    const code = ch.charCodeAt(0);
    if (code < 0x20 || code === 0x7f) return `contains the control character ${codePoint(ch)} at character ${i}`;
    if (code === 0x20) return `contains a space at character ${i}; percent-encode it as %20`;
    if (ch === '\\') return `contains a backslash at character ${i}; separate path segments with /`;
    if (code > 0x7e) return `contains the non-ASCII character ${codePoint(uri.slice(i, i + 2))} at character ${i}; percent-encode it as UTF-8 (as encodeURIComponent does)`;
  }
  const badPercent = BAD_PERCENT.exec(uri);
  if (badPercent) return `has a malformed percent-encoding at character ${badPercent.index} (a % must be followed by two hex digits)`;
  let parsed: ParsedUri;
  try {
    parsed = parseObjectUri(uri);
  } catch (err) {
    if (err instanceof URIError) return 'has percent-encoded bytes that are not UTF-8';
    if (err instanceof InvalidUriError) return err.message.startsWith(`${uri}: `) ? err.message.slice(uri.length + 2) : err.message;
    throw err;
  }
  const path = parsed.scheme === 'file' ? uri.slice('file:///'.length) : parsed.key;
  for (const [index, segment] of path.split('/').entries()) {
    const decoded = decodeURIComponent(segment);
    if (decoded === '.' || decoded === '..') {
      return segment === decoded
        ? `has a "${decoded}" path segment (segment ${index + 1}); give the path without . and .. segments`
        : `has a percent-encoded "${decoded}" path segment ("${segment}", segment ${index + 1}); give the path without . and .. segments`;
    }
    if (decoded.includes('/') || decoded.includes('\\')) return `percent-encodes a path separator (%2F or %5C) in segment ${index + 1}`;
    const control = [...decoded].find((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f);
    if (control !== undefined) return `percent-encodes the control character ${codePoint(control)} in segment ${index + 1}`;
    if (/%2e/i.test(decoded)) return `double-encodes a dot (%252e) in segment ${index + 1}`;
  }
  return undefined;
}

/**
 * An object URI field of a workflow input: `file:///abs/path` or `s3://bucket/key`, at most
 * `max` characters, with no traversal and no ambiguous encoding (`objectUriProblem`). A root under
 * which the workflow builds its children's input URIs takes a smaller `max` (`objectUriRoot`), so
 * those stay within MAX_OBJECT_URI_LENGTH too.
 */
function objectUriField(max: number, why = ''): z.ZodString {
  return z
    .string()
    .max(max, `must be an object URI of at most ${max} characters${why}`)
    .superRefine((uri, ctx) => {
      if (uri.length > max) return; // said above; scanning 100 KB of it says nothing new
      const problem = objectUriProblem(uri);
      if (problem !== undefined) ctx.addIssue({ code: 'custom', message: `must be an object URI: ${problem}` });
    })
    // For the JSON Schema (docs/schemas): the part of the rules a pattern can say.
    .meta({
      pattern: '^(file:///|s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/|$))[!-[\\]-~]*$',
      description: `Object URI, at most ${max} characters of printable ASCII${why}: no . or .. segments (raw or percent-encoded), no backslash, well-formed percent-encoding.`,
    });
}

/** The object URI field of every workflow input (see `objectUriField`). */
export const ObjectUriField = objectUriField(MAX_OBJECT_URI_LENGTH);

/**
 * The object URI of a root to which the workflow appends up to `reserve` characters (`appended`
 * says what) for its children's input URIs: at most MAX_OBJECT_URI_LENGTH - reserve.
 */
export function objectUriRoot(reserve: number, appended: string): z.ZodString {
  return objectUriField(MAX_OBJECT_URI_LENGTH - reserve, ` (its children's URIs append up to ${reserve} more: ${appended})`);
}
