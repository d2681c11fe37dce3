import type { Command } from 'commander';
import { importBridgeRlds } from '../../activities/data';
import { createObjectStore, toObjectUri } from '../../activities/store';
import { positiveInt } from '../options';

/** `vla data import <files...> --out <uri-or-path> --name <name> [--limit N]` */
export function registerDataImport(data: Command): void {
  data
    .command('import')
    .description('import BridgeData v2 RLDS TFRecords as a D_rob dataset (frames copied byte-for-byte, actions raw)')
    .argument('<files...>', 'TFRecord files, e.g. data/samples/bridge-debug/bridge_dataset-train.tfrecord-00000-of-00001')
    .requiredOption('--out <uri-or-path>', 'dataset root to create: a directory, file:///abs/path or s3://bucket/prefix')
    .requiredOption('--name <name>', 'dataset name (letters, digits, . _ -)')
    .option('--limit <n>', 'import at most this many episodes', positiveInt)
    .option('--license <text>', 'licence of the input data, recorded in the manifest')
    .option('--skip-unlabeled', 'skip episodes without a language instruction instead of failing', false)
    .action(async (files: string[], opts: { out: string; name: string; limit?: number; license?: string; skipUnlabeled: boolean }) => {
      const outUri = toObjectUri(opts.out);
      let skipped = 0;
      // Runs in the user's own process on paths the user typed, with the user's rights: not a worker, so not confined (docs/design.md, "The store confines every URI").
      const manifest = await importBridgeRlds(createObjectStore({ roots: 'unconfined' }), {
        files,
        outUri,
        name: opts.name,
        skipWithoutInstruction: opts.skipUnlabeled,
        onSkip: (reason) => {
          skipped++;
          console.error(`skipped ${reason}`);
        },
        ...(opts.limit !== undefined && { limit: opts.limit }),
        ...(opts.license !== undefined && { license: opts.license }),
      });
      const c = manifest.counts;
      const skips = skipped > 0 ? `; ${skipped} episodes skipped, listed above` : '';
      console.log(`imported ${c.trajectories} trajectories (${c.steps} steps, ${c.files} files, ${c.bytes} bytes${skips}) as "${manifest.name}" to ${outUri}`);
    });
}
