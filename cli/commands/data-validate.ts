import type { Command } from 'commander';
import { formatIssue, validateDataset } from '../../activities/data';
import { createObjectStore, toObjectUri } from '../../activities/store';

/** `vla data validate <uri-or-path>`: exit code 1 when any issue is found. */
export function registerDataValidate(data: Command): void {
  data
    .command('validate')
    .description('check a dataset: manifest, sizes and sha256 of every file, every trajectory record and its frames')
    .argument('<uri-or-path>', 'dataset root: a directory, file:///abs/path or s3://bucket/prefix')
    .action(async (target: string) => {
      const uri = toObjectUri(target);
      // Runs in the user's own process on paths the user typed, with the user's rights: not a worker, so not confined (docs/design.md, "The store confines every URI").
      const report = await validateDataset(createObjectStore({ roots: 'unconfined' }), uri);
      const c = report.counts;
      const what = `${report.name ?? '(unnamed)'} at ${uri}: ${c.trajectories} trajectories, ${c.steps} steps, ${c.files} files, ${c.bytes} bytes`;
      if (report.ok) {
        console.log(`ok: ${what}`);
        return;
      }
      for (const issue of report.issues) console.log(formatIssue(issue));
      console.log(`invalid: ${what}; ${report.issues.length} issue${report.issues.length === 1 ? '' : 's'}`);
      process.exitCode = 1;
    });
}
