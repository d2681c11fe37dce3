import { createWriteStream, existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { sha256Hex } from './checksum';
import type { ObjectStore } from './types';

/**
 * Downloads the directory under `uri` (a base model, a LoRA adapter) into a folder of `cacheRoot`
 * and returns its path, or undefined without downloading when the listing lacks `required` (the
 * file that makes it such a directory: the caller names the failure). Workers on several hosts
 * share no folder, so this is how a model kept in s3:// reaches each machine.
 *
 * Once per content: the folder is named by the URI and the listing (paths, sizes, ETags), so new
 * content behind the same URI is downloaded again and the same content is not. It is filled beside
 * its final name and renamed, so a download cut short never passes for the directory.
 */
export async function stageDirectory(
  store: ObjectStore,
  uri: string,
  options: { cacheRoot: string; required: string; onFile?: () => void },
): Promise<string | undefined> {
  const prefix = `${uri.replace(/\/+$/, '')}/`;
  const objects: { rel: string; uri: string; bytes: number; etag: string | null }[] = [];
  for await (const info of store.list(prefix)) objects.push({ rel: info.uri.slice(prefix.length), uri: info.uri, bytes: info.bytes, etag: info.etag ?? null });
  objects.sort((a, b) => (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0));
  if (!objects.some((o) => o.rel === options.required)) return undefined;
  const listing = objects.map(({ rel, bytes, etag }) => [rel, bytes, etag]);
  // (An object, not the array earlier versions hashed: their folders, complete or not, are never taken for these.)
  const dir = join(options.cacheRoot, sha256Hex(JSON.stringify({ uri, listing })).slice(0, 16));
  if (existsSync(dir)) return dir;
  const partial = `${dir}.partial-${process.pid}`;
  rmSync(partial, { recursive: true, force: true });
  try {
    for (const object of objects) {
      const target = join(partial, ...object.rel.split('/'));
      mkdirSync(dirname(target), { recursive: true });
      await pipeline(await store.getStream(object.uri), createWriteStream(target));
      options.onFile?.();
    }
    renameSync(partial, dir);
  } catch (err) {
    rmSync(partial, { recursive: true, force: true });
    // Another attempt on this machine finished first: its copy is as good.
    if (existsSync(dir)) return dir;
    throw err;
  }
  return dir;
}
