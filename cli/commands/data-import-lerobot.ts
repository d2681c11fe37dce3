import { existsSync, readFileSync } from 'node:fs';
import { InvalidArgumentError, type Command } from 'commander';
import { importLeRobot, type LeRobotMapping } from '../../activities/data/lerobot-import';
import { createObjectStore, toObjectUri } from '../../activities/store';
import { loadConfig } from '../../infra/config';
import { ensureLeRobotEnv } from '../../infra/python';
import { positiveInt } from '../options';

/** `--mapping` takes the JSON itself or a file holding it; the importer checks its fields against the dataset. */
function mappingJson(value: string): LeRobotMapping {
  const text = value.trim().startsWith('{') ? value : existsSync(value) ? readFileSync(value, 'utf8') : undefined;
  if (text === undefined) throw new InvalidArgumentError(`neither JSON nor an existing file: ${value}`);
  try {
    return JSON.parse(text) as LeRobotMapping;
  } catch (err) {
    throw new InvalidArgumentError(`not valid JSON: ${(err as Error).message}`);
  }
}

/** `vla data import-lerobot <dir-or-uri> --out <uri-or-path> --name <name> [--mapping <json-or-file>] [--limit N]` */
export function registerDataImportLeRobot(data: Command): void {
  data
    .command('import-lerobot')
    .description('import a LeRobot dataset (format v3.0) as a D_rob dataset: frames decoded by lerobot, tasks as instructions, actions mapped to end-effector deltas + gripper')
    .argument('<dataset>', 'LeRobot dataset root (holds meta/info.json): a directory, file:///abs/path or s3://bucket/prefix')
    .requiredOption('--out <uri-or-path>', 'dataset root to create: a directory, file:///abs/path or s3://bucket/prefix')
    .requiredOption('--name <name>', 'dataset name (letters, digits, . _ -)')
    .option('--mapping <json-or-file>', 'which features and columns are the end-effector deltas, state and gripper, units, axes, cameras (docs/dataset-format.md, "LeRobot import")', mappingJson)
    .option('--limit <n>', 'import the first n episodes only', positiveInt)
    .option('--license <text>', 'licence of the input data, recorded in the manifest')
    .action(async (dataset: string, opts: { out: string; name: string; mapping?: LeRobotMapping; limit?: number; license?: string }) => {
      const outUri = toObjectUri(opts.out);
      const python = await ensureLeRobotEnv(loadConfig().cacheDir, (line) => console.error(line));
      // Runs in the user's own process on paths the user typed, with the user's rights: not a worker, so not confined (docs/design.md, "The store confines every URI").
      const manifest = await importLeRobot(createObjectStore({ roots: 'unconfined' }), python, {
        source: toObjectUri(dataset),
        outUri,
        name: opts.name,
        onProgress: (line) => console.error(line),
        ...(opts.mapping !== undefined && { mapping: opts.mapping }),
        ...(opts.limit !== undefined && { limit: opts.limit }),
        ...(opts.license !== undefined && { license: opts.license }),
      });
      const c = manifest.counts;
      console.log(`imported ${c.trajectories} trajectories (${c.steps} steps, ${c.files} files, ${c.bytes} bytes) as "${manifest.name}" to ${outUri}`);
    });
}
