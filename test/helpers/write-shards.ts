/**
 * A real shard set on local disk, written by the project's own shard code, for tests outside
 * TypeScript (python/tests/test_webdataset_shards.py reads it with the `webdataset` package):
 *
 *   npx tsx test/helpers/write-shards.ts <dir> [episodes]
 *
 * Imports the first `episodes` (default 4) bundled Bridge episodes as D_rob under <dir>/bridge,
 * labels them with the heuristic labeler (<dir>/labels), and runs the shard activities in the
 * workflow's order (plan, write and verify each shard, finalize) into <dir>/shards. Prints one JSON
 * line: `{"manifest": "<dir>/shards/shards.json"}`.
 */
import { resolve, join } from 'node:path';
import { createShardActivities } from '../../activities/shard/activities';
import { FileStore } from '../../activities/store';
import { fileUri } from '../../data-schemas/uri';
import { importBridgeSample, relabelHeuristicLocally } from './datasets';

async function main(): Promise<void> {
  const [dirArg, episodesArg] = process.argv.slice(2);
  if (!dirArg) throw new Error('usage: tsx test/helpers/write-shards.ts <dir> [episodes]');
  const episodes = episodesArg === undefined ? 4 : Number(episodesArg);
  if (!Number.isInteger(episodes) || episodes < 1) throw new Error(`episodes must be a positive integer, got "${episodesArg}"`);
  const dir = resolve(dirArg);
  const store = new FileStore();
  const drobUri = fileUri(join(dir, 'bridge'));
  const dlanUri = fileUri(join(dir, 'labels'));
  const outputUri = fileUri(join(dir, 'shards'));
  await importBridgeSample(store, drobUri, episodes);
  await relabelHeuristicLocally(store, drobUri, dlanUri);
  const shard = createShardActivities({ store, hooks: () => ({ heartbeat: () => undefined }) });
  // Small shards and a large validation fraction: several shards, both splits, from a few episodes.
  const plan = await shard.planShards({ datasetUri: dlanUri, outputUri, seed: 0, validationFraction: 0.5, targetShardBytes: 32 * 1024, directionLabels: true });
  for (const ref of plan.shards) {
    await shard.writeShard({ outputUri, ...ref });
    await shard.verifyShards({ outputUri, shards: [ref] });
  }
  const final = await shard.finalizeShards({ outputUri, datasetUri: dlanUri });
  console.log(JSON.stringify({ manifest: join(dir, 'shards', 'shards.json'), shards: final.shards, samples: final.samples }));
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
  process.exit(1);
});
