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
