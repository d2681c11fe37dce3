import { InvalidArgumentError, type Command } from 'commander';
import { mkdir, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { relabelRecordUri } from '../../activities/relabel/activities';
import { renderSpotCheck, SpotCheckRecordMissingError } from '../../activities/relabel/spot-check';
import { createObjectStore, toObjectUri, type ObjectStore } from '../../activities/store';
import { SafeId } from '../../data-schemas/common';
import { RELABEL_RECORDS_DIR } from '../../data-schemas/relabel';
import { joinUri } from '../../data-schemas/uri';

function trajectoryIdArg(value: string): string {
  const parsed = SafeId.safeParse(value);
  if (!parsed.success) throw new InvalidArgumentError(`"${value}" is not a trajectory id: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
  return parsed.data;
}

/** A wrong id or a wrong output root is the usual cause, so the error says which ids do exist. */
async function missingRecordHint(store: ObjectStore, outputUri: string): Promise<string> {
  const dir = joinUri(outputUri, RELABEL_RECORDS_DIR);
  const ids: string[] = [];
  let count = 0;
  try {
    for await (const o of store.list(`${dir}/`)) {
      const name = o.uri.slice(dir.length + 1);
      if (!name.endsWith('.json') || name.includes('/')) continue;
      count++;
      if (ids.length < 5) ids.push(name.slice(0, -'.json'.length));
    }
  } catch {
    // The hint is a courtesy; the error it decorates already names the URI.
    return '';
  }
  if (count === 0) return `; ${dir} holds no records (is ${outputUri} the output root of a relabel run?)`;
  return `; ${dir} holds ${count} record${count === 1 ? '' : 's'}, e.g. ${ids.join(', ')}`;
}

async function writeLocal(file: string, body: string | Buffer): Promise<string> {
  const abs = path.resolve(file);
  await mkdir(path.dirname(abs), { recursive: true });
  await writeFile(abs, body);
  return abs;
}

/** `vla relabel show <output-uri-or-path> <trajectoryId> [--out <file.html>] [--png <file.png>]` */
export function registerRelabelShow(relabel: Command): void {
  relabel
    .command('show')
    .description('render one relabelled trajectory (key frames, subtasks, motion plans, action chunks) as a self-contained HTML page for spot-checking')
    .argument('<output-uri-or-path>', 'relabel output root (holds records/): a directory, file:///abs/path or s3://bucket/prefix')
    .argument('<trajectoryId>', 'id of the trajectory to show', trajectoryIdArg)
    .option('--out <file.html>', 'HTML file to write (default ./<trajectoryId>.html)')
    .option('--png <file.png>', 'also write a PNG contact sheet, one tile per language step')
    .action(async (target: string, trajectoryId: string, opts: { out?: string; png?: string }) => {
      const outputUri = toObjectUri(target);
      // Runs in the user's own process on paths the user typed, with the user's rights: not a worker, so not confined (docs/design.md, "The store confines every URI").
      const store = createObjectStore({ roots: 'unconfined' });
      const recordUri = relabelRecordUri(outputUri, trajectoryId);
      let rendered: Awaited<ReturnType<typeof renderSpotCheck>>;
      try {
        rendered = await renderSpotCheck(store, recordUri);
      } catch (err) {
        if (err instanceof SpotCheckRecordMissingError) throw new Error(`${err.message}${await missingRecordHint(store, outputUri)}`, { cause: err });
        throw err;
      }
      const html = await writeLocal(opts.out ?? `${trajectoryId}.html`, rendered.html);
      console.log(`wrote ${html}`);
      if (opts.png !== undefined) console.log(`wrote ${await writeLocal(opts.png, rendered.png)}`);
    });
}
