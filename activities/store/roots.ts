/**
 * Store roots: the allow-list of places a worker's store may touch (docs/design.md, "The store
 * confines every URI"). Every URI is checked before the store does any I/O for it.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { parseObjectUri } from '../../data-schemas/uri';
import { StoreError, StoreErrorCode } from './errors';

/** Where a store may act: read and write under `readWrite`, only read under `readOnly`. */
export interface StoreRoots {
  readWrite: readonly string[];
  readOnly: readonly string[];
}

/** What an operation does to the object: get, getStream, head and list read; the rest write. */
export type StoreAccess = 'read' | 'write';

/**
 * A decoded place: a filesystem path or a bucket and key. A root's `path`/`key` has no trailing
 * slash ('' is the whole filesystem or bucket).
 */
type Place = { scheme: 'file'; path: string } | { scheme: 's3'; bucket: string; key: string };

/** How many times a URI may be percent-encoded over before it is refused rather than decoded further. */
const MAX_DECODE_LAYERS = 4;

/** Thrown when a URI is not inside the roots, or cannot be shown to be. Never retried: the same URI fails the same way. */
export class StoreOutsideRootsError extends StoreError {
  override name = 'StoreOutsideRootsError';
  constructor(uri: string, reason: string, roots: StoreRoots) {
    super(StoreErrorCode.OutsideRoots, uri, `refused: ${reason}; ${describeRoots(roots)}`);
  }
}

/** "read and write under ...; read only under ..." for error messages and logs. */
export function describeRoots(roots: StoreRoots): string {
  const list = (uris: readonly string[]): string => (uris.length === 0 ? '(none)' : uris.join(', '));
  return `this store reads and writes only under ${list(roots.readWrite)} and only reads under ${list(roots.readOnly)} (VLA_STORE_ROOTS, VLA_STORE_READ_ROOTS)`;
}

/** Why `uri` is not a plain, normalised object URI, or its decoded place. */
function placeOf(uri: string): Place | { refused: string } {
  if (uri.includes('\0')) return { refused: 'it contains a NUL byte' };
  if (uri.includes('\\')) return { refused: 'it contains a backslash' };
  let parsed;
  try {
    parsed = parseObjectUri(uri);
  } catch (err) {
    // decodeURIComponent throws a bare URIError on a stray "%".
    if (err instanceof URIError) return { refused: 'its percent-encoding is malformed' };
    return { refused: err instanceof Error ? err.message : String(err) };
  }
  // Check the path as written and after each further decoding: "%2e%2e" and "%252e%252e" are ".." to
  // some reader down the line even where this store would take them literally.
  let layer = parsed.scheme === 'file' ? uri.slice('file://'.length) : parsed.key;
  for (let depth = 0; ; depth++) {
    if (layer.includes('\0')) return { refused: 'it contains an encoded NUL byte' };
    if (layer.includes('\\')) return { refused: 'it contains an encoded backslash' };
    const dots = layer.split('/').find((segment) => segment === '.' || segment === '..');
    if (dots !== undefined) return { refused: `it has a "${dots}" path segment${depth > 0 ? ' once percent-decoded' : ''}` };
    let decoded: string;
    try {
      decoded = decodeURIComponent(layer);
    } catch {
      break; // A literal "%" deeper down is a name, not an encoding.
    }
    if (decoded === layer) break;
    if (depth === MAX_DECODE_LAYERS) return { refused: `it is percent-encoded more than ${MAX_DECODE_LAYERS} times over` };
    layer = decoded;
  }
  return parsed.scheme === 'file' ? { scheme: 'file', path: parsed.path } : { scheme: 's3', bucket: parsed.bucket, key: parsed.key };
}

/** Segment-wise prefix test: `/store-evil` is not under `/store`, bucket `ab` is not under bucket `a`. */
function isUnder(place: Place, root: Place): boolean {
  if (place.scheme === 'file' && root.scheme === 'file') return root.path === '' || place.path.startsWith(`${root.path}/`);
  if (place.scheme === 's3' && root.scheme === 's3') return place.bucket === root.bucket && (root.key === '' || place.key.startsWith(`${root.key}/`));
  return false;
}

/**
 * Validates one root URI (`file:///abs/dir`, `s3://bucket` or `s3://bucket/prefix`).
 * @throws Error naming the root and what is wrong with it
 */
function rootPlace(uri: string): Place {
  const place = placeOf(uri);
  if ('refused' in place) throw new Error(`store root ${uri} is not usable: ${place.refused}`);
  if (place.scheme === 'file') return { scheme: 'file', path: place.path.replace(/\/+$/, '') };
  return { ...place, key: place.key.replace(/\/+$/, '') };
}

/** Checks every root URI, naming the first bad one. */
export function validateStoreRoots(roots: StoreRoots): void {
  for (const uri of [...roots.readWrite, ...roots.readOnly]) rootPlace(uri);
}

/** True when `uri` lies inside one of `roots` (lexically, no I/O); for config checks such as "the store URI is inside a read-write root". */
export function isInsideRoots(uri: string, roots: readonly string[]): boolean {
  const place = placeOf(uri);
  return !('refused' in place) && roots.some((root) => isUnder(place, rootPlace(root)));
}

function errnoCode(err: unknown): string | undefined {
  return err instanceof Error && 'code' in err && typeof err.code === 'string' ? err.code : undefined;
}

/**
 * The real path of `target`: the realpath of its longest existing ancestor with the rest appended
 * (an object about to be written does not exist yet).
 */
async function realPathOfLongestExisting(target: string): Promise<string> {
  const tail: string[] = [];
  let head = target;
  for (;;) {
    try {
      return path.join(await fs.realpath(head), ...tail.reverse());
    } catch (err) {
      const code = errnoCode(err);
      if ((code !== 'ENOENT' && code !== 'ENOTDIR') || head === '/') throw err;
      tail.push(path.basename(head));
      head = path.dirname(head);
    }
  }
}

/**
 * Checks URIs against configured roots. The lexical check (decode, refuse dot segments, prefix
 * match) needs no I/O; for `file://` URIs a second check resolves symlinks, so that a link inside a
 * root does not lead the store outside it.
 */
export class RootGuard {
  private readonly places: { place: Place; access: 'read' | 'readWrite' }[];
  /** Real paths of file roots that exist (a root does not move once it exists). */
  private readonly realRoots = new Map<string, string>();

  constructor(readonly roots: StoreRoots) {
    this.places = [
      ...roots.readWrite.map((uri) => ({ place: rootPlace(uri), access: 'readWrite' as const })),
      ...roots.readOnly.map((uri) => ({ place: rootPlace(uri), access: 'read' as const })),
    ];
  }

  /** @throws StoreOutsideRootsError naming `uri`, why, and the roots */
  async check(uri: string, access: StoreAccess): Promise<void> {
    const place = placeOf(uri);
    if ('refused' in place) throw new StoreOutsideRootsError(uri, place.refused, this.roots);
    const allowed = this.places.filter((r) => access === 'read' || r.access === 'readWrite');
    const verb = access === 'read' ? 'read' : 'write';
    if (!allowed.some((r) => isUnder(place, r.place))) {
      const readOnly = access === 'write' && this.places.some((r) => isUnder(place, r.place));
      throw new StoreOutsideRootsError(uri, readOnly ? `it is under a read-only root, and this ${verb}s` : `it is not under any root this store may ${verb}`, this.roots);
    }
    if (place.scheme !== 'file') return;
    let real: string;
    try {
      real = await realPathOfLongestExisting(place.path);
    } catch (err) {
      throw new StoreOutsideRootsError(uri, `its real path cannot be resolved (${errnoCode(err) ?? String(err)})`, this.roots);
    }
    for (const r of allowed) {
      if (r.place.scheme !== 'file') continue;
      const realRoot = await this.realRoot(r.place.path);
      // Equal is inside here: the lexical check above already required a path below the root (a list of `root/`).
      if (real === realRoot || isUnder({ scheme: 'file', path: real }, { scheme: 'file', path: realRoot })) return;
    }
    throw new StoreOutsideRootsError(uri, `a symbolic link leads it to ${real}, which is not under any root this store may ${verb}`, this.roots);
  }

  private async realRoot(rootPath: string): Promise<string> {
    const cached = this.realRoots.get(rootPath);
    if (cached !== undefined) return cached;
    const full = rootPath === '' ? '/' : rootPath;
    let real: string;
    try {
      real = await fs.realpath(full);
    } catch {
      // Not there yet: what it will resolve to once created (not cached; it may be created later).
      return (await realPathOfLongestExisting(full).catch(() => full)).replace(/\/+$/, '');
    }
    real = real.replace(/\/+$/, '');
    this.realRoots.set(rootPath, real);
    return real;
  }
}
