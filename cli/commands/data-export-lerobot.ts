import type { Command } from 'commander';
import { exportLeRobot } from '../../activities/data/lerobot-export';
import { createObjectStore, toObjectUri } from '../../activities/store';
import { loadConfig } from '../../infra/config';
import { ensureLeRobotEnv } from '../../infra/python';

/** `vla data export-lerobot <d_lan-or-d_rob> --out <dir> [--repo-id <id>] [--license <id>]` */
export function registerDataExportLeRobot(data: Command): void {
  data
    .command('export-lerobot')
    .description('export a D_lan dataset (with its D_rob frames and actions) or a D_rob dataset as a LeRobot v3.0 dataset, written by lerobot; D_lan language as per-frame string features')
    .argument('<dataset>', 'D_lan or D_rob dataset root: a directory, file:///abs/path or s3://bucket/prefix')
    .requiredOption('--out <dir>', 'local directory to create for the LeRobot dataset')
    .option('--repo-id <id>', "LeRobot repo_id recorded in the dataset card (default local/<dataset name>)")
    .option('--license <id>', 'licence identifier for the dataset card, e.g. cc-by-4.0')
    .action(async (dataset: string, opts: { out: string; repoId?: string; license?: string }) => {
      const python = await ensureLeRobotEnv(loadConfig().cacheDir, (line) => console.error(line));
      // Runs in the user's own process on paths the user typed, with the user's rights: not a worker, so not confined (docs/design.md, "The store confines every URI").
      const result = await exportLeRobot(createObjectStore({ roots: 'unconfined' }), python, {
        datasetUri: toObjectUri(dataset),
        outDir: opts.out,
        onProgress: (line) => console.error(line),
        ...(opts.repoId !== undefined && { repoId: opts.repoId }),
        ...(opts.license !== undefined && { license: opts.license }),
      });
      const what = result.language ? 'with subtask, motion plan and action chunk per frame' : 'without language annotations (a D_rob dataset)';
      console.log(`exported ${result.episodes} episodes (${result.frames} frames) ${what} as a LeRobot dataset to ${result.outDir}`);
    });
}
