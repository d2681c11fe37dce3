import { Command, InvalidArgumentError } from 'commander';
import { toObjectUri } from '../../activities/store';
import { formatZodIssues } from '../../data-schemas/issues';
import { ShardDatasetInput, defaultShardOutput, shardDatasetWorkflowId, type ShardDatasetResult, type ShardProgress } from '../../data-schemas/training';
import { shardProgressQuery } from '../../workflows';
import { nonNegativeInt, positiveInt, positiveNumber } from '../options';
import { startAndFollow } from '../follow';

export interface ShardCommandOptions {
  out?: string;
  validationFraction: number;
  seed: number;
  targetShardMb: number;
  concurrency: number;
  wait: boolean;
}

function fraction(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0 || n > 0.5) throw new InvalidArgumentError('must be a number from 0 to 0.5');
  return n;
}

/** Starts (or attaches to) a shardDataset run and follows its progress query until it ends. */
export async function runShard(dataset: string, opts: ShardCommandOptions, say: (line: string) => void): Promise<ShardDatasetResult | undefined> {
  const datasetUri = toObjectUri(dataset);
  const parsed = ShardDatasetInput.safeParse({
    datasetUri,
    // Resolved here so the workflow id names the real output root.
    outputUri: opts.out !== undefined ? toObjectUri(opts.out) : defaultShardOutput(datasetUri, opts.seed, opts.validationFraction),
    validationFraction: opts.validationFraction,
    seed: opts.seed,
    targetShardBytes: Math.round(opts.targetShardMb * 1024 * 1024),
    maxConcurrentShards: opts.concurrency,
  });
  if (!parsed.success) throw new Error(`invalid shard options: ${formatZodIssues(parsed.error).join('; ')}`);
  const input = parsed.data;
  return startAndFollow<ShardDatasetResult, ShardProgress>({
    workflowType: 'shardDataset',
    workflowId: shardDatasetWorkflowId(input.outputUri!),
    input,
    wait: opts.wait,
    progress: {
      query: shardProgressQuery,
      format: '  {bar} {value}/{total} shards | {phase} | written {written} skipped {skipped} | {mib} MiB',
      bar: (p) => (p.total > 0 ? { value: p.done, total: p.total, payload: { phase: p.phase, written: p.written, skipped: p.skipped, mib: (p.bytes / 2 ** 20).toFixed(1) } } : undefined),
    },
    say,
  });
}

export function printShardResult(result: ShardDatasetResult, say: (line: string) => void): void {
  say(`  ${result.shards} shards, ${result.samples} samples, ${(result.bytes / 2 ** 20).toFixed(1)} MiB (${result.written} written, ${result.skipped} already complete)`);
  say(`  shards:   ${result.outputUri}`);
  say(`  manifest: ${result.manifestUri}`);
}

export function registerShard(program: Command): Command {
  return program
    .command('shard')
    .description('D_lan -> WebDataset tar training shards (train/validation split by trajectory), on the stack (vla dev up)')
    .argument('<dataset>', 'D_lan dataset (output of vla relabel): a directory, file:///abs/path or s3://bucket/prefix')
    .option('--out <uri-or-path>', 'shard set root (default: <dataset>/shards/<prompt version>-s<seed>-v<validation %>)')
    .option('--validation-fraction <f>', 'share of trajectories held out for validation, 0 to 0.5', fraction, 0.05)
    .option('--seed <n>', 'salt of the trajectory hash that assigns splits and shards', nonNegativeInt, 0)
    .option('--target-shard-mb <mb>', 'planned size of one shard in MiB (at least 0.0625)', positiveNumber, 256)
    .option('--concurrency <n>', 'shards written at once', positiveInt, 4)
    .option('--no-wait', 'start it and return; watch it in the Web UI')
    .action(async (dataset: string, opts: ShardCommandOptions) => {
      const say = (line: string): void => console.log(line);
      const result = await runShard(dataset, opts, say);
      if (result) printShardResult(result, say);
    });
}
