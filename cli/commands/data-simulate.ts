import { InvalidArgumentError, type Command } from 'commander';
import { Camera } from '../../data-schemas/d-rob';
import { writeDataset, type PendingTrajectory } from '../../activities/data/dataset-writer';
import { resolveTasks, simulateEpisodes, SIMULATOR_VERSION, SUPPORTED_TASKS } from '../../activities/robot/sim';
import { createObjectStore, toObjectUri } from '../../activities/store';
import { nonNegativeInt, positiveInt } from '../options';

/** Accepts `--tasks "a, b"` as well as repeated `--tasks a --tasks b`; "all" means every supported task. */
function collectTasks(v: string, previous: string[]): string[] {
  const items: string[] = [];
  for (const part of v.split(',').map((s) => s.trim())) {
    if (part.length === 0) continue;
    // "put the eggplant in the pan, then lift the fish" is one task, not two.
    if (/^(and\s+)?then\b/i.test(part) && items.length > 0) items[items.length - 1] += `, ${part}`;
    else items.push(part);
  }
  return [...previous, ...items.flatMap((s) => (s.toLowerCase() === 'all' ? [...SUPPORTED_TASKS] : [s]))];
}

function collectCameras(v: string, previous: Camera[]): Camera[] {
  const out = [...previous];
  for (const item of v.split(',').map((s) => s.trim())) {
    const c = Camera.safeParse(item);
    if (!c.success) throw new InvalidArgumentError(`unknown camera "${item}" (one of ${Camera.options.join(', ')})`);
    out.push(c.data);
  }
  return out;
}

/** `vla data simulate --tasks <list> --n <per task> --seed <int> --out <uri-or-path> --name <name>` */
export function registerDataSimulate(data: Command): void {
  data
    .command('simulate')
    .description('generate a D_rob dataset of scripted, noisy teleoperation-like episodes in the tabletop simulator')
    .requiredOption('--tasks <list>', `instructions, comma-separated or repeated, or "all" (supported: ${SUPPORTED_TASKS.join('; ')})`, collectTasks, [])
    .option('--n <count>', 'episodes per task', positiveInt, 10)
    .option('--seed <int>', 'random seed; the same seed gives byte-identical output', nonNegativeInt, 0)
    .option('--cameras <list>', 'cameras to render, comma-separated (default image_0)', collectCameras, [])
    .requiredOption('--out <uri-or-path>', 'dataset root to create: a directory, file:///abs/path or s3://bucket/prefix')
    .requiredOption('--name <name>', 'dataset name (letters, digits, . _ -)')
    .action(async (opts: { tasks: string[]; n: number; seed: number; cameras: Camera[]; out: string; name: string }) => {
      // Fails with the list of supported tasks before anything is simulated or written.
      const tasks = resolveTasks(opts.tasks);
      if (tasks.length === 0) throw new Error(`--tasks names no task; supported: ${SUPPORTED_TASKS.join('; ')}`);
      const outUri = toObjectUri(opts.out);
      let successes = 0;
      const started = Date.now();
      async function* counted(): AsyncGenerator<PendingTrajectory> {
        for await (const p of simulateEpisodes({ tasks: tasks.map((t) => t.text), n: opts.n, seed: opts.seed, cameras: opts.cameras })) {
          if (p.trajectory.source.kind === 'simulator' && p.trajectory.source.success) successes++;
          yield p;
        }
      }
      // Runs in the user's own process on paths the user typed, with the user's rights: not a worker, so not confined (docs/design.md, "The store confines every URI").
      const manifest = await writeDataset(
        createObjectStore({ roots: 'unconfined' }),
        outUri,
        { name: opts.name, kind: 'd_rob', source: { producer: 'vla-sim', producerVersion: SIMULATOR_VERSION, inputs: tasks.map((t) => t.text) } },
        counted(),
        { onDuplicate: (t, keptId) => console.error(`skipped ${t.id}: the same recording as ${keptId}`) },
      );
      const c = manifest.counts;
      const secs = ((Date.now() - started) / 1000).toFixed(1);
      console.log(
        `simulated ${c.trajectories} trajectories (${c.steps} steps, ${c.files} files, ${c.bytes} bytes; ` +
          `demonstrator success ${successes}/${c.trajectories}) in ${secs}s as "${manifest.name}" to ${outUri}`,
      );
    });
}
